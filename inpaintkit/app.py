"""The web app: a Gradio page to paint a hole and fill it, plus a plain HTTP endpoint.

``POST /api/inpaint`` takes multipart ``image`` and ``mask`` (and optional ``model``, ``strategy``)
and returns the PNG; errors are JSON with a 4xx status. Models are chosen by name only (no paths),
uploads are size-capped before anything is decoded, and all files live in the app's own
temporary folder.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from inpaintkit.errors import InpaintError
from inpaintkit.inference import STRATEGIES, InpaintOptions, inpaint_array, prepare
from inpaintkit.io import APP_MAX_PIXELS, read_image, read_mask, write_image
from inpaintkit.loading import DEFAULT_MODEL, load_model
from inpaintkit.masks import MaskGenerator
from inpaintkit.models import classical_names

QUICK_MASKS = ("none", "center", "blocks", "strokes")


class Inpainter:
    """The methods the app offers, loaded on first use and shared between requests."""

    def __init__(
        self,
        weights_dir: str | Path | None = None,
        backend: str = "torch",
        concurrency: int = 1,
        max_pixels: int = APP_MAX_PIXELS,
    ):
        self.choices: dict[str, str] = {DEFAULT_MODEL: DEFAULT_MODEL}
        for name in classical_names():
            self.choices[name] = name
        if weights_dir is not None:
            folder = Path(weights_dir)
            if not folder.is_dir():
                raise InpaintError(f"{folder}: weights folder not found")
            for path in sorted(folder.glob("*.safetensors")):
                self.choices[path.stem] = str(path)
        self.default = next(iter(self.choices))
        self.options = InpaintOptions(backend=backend)
        self._models: dict[str, object] = {}
        self._lock = threading.Lock()
        # The fills run on ``concurrency`` threads of their own, not on the server's many request
        # threads: glibc keeps a malloc arena per thread that did a large fill, so memory would grow
        # with the number of request threads (measured: +300 MB per 39-megapixel request) instead of
        # staying bounded by ``concurrency``.
        self.workers = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="inpaintkit-fill")
        self.max_pixels = max_pixels

    def model(self, name: str | None):
        name = name or self.default
        if name not in self.choices:
            raise InpaintError(f"unknown model {name!r}; choose from {', '.join(self.choices)}")
        with self._lock:
            if name not in self._models:
                self._models[name] = prepare(load_model(self.choices[name]), self.options)
            return self._models[name]

    def run(self, read: Callable[[], tuple[np.ndarray, np.ndarray]], name: str | None, strategy: str, deliver):
        """``deliver(hole, result, seconds)``. ``read`` decodes the photo and its hole, and
        ``deliver`` encodes the result, on one of the ``concurrency`` fill threads: at most
        ``concurrency`` decoded photos are in memory at once (each refused from its header above
        ``max_pixels``)."""
        options = InpaintOptions(strategy=strategy, backend=self.options.backend)
        model = self.model(name)

        def job():
            image, hole = read()
            if not hole.any():
                raise InpaintError("the mask is empty: paint over what to remove, upload a mask, or pick a quick mask")
            start = time.perf_counter()
            result = inpaint_array(model, image, hole, options)
            return deliver(hole, result, time.perf_counter() - start)

        return self.workers.submit(job).result()


def _hole_from_editor(editor: dict | None, size: tuple[int, int]) -> np.ndarray:
    hole = np.zeros(size, bool)
    for layer in (editor or {}).get("layers") or []:
        if layer:
            hole |= read_mask(layer, size=size, resize=True)
    return hole


def build_demo(inpainter: Inpainter, workdir: Path):
    """The Gradio Blocks page (also reachable with gradio_client: ``/inpaint`` and ``/inpaint_files``)."""
    import gradio as gr

    from inpaintkit.demo import demo_photos

    examples = []
    for name, photo in demo_photos(384):
        examples.append(str(write_image(workdir / "examples" / f"{name}.png", photo)))

    limit = inpainter.max_pixels

    def fill(image_path: str | None, editor: dict | None, mask_path, quick, method, strategy):
        def read():
            if not image_path:
                raise InpaintError("upload a photo first")
            image = read_image(image_path, max_pixels=limit)
            size = image.shape[:2]
            hole = _hole_from_editor(editor, size)
            if mask_path:
                hole = hole | read_mask(mask_path, size=size, resize=True, max_pixels=limit)
            if quick and quick != "none":
                hole = hole | (MaskGenerator(quick).sample(0, *size, seed=0) > 0.5)
            return image, hole

        def deliver(hole, result, seconds):
            out = write_image(workdir / "results" / f"{uuid.uuid4().hex}.png", result)
            return hole.shape, hole.mean(), out, seconds

        size, ratio, out, seconds = inpainter.run(read, method, strategy, deliver)
        info = (
            f"Filled {ratio * 100:.1f} % of the {size[1]}x{size[0]} photo with **{method}** "
            f"in {seconds:.2f} s. Download the lossless PNG with the button on the result."
        )
        return str(out), info

    def from_editor(editor, mask_path, quick, method, strategy):
        try:
            return fill((editor or {}).get("background"), editor, mask_path, quick, method, strategy)
        except InpaintError as exc:
            raise gr.Error(str(exc)) from None

    def from_files(image, mask, method, strategy):
        try:
            return fill(image, None, mask, "none", method, strategy)
        except InpaintError as exc:
            raise gr.Error(str(exc)) from None

    with gr.Blocks(title="inpaintkit") as demo:
        gr.Markdown(
            "# inpaintkit\nUpload a photo, paint over what should disappear (or upload a mask, or pick a "
            "quick mask), then press **Inpaint**."
        )
        with gr.Row():
            with gr.Column():
                editor = gr.ImageMask(
                    label="Photo: paint the hole", type="filepath", image_mode="RGB", format="png",
                    layers=False, transforms=(), sources=("upload", "clipboard"), elem_id="editor",
                    brush=gr.Brush(colors=["#ff00ff"], default_size=24, color_mode="fixed"),
                )  # fmt: skip
                mask_file = gr.Image(label="Mask file (optional, white = hole)", type="filepath", height=160)
                quick = gr.Radio(list(QUICK_MASKS), value="none", label="Quick mask")
                with gr.Row():
                    method = gr.Dropdown(list(inpainter.choices), value=inpainter.default, label="Method")
                    strategy = gr.Dropdown(list(STRATEGIES), value="auto", label="Large photos")
                button = gr.Button("Inpaint", variant="primary", elem_id="run")
            with gr.Column():
                result = gr.Image(
                    label="Result", type="filepath", format="png", interactive=False, buttons=["download"],
                    elem_id="result",
                )  # fmt: skip
                info = gr.Markdown(elem_id="info")
        gr.Examples(examples=[[e] for e in examples], inputs=[editor], label="Example photos")
        button.click(from_editor, [editor, mask_file, quick, method, strategy], [result, info], api_name="inpaint")
        image_in = gr.Image(type="filepath", visible=False)
        mask_in = gr.Image(type="filepath", visible=False)
        hidden = gr.Button(visible=False)
        hidden.click(from_files, [image_in, mask_in, method, strategy], [result, info], api_name="inpaint_files")
    return demo


def api_route(inpainter: Inpainter, workdir: Path, max_bytes: int):
    """``POST /api/inpaint``: multipart image + mask (+ model, strategy) -> PNG, or JSON 4xx."""
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def work(image_bytes: bytes, mask_bytes: bytes, model: str | None, strategy: str) -> bytes:
        folder = Path(tempfile.mkdtemp(dir=workdir))
        try:
            image_path, mask_path = folder / "image", folder / "mask"
            image_path.write_bytes(image_bytes)
            mask_path.write_bytes(mask_bytes)

            def read():
                image = read_image(image_path, max_pixels=inpainter.max_pixels)
                return image, read_mask(mask_path, size=image.shape[:2], max_pixels=inpainter.max_pixels)

            def deliver(hole, result, seconds):
                return write_image(folder / "result.png", result).read_bytes()

            return inpainter.run(read, model, strategy, deliver)
        finally:
            for f in folder.iterdir():
                f.unlink()
            folder.rmdir()

    async def endpoint(request: Request):
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            return error(411, "send the upload with a Content-Length")
        if int(length) > max_bytes:
            mb = 1024 * 1024  # --max-upload-mb counts these
            return error(
                413, f"this upload is {int(length) / mb:.1f} MB; the limit is {max_bytes / mb:.0f} MB (--max-upload-mb)"
            )
        try:
            form = await request.form(max_files=2, max_fields=4)
        except Exception as exc:  # malformed multipart bodies raise parser-specific errors
            return error(400, f"not a multipart form upload ({exc})")
        image, mask = form.get("image"), form.get("mask")
        if not isinstance(image, UploadFile) or not isinstance(mask, UploadFile):
            return error(400, "send two files: image and mask")
        model, strategy = form.get("model"), form.get("strategy") or "auto"
        if model is not None and not isinstance(model, str) or not isinstance(strategy, str):
            return error(400, "model and strategy are text fields")
        try:
            png = await run_in_threadpool(work, await image.read(), await mask.read(), model or None, strategy)
        except InpaintError as exc:
            message = str(exc).replace(str(workdir), "upload")
            return error(400, message)
        return Response(png, media_type="image/png")

    return Route("/api/inpaint", endpoint, methods=["POST"])


def launch(
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    weights_dir: str | Path | None = None,
    max_upload_mb: int = 25,
    concurrency: int = 2,
    backend: str = "torch",
    block: bool = True,
    max_pixels: int = 0,
):
    """Start the app (``max_pixels`` 0: 40 megapixels). Returns ``(demo, local_url)`` when ``block``
    is False (tests)."""
    max_pixels = max_pixels or APP_MAX_PIXELS
    if min(concurrency, max_upload_mb, max_pixels) < 1:
        raise InpaintError("concurrency, max upload MB and max pixels must each be at least 1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    workdir = Path(tempfile.mkdtemp(prefix="inpaintkit-app-"))
    os.environ["GRADIO_TEMP_DIR"] = str(workdir / "uploads")  # Gradio's uploads and cache stay in our folder
    inpainter = Inpainter(weights_dir, backend=backend, concurrency=concurrency, max_pixels=max_pixels)
    demo = build_demo(inpainter, workdir)
    demo.queue(default_concurrency_limit=concurrency, max_size=64)
    max_bytes = max_upload_mb * 1024 * 1024
    _, local_url, _ = demo.launch(
        server_name=host, server_port=port, share=share, max_file_size=max_bytes, prevent_thread_lock=True,
        app_kwargs={"routes": [api_route(inpainter, workdir, max_bytes)]}, allowed_paths=[str(workdir)],
        quiet=not block, show_error=False,
    )  # fmt: skip
    if block:
        print(f"inpaintkit app on {local_url} (HTTP API: POST {local_url}api/inpaint)")
        demo.block_thread()
    return demo, local_url
