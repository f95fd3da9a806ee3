"""The web app: a Gradio editor to remove things from a photo in several passes, plus the HTTP API.

A photo is opened as the file it is (no re-encoding by the browser, so its colour profile, EXIF and
bit depth are kept); the hole is painted, selected by clicking an object, uploaded, picked from the
quick masks and/or a border added around the photo; each fill can become the next pass's photo,
with undo and redo across passes. ``POST /api/inpaint`` is in :mod:`inpaintkit.api`. Models are
chosen by name only (no paths), uploads are size-capped before anything is decoded, and every file
lives in the app's own temporary folder, removed when the server stops.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
import time
import uuid
from concurrent.futures import wait
from pathlib import Path

import numpy as np
from PIL import Image

from inpaintkit.api import Inpainter, api_route
from inpaintkit.editing import MAX_EXTEND, SIDES, Extension, select_object
from inpaintkit.errors import InpaintError, MaskSizeError
from inpaintkit.inference import STRATEGIES, apply_array
from inpaintkit.io import APP_MAX_PIXELS, read_image, read_mask, read_photo, write_image, write_photo
from inpaintkit.jobs import HoleSource
from inpaintkit.loading import DEFAULT_MODEL
from inpaintkit.masks import MaskGenerator
from inpaintkit.models import classical_names
from inpaintkit.page import (
    HOLE_COLOUR,
    HOLE_OPACITY,
    KEYS,
    LOAD_PHOTO,
    SIZE_CHECK,
    Session,
    hole_from_editor,
    overlay,
    rgb_colour,
)

QUICK_MASKS = ("none", "center", "blocks", "strokes")
ASPECTS = ("none", "1:1", "4:3", "3:2", "16:9", "9:16", "3:4", "2:3")


def build_demo(inpainter: Inpainter, workdir: Path, max_upload_mb: int):
    """The Gradio Blocks page (also reachable with gradio_client: ``/inpaint_files``)."""
    import gradio as gr

    from inpaintkit.demo import demo_photos

    examples = [str(write_image(workdir / "examples" / f"{n}.png", p)) for n, p in demo_photos(384)]
    limit = inpainter.max_pixels

    def results_folder() -> Path:
        folder = workdir / "results" / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    def fail(exc: InpaintError):
        message = f"{exc}; paint or select on the photo itself" if isinstance(exc, MaskSizeError) else str(exc)
        message = re.sub(re.escape(str(workdir)) + r"\S*/", "", message)  # a file's name, not the server's folders
        return gr.Error(message, print_exception=False)

    def selection_view(session: Session | None, dilate=8, colour=HOLE_COLOUR, opacity=HOLE_OPACITY):
        """The photo with the selected object tinted as the brush shows the hole."""
        if session is None:
            return None
        rgb = read_image(session.photo, max_pixels=limit)
        included = [(x, y) for x, y, include in session.points if include]
        if not included:
            return rgb
        excluded = [(x, y) for x, y, include in session.points if not include]
        return overlay(rgb, select_object(rgb, included, excluded, int(dilate)), rgb_colour(colour), float(opacity))

    def view(session: Session | None):
        """What the page shows of a session's current photo: the editor's photo (loaded by the page,
        see LOAD_PHOTO), the selection view, undo, redo."""
        if session is None:
            return "", None, gr.update(interactive=False), gr.update(interactive=False)
        last = len(session.versions) - 1
        undo_redo = gr.update(interactive=session.index > 0), gr.update(interactive=session.index < last)
        return f"/gradio_api/file={session.photo}", selection_view(session), *undo_redo

    def open_photo(path: str | None):
        if not path:
            raise gr.Error("upload a photo first")
        size = Path(path).stat().st_size / 2**20
        if size > max_upload_mb:  # what the page's own check (SIZE_CHECK) refuses before sending
            raise gr.Error(f"this photo is {size:.1f} MB; the limit is {max_upload_mb} MB (--max-upload-mb)")
        try:
            read_image(path, max_pixels=limit)  # what is not a photo is refused here, in one line
        except InpaintError as exc:
            raise fail(exc) from None
        session = Session(path, Path(path).stem)
        return (session, *view(session), None, None, None, "Paint over what should disappear, then **Inpaint**.")

    def fill(session: Session | None, editor, mask_path, quick, method, strategy, dilate, aspect, *extend):
        """A generator: it reports the time while the fill runs, and a cancelled page closes it,
        which cancels the fill (a queued one never starts; a running one stops at its next stage)."""
        if session is None:
            raise gr.Error("open a photo first")
        included = tuple((x, y) for x, y, include in session.points if include)
        excluded = tuple((x, y) for x, y, include in session.points if not include) if included else ()
        try:
            border = Extension(**{side: int(v or 0) for side, v in zip(SIDES, extend, strict=True)})
            if aspect and aspect != "none":  # a ratio replaces the sides' pixels
                border = Extension.parse(f"aspect={aspect}")
        except InpaintError as exc:
            raise fail(exc) from None
        border = border if border.aspect or any(border.sides) else None
        editing = None
        if included or border:  # the CLI's hole sources, built from the page's controls
            editing = HoleSource(
                select=included, exclude=excluded, dilate=int(dilate or 0), extend=border, max_pixels=limit
            )
        folder = results_folder()

        def read():
            rgb, keep = read_photo(session.photo, max_pixels=limit)
            size = rgb.shape[:2]
            background = (editor or {}).get("background")
            if background and Image.open(background).size[::-1] != size:  # a photo dropped on the editor itself
                raise InpaintError("open photos with the Open a photo button (the editor only paints the hole)")
            hole = hole_from_editor(editor, size)
            if mask_path:
                hole |= read_mask(mask_path, size=size, resize=True, max_pixels=limit)
            if quick and quick != "none":
                hole |= MaskGenerator(quick).sample(0, *size, seed=0) > 0.5
            if editing is not None:
                return editing.read(Path(session.photo), rgb, keep, hole)[:3]
            return rgb, hole, keep

        def deliver(hole, result, keep, seconds):
            out = write_photo(folder / f"{session.name}-inpainted.png", result, keep, hole)
            mask = write_image(folder / f"{session.name}-mask.png", (hole * 255).astype(np.uint8))
            return str(out), str(mask), hole.mean(), seconds

        try:
            future, cancelled = inpainter.submit(read, method, strategy, deliver)
        except InpaintError as exc:
            raise fail(exc) from None
        start = time.perf_counter()
        try:
            while not wait([future], timeout=0.5).done:
                yield (
                    gr.update(),
                    gr.update(),
                    gr.update(),
                    gr.update(),
                    f"Filling… {time.perf_counter() - start:.0f} s",
                )
            out, mask, ratio, seconds = future.result()
        except InpaintError as exc:
            raise fail(exc) from None
        finally:
            cancelled.set()
            future.cancel()
        info = (
            f"Filled {ratio * 100:.1f} % of the photo with **{method}** in {seconds:.2f} s. "
            "**Use as photo** continues from this result."
        )
        shown = gr.update(value=out, visible=True), gr.update(value=mask, visible=True)
        yield (session.photo, out), *shown, out, info

    def continue_from(session: Session | None, result: str | None):
        if session is None or not result:
            raise gr.Error("fill the photo first")
        session.push(result)
        return (session, *view(session), None, None, "Continuing from the result: paint the next thing to remove.")

    def undo_redo(delta: int):
        def handler(session: Session | None):
            if session is None:
                raise gr.Error("open a photo first")
            session.step(delta)
            return (session, *view(session))

        return handler

    def click(session: Session | None, mode: str, dilate, colour, opacity, evt: gr.SelectData):
        if session is None:
            raise gr.Error("open a photo first")
        x, y = (int(v) for v in evt.index)
        session.points.append((x, y, mode == "add to the selection"))
        try:
            return session, selection_view(session, dilate, colour, opacity)
        except InpaintError as exc:
            session.points.pop()
            raise fail(exc) from None

    click.__annotations__["evt"] = gr.SelectData  # resolved here: the module defers annotations

    def clear_points(session: Session | None, dilate, colour, opacity):
        if session is not None:
            session.points = []
        return session, selection_view(session, dilate, colour, opacity)

    def restyle(session: Session | None, dilate, colour, opacity, diameter):
        """The brush and the selection view in the hole's colour, opacity and size (image pixels)."""
        brush = gr.Brush(colors=[(rgb_colour(colour), float(opacity))], default_size=max(1, int(diameter) // 2),
                         color_mode="fixed")  # fmt: skip
        return gr.update(brush=brush), selection_view(session, dilate, colour, opacity)

    def from_files(image, mask, method, strategy):
        """gradio_client: a photo and a mask file in, the result's path and a summary out."""
        if not image:
            raise gr.Error("upload a photo first")
        *_, last = fill(Session(image, Path(image).stem), None, mask, "none", method, strategy, 8, "none", 0, 0, 0, 0)
        return last[3], last[4]

    def apply_task(image, name):
        if not image:
            raise gr.Error("upload a photo first")
        try:
            rgb = read_image(image, max_pixels=limit)
            model = inpainter.model(name, inpainter.image_tasks)
            out = inpainter.workers.submit(apply_array, model, rgb).result()
        except InpaintError as exc:
            raise fail(exc) from None
        return str(write_image(results_folder() / f"{Path(image).stem}-{name}.png", out))

    groups = [(f"{n} (learned)" if n == DEFAULT_MODEL or n not in classical_names() else f"{n} (classical)", n)
              for n in inpainter.choices]  # fmt: skip
    with gr.Blocks(title="inpaintkit") as demo:
        session = gr.State(None)
        last_result = gr.State(None)
        gr.Markdown("# inpaintkit\nRemove things from a photo: open it, mark the hole, **Inpaint**, repeat.")
        with gr.Tab("Inpaint"):
            with gr.Row():
                with gr.Column():
                    upload = gr.UploadButton("Open a photo", file_types=["image"], type="filepath", elem_id="open")
                    editor = gr.ImageMask(
                        label="Paint the hole (Alt+wheel: zoom; wheel or the hand tool: move)", type="filepath",
                        image_mode="RGB", format="png", layers=False, transforms=(), sources=("upload",),
                        elem_id="editor", brush=gr.Brush(colors=[(HOLE_COLOUR, HOLE_OPACITY)], default_size=24,
                                                         color_mode="fixed"),
                    )  # fmt: skip
                    with gr.Row():
                        diameter = gr.Slider(2, 800, value=48, step=2, label="Brush diameter (image px)",
                                             elem_id="brush-size")  # fmt: skip
                        colour = gr.ColorPicker(HOLE_COLOUR, label="Hole colour", elem_id="hole-colour")
                        opacity = gr.Slider(0.1, 1, value=HOLE_OPACITY, step=0.05, label="Hole opacity",
                                            elem_id="hole-opacity")  # fmt: skip
                    with gr.Row():
                        undo = gr.Button("Undo fill", interactive=False, elem_id="undo")
                        redo = gr.Button("Redo fill", interactive=False, elem_id="redo")
                    with gr.Accordion("Select an object by clicking it", open=False):
                        mode = gr.Radio(["add to the selection", "remove from it"], value="add to the selection",
                                        show_label=False)  # fmt: skip
                        selection = gr.Image(label="Click the object (the selection is tinted)", interactive=False,
                                             type="numpy", elem_id="select")  # fmt: skip
                        dilate = gr.Slider(0, 64, value=8, step=1, label="Grow the selection by (px)")
                        clear = gr.Button("Clear the selection")
                    with gr.Accordion("Extend the canvas (outpainting)", open=False):
                        with gr.Row():
                            extend = [
                                gr.Number(0, label=f"{side} (px)", minimum=0, maximum=MAX_EXTEND, precision=0,
                                          elem_id=f"extend-{side}")
                                for side in SIDES
                            ]  # fmt: skip
                        aspect = gr.Dropdown(list(ASPECTS), value="none", allow_custom_value=True,
                                             label="or to a width:height ratio (replaces the pixels)",
                                             elem_id="extend-aspect")  # fmt: skip
                    with gr.Accordion("Mask file or quick mask", open=False):
                        mask_file = gr.File(label="Mask (white = hole)", file_types=["image"], type="filepath")
                        quick = gr.Radio(list(QUICK_MASKS), value="none", label="Quick mask", elem_id="quick")
                    with gr.Row():
                        method = gr.Dropdown(groups, value=inpainter.default, label="Method", elem_id="method")
                        strategy = gr.Dropdown(list(STRATEGIES), value="auto", label="Large photos")
                    with gr.Row():
                        button = gr.Button("Inpaint", variant="primary", elem_id="run")
                        cancel = gr.Button("Cancel", elem_id="cancel")
                with gr.Column():
                    compare = gr.ImageSlider(label="Before / after (drag the handle)", type="filepath",
                                             interactive=False, elem_id="result")  # fmt: skip
                    with gr.Row():
                        use = gr.Button("Use as photo (next pass)", elem_id="continue")
                        download = gr.DownloadButton("Download result", visible=False, elem_id="download")
                        download_mask = gr.DownloadButton("Download mask", visible=False, elem_id="download-mask")
                    info = gr.Markdown(elem_id="info")
                    gr.HTML("<div></div>", elem_id="notice")  # the page's own messages (SIZE_CHECK)
            example = gr.Image(type="filepath", visible=False)
            gr.Examples(examples=examples, inputs=[example], label="Example photos")
        with gr.Tab("Image to image"):
            with gr.Row():
                task_in = gr.Image(label="Photo", type="filepath", sources=("upload",), elem_id="task-in")
                task_out = gr.Image(label="Result", type="filepath", interactive=False, elem_id="task-out")
            with gr.Row():
                task_model = gr.Dropdown(list(inpainter.image_tasks), value=next(iter(inpainter.image_tasks)),
                                         label="Model")  # fmt: skip
                gr.Button("Apply", variant="primary", elem_id="apply").click(
                    apply_task, [task_in, task_model], task_out
                )
        photo_url = gr.Textbox(visible=False)
        shown = [photo_url, selection, undo, redo]
        opened = [session, *shown, mask_file, compare, last_result, info]
        upload.upload(open_photo, upload, opened).then(None, photo_url, js=LOAD_PHOTO)
        example.change(open_photo, example, opened).then(None, photo_url, js=LOAD_PHOTO)
        running = button.click(
            fill, [session, editor, mask_file, quick, method, strategy, dilate, aspect, *extend],
            [compare, download, download_mask, last_result, info], show_progress_on=[compare],
        )  # fmt: skip
        cancel.click(None, cancels=[running])
        use.click(continue_from, [session, last_result], [session, *shown, mask_file, compare, info]).then(
            None, photo_url, js=LOAD_PHOTO
        )
        undo.click(undo_redo(-1), session, [session, *shown]).then(None, photo_url, js=LOAD_PHOTO)
        redo.click(undo_redo(+1), session, [session, *shown]).then(None, photo_url, js=LOAD_PHOTO)
        style = [session, dilate, colour, opacity]
        selection.select(click, [session, mode, *style[1:]], [session, selection])
        clear.click(clear_points, style, [session, selection])
        # body[data-styled] counts the restyles the page has received (tests wait for the brush they set)
        styled = "() => { document.body.dataset.styled = String(Number(document.body.dataset.styled || 0) + 1); }"
        for control in (diameter, colour, opacity):
            control.change(restyle, [*style, diameter], [editor, selection], show_progress="hidden").then(
                None, js=styled
            )
        # body[data-ready] says the page's own scripts are installed (tests wait for it).
        ready = "document.body.dataset.ready = 'true';"
        demo.load(None, js=f"() => {{ ({SIZE_CHECK})({max_upload_mb}); ({KEYS})(); {ready} }}")
        # files, not images: Gradio would decode (and re-encode) them before our one-line checks
        image_in = gr.File(type="filepath", visible=False)
        mask_in = gr.File(type="filepath", visible=False)
        hidden = gr.Button(visible=False)
        result_out = gr.Textbox(visible=False)
        hidden.click(from_files, [image_in, mask_in, method, strategy], [result_out, info], api_name="inpaint_files")
    return demo


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
    is False (tests). The app's folder (uploads, results) is removed when the server stops."""
    max_pixels = max_pixels or APP_MAX_PIXELS
    if min(concurrency, max_upload_mb, max_pixels) < 1:
        raise InpaintError("concurrency, max upload MB and max pixels must each be at least 1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if block:  # SIGTERM (docker stop, systemd) stops the server as Ctrl+C does, so its folder is removed
        signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="inpaintkit-app-"))
    demo = local_url = None
    try:  # a stop while starting (SIGTERM, Ctrl+C) leaves no folder either
        os.environ["GRADIO_TEMP_DIR"] = str(workdir / "uploads")  # Gradio's uploads and cache stay in our folder
        inpainter = Inpainter(weights_dir, backend=backend, concurrency=concurrency, max_pixels=max_pixels)

        @contextlib.asynccontextmanager
        async def lifespan(_app):
            yield
            inpainter.close()
            shutil.rmtree(workdir, ignore_errors=True)

        demo = build_demo(inpainter, workdir, max_upload_mb)
        demo.queue(default_concurrency_limit=concurrency, max_size=64)
        max_bytes = max_upload_mb * 1024 * 1024
        # A fill sends the editor's photo and painted layer back as PNGs (up to 4 bytes a pixel), bigger
        # than the photo's own file: Gradio's per-file limit allows that for any photo within max_pixels,
        # and the photo itself is held to --max-upload-mb by the page (SIZE_CHECK) and by open_photo.
        editor_bytes = max_bytes + 4 * max_pixels
        app_kwargs = {"routes": [api_route(inpainter, workdir, max_bytes)], "lifespan": lifespan, "docs_url": "/docs"}
        _, local_url, _ = demo.launch(
            server_name=host, server_port=port, share=share, max_file_size=editor_bytes, prevent_thread_lock=True,
            app_kwargs=app_kwargs, allowed_paths=[str(workdir)], quiet=not block, show_error=False,
        )  # fmt: skip
        demo.workdir = workdir
        if block:
            api = f"HTTP API: POST {local_url}api/inpaint, described at {local_url}docs"
            print(f"inpaintkit app on {local_url} ({api})")
            demo.block_thread()  # on Ctrl+C it closes the server, whose lifespan removes the folder
    except _Stopped:  # SIGTERM before blocking (the server may already answer): a clean stop, as during it
        if demo is not None:
            demo.close()
        shutil.rmtree(workdir, ignore_errors=True)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return demo, local_url


class _Stopped(KeyboardInterrupt):
    """SIGTERM: a request to stop. Gradio's wait for Ctrl+C closes the server on it too."""


def _interrupt(signum, frame):
    raise _Stopped
