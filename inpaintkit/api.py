"""Serving: the pool of fill threads the app and the API share, and ``POST /api/inpaint``, the
plain HTTP endpoint, described in its OpenAPI page (``/docs``).

It takes the same holes as the CLI (a mask file, points on an object, a border to add) and keeps
what the photo carries (colour profile, EXIF, transparency, 16 bits) in the PNG it returns.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from inpaintkit.editing import Extension, parse_points
from inpaintkit.errors import InpaintError, MaskSizeError
from inpaintkit.inference import InpaintOptions, inpaint_array, prepare
from inpaintkit.io import APP_MAX_PIXELS, read_photo, write_photo
from inpaintkit.jobs import HoleSource
from inpaintkit.loading import BUNDLED, DEFAULT_MODEL, bundled_weights, load_model
from inpaintkit.models import card_task, classical_names, read_card

FIELDS = {
    "image": ("binary", "The photo (PNG, JPEG, WebP, BMP or TIFF). Its known pixels come back bit-identical."),
    "mask": ("binary", "Optional. The hole: white (above half range) = fill; the photo's size."),
    "select": ("string", "Optional. Points x,y;x,y on an object to remove (GrabCut selection)."),
    "exclude": ("string", "Optional. Points x,y;x,y the selected object must leave out."),
    "dilate": ("integer", "Optional. Pixels the selected object's hole is grown by (default 8)."),
    "extend": ("string", "Optional. A border to add and fill: left=128,right=128, all=64 or aspect=16:9."),
    "model": ("string", "Optional. A method name from the app's list (default: the bundled default)."),
    "strategy": ("string", "Optional. Large photos: auto (default), original, resize or crop."),
}
TEXT_FIELDS = ("select", "exclude", "dilate", "extend", "model", "strategy")


class Cancelled(InpaintError):
    """A fill stopped because the person cancelled it."""


class Inpainter:
    """The methods the app offers, loaded on first use and shared between requests."""

    def __init__(
        self,
        weights_dir: str | Path | None = None,
        backend: str = "torch",
        concurrency: int = 1,
        max_pixels: int = APP_MAX_PIXELS,
    ):
        self.choices: dict[str, str] = {DEFAULT_MODEL: DEFAULT_MODEL, **{n: n for n in classical_names()}}
        # the bundled image-to-image models (Sobel, filter, denoise), then those in weights_dir
        self.image_tasks = {n: n for n in BUNDLED if n != DEFAULT_MODEL and bundled_weights(n).is_file()}
        if weights_dir is not None:
            folder = Path(weights_dir)
            if not folder.is_dir():
                raise InpaintError(f"{folder}: weights folder not found")
            for path in sorted(folder.glob("*.safetensors")):
                table = self.choices if card_task(read_card(path)) == "inpaint" else self.image_tasks
                table[path.stem] = str(path)
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

    def model(self, name: str | None, table: dict[str, str] | None = None):
        table = self.choices if table is None else table
        name = name or self.default
        if name not in table:
            raise InpaintError(f"unknown model {name!r}; choose from {', '.join(table)}")
        with self._lock:
            if table[name] not in self._models:
                self._models[table[name]] = prepare(load_model(table[name]), self.options)
            return self._models[table[name]]

    def submit(
        self, read: Callable, name: str | None, strategy: str, deliver: Callable
    ) -> tuple[Future, threading.Event]:
        """Queue a fill on one of the ``concurrency`` fill threads: ``read()`` decodes ``(rgb, hole,
        keep)`` there (so at most ``concurrency`` decoded photos are in memory at once, each refused
        from its header above ``max_pixels``) and ``deliver(hole, result, keep, seconds)`` encodes the
        result. Setting the returned event cancels it: a queued fill never starts, a running one
        stops at its next stage."""
        options = InpaintOptions(strategy=strategy, backend=self.options.backend)
        model = self.model(name)
        cancelled = threading.Event()

        def stage():
            if cancelled.is_set():
                raise Cancelled("cancelled")

        def job():
            stage()
            rgb, hole, keep = read()
            if not hole.any():
                raise InpaintError("the mask is empty: paint over what to remove, upload a mask, or pick a quick mask")
            stage()
            start = time.perf_counter()
            result = inpaint_array(model, rgb, hole, options)
            stage()
            return deliver(hole, result, keep, time.perf_counter() - start)

        return self.workers.submit(job), cancelled

    def run(self, read: Callable, name: str | None, strategy: str, deliver: Callable):
        """:meth:`submit` and wait for the result."""
        return self.submit(read, name, strategy, deliver)[0].result()

    def close(self) -> None:
        self.workers.shutdown(wait=False, cancel_futures=True)


def openapi(max_bytes: int, max_pixels: int, methods: list[str]) -> dict:
    properties = {}
    for name, (kind, text) in FIELDS.items():
        schema = {"type": "string", "format": "binary"} if kind == "binary" else {"type": kind}
        properties[name] = {**schema, "description": text}
    properties["model"]["enum"] = methods
    error = {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}
    return {
        "summary": "Fill the hole of a photo",
        "description": (
            f"Multipart form. Give at least one hole: mask, select or extend (they add up). Limits: "
            f"{max_bytes // 2**20} MB per request (--max-upload-mb), {max_pixels:,} pixels per photo "
            "(--max-pixels), refused from the header before decoding. Returns the filled photo as PNG with "
            'its colour profile and EXIF; every error is JSON {"error": "one line"}.'
        ),
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {"type": "object", "required": ["image"], "properties": properties}
                    }
                },
            }
        },  # fmt: skip
        "responses": {
            200: {"description": "The filled photo", "content": {"image/png": {}}},
            400: {"description": "A bad photo, mask, point, border or option", "content": error},
            411: {"description": "No Content-Length", "content": error},
            413: {"description": "Over --max-upload-mb", "content": error},
        },
    }


def api_route(inpainter, workdir: Path, max_bytes: int):
    """The FastAPI route of ``POST /api/inpaint`` (shown in ``/docs``)."""
    from fastapi.routing import APIRoute
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def work(image_bytes: bytes, mask_bytes: bytes | None, text: dict[str, str]) -> bytes:
        folder = Path(tempfile.mkdtemp(dir=workdir))
        try:
            image_path, mask_path = folder / "photo", folder / "mask"
            image_path.write_bytes(image_bytes)
            if mask_bytes is not None:
                mask_path.write_bytes(mask_bytes)
            holes = hole_source(mask_path if mask_bytes is not None else None, text, inpainter.max_pixels)

            def read():
                rgb, hole, keep, _ = holes.read(image_path, *read_photo(image_path, max_pixels=inpainter.max_pixels))
                return rgb, hole, keep

            def deliver(hole, result, keep, seconds):
                return write_photo(folder / "result.png", result, keep, hole).read_bytes()

            return inpainter.run(read, text.get("model"), text.get("strategy") or "auto", deliver)
        except InpaintError as exc:  # the upload's names, not the server's folders
            hint = "; send a mask of the photo's size" if isinstance(exc, MaskSizeError) else ""
            raise InpaintError(str(exc).replace(f"{folder}{os.sep}", "") + hint) from None
        finally:
            for f in folder.iterdir():
                f.unlink()
            folder.rmdir()

    async def endpoint(request: Request):
        length = request.headers.get("content-length")
        if length is None or not length.isdecimal():
            return error(411, "send the upload with a Content-Length")
        if int(length) > max_bytes:
            mb = 1024 * 1024  # --max-upload-mb counts these
            return error(
                413, f"this upload is {int(length) / mb:.1f} MB; the limit is {max_bytes / mb:.0f} MB (--max-upload-mb)"
            )
        try:
            form = await request.form(max_files=2, max_fields=len(TEXT_FIELDS) + 2)
        except Exception as exc:  # malformed multipart bodies raise parser-specific errors
            return error(400, f"not a multipart form upload ({exc})")
        image, mask = form.get("image"), form.get("mask")
        if not isinstance(image, UploadFile) or not (mask is None or isinstance(mask, UploadFile)):
            return error(400, "send the photo as the file field image (and a mask, if any, as the file field mask)")
        text = {key: form.get(key) for key in TEXT_FIELDS if form.get(key) is not None}
        if not all(isinstance(v, str) for v in text.values()):
            return error(400, f"{', '.join(TEXT_FIELDS)} are text fields")
        try:
            mask_bytes = await mask.read() if mask is not None else None
            png = await run_in_threadpool(work, await image.read(), mask_bytes, text)
        except InpaintError as exc:
            return error(400, str(exc).replace(str(workdir), "upload"))
        return Response(png, media_type="image/png")

    endpoint.__annotations__ = {"request": Request}  # resolved here: the module defers annotations
    spec = openapi(max_bytes, inpainter.max_pixels, list(inpainter.choices))
    return APIRoute("/api/inpaint", endpoint, methods=["POST"], **spec)


def hole_source(mask: Path | None, text: dict[str, str], max_pixels: int) -> HoleSource:
    """The CLI's hole sources from the API's (or the app's) text fields."""
    dilate = text.get("dilate", "8")
    if not dilate.isdecimal() or len(dilate) > 6:
        raise InpaintError(f"dilate {dilate!r}: a whole number of pixels")
    border = Extension.parse(text["extend"]) if text.get("extend") else None
    points = tuple(parse_points(text.get("select", ""))), tuple(parse_points(text.get("exclude", "")))
    if mask is None and not points[0] and border is None:
        raise InpaintError("no hole given: send a mask, points on an object (select) or a border (extend)")
    return HoleSource(
        mask, max_pixels=max_pixels, select=points[0], exclude=points[1], dilate=int(dilate), extend=border
    )
