"""A real browser: Debian's Chromium driven by Playwright edits photos the way a person does (open,
paint, fill, continue, undo, click an object, extend the canvas, cancel) and every result is checked
against its input. The first test also takes the README's screenshot of the editor."""

import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaintkit.io import read_image

from .conftest import REPO, shared
from .test_app import free_port

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
SCREENSHOT = REPO / "docs" / "images" / "app-editor.png"
UPLOAD = "input[data-testid='Open a photo-upload-button']"
# One worker runs them all (`make test` runs pytest with --dist loadgroup): one app, one Chromium at a time.
pytestmark = pytest.mark.xdist_group("browser")


@pytest.fixture(scope="module")
def app_url():
    pytest.importorskip("gradio", reason="the app extra is installed by make test")
    from inpaintkit.app import launch

    demo, url = launch(port=free_port(), block=False, max_upload_mb=1)
    yield url
    demo.close()


@pytest.fixture
def page(app_url):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "make test installs Debian's chromium package"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(app_url, wait_until="load")
        page.locator("#open").wait_for(timeout=60_000)
        # The page renders in steps: wait for its last element and its own scripts before acting.
        page.wait_for_function("document.querySelector('#notice') && document.body.dataset.ready", timeout=60_000)
        page.app_url = app_url
        yield page
        browser.close()


def settle(page) -> None:
    """Wait until the editor has its photo (Gradio shows "processing" while it loads one)."""
    page.locator("#editor canvas").first.wait_for(state="visible")
    page.wait_for_timeout(300)
    page.wait_for_function("!document.querySelector('#editor').innerText.includes('processing')", timeout=60_000)
    page.wait_for_timeout(1000)  # the canvas draws the new photo after the event ends


def restyled(page, change) -> None:
    """Run ``change`` (which sets the brush's size or colour) and wait until the server's new brush
    has reached the editor (the restyle shows no progress for ``settle`` to wait on)."""
    before = page.evaluate("Number(document.body.dataset.styled || 0)")
    change()
    page.wait_for_function(f"Number(document.body.dataset.styled || 0) > {before}", timeout=60_000)
    page.wait_for_timeout(300)


def open_photo(page, path: Path) -> None:
    page.locator(UPLOAD).set_input_files(str(path))
    page.wait_for_function("document.querySelector('#info')?.innerText.includes('Paint over')", timeout=60_000)
    settle(page)


def update_screenshot(png: bytes) -> None:
    """Rewrite the README's screenshot when the page looks different (not for a few pixels of
    antialiasing, so a test run leaves the working tree clean)."""
    import io

    new = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    if SCREENSHOT.is_file():
        old = np.asarray(Image.open(SCREENSHOT).convert("RGB")).astype(int)
        if old.shape == new.shape and (np.abs(old - new).max(axis=2) > 24).mean() < 0.002:
            return
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.write_bytes(png)


def choose(page, method: str) -> None:
    """Pick a method in the list (Telea keeps the browser tests quick; the default is tested elsewhere)."""
    page.locator("#method input").first.click()
    page.get_by_role("option", name=method).click()


def paint(page, y: float, x0: float = 0.3, x1: float = 0.7) -> None:
    """A horizontal stroke across the editor's photo at height ``y`` (fractions of the canvas)."""
    box = page.locator("#editor canvas").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * x0, box["y"] + box["height"] * y)
    page.mouse.down()
    for x in (x0 + x1) / 2, x1:  # each move draws a segment in software WebGL (~0.5 s): few, long ones
        page.mouse.move(box["x"] + box["width"] * x, box["y"] + box["height"] * y)
    page.mouse.up()
    page.wait_for_timeout(300)


def fetch(page, src: str, path: Path) -> np.ndarray:
    path.write_bytes(page.request.get(src if src.startswith("http") else page.app_url.rstrip("/") + src).body())
    return read_image(path)


def fill(page, tmp_path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Press Inpaint and wait: ``(before, after)`` as the before/after view shows them."""
    images = page.locator("#result img")
    previous = images.nth(1).get_attribute("src") if images.count() == 2 else ""
    page.locator("#run").click()
    page.wait_for_function(
        "([old]) => { const imgs = document.querySelectorAll('#result img');"
        " return document.querySelector('.toast-body') || imgs.length === 2 && imgs[1].src"
        " && !imgs[1].src.endsWith(old) && document.querySelector('#info')?.innerText.includes('Filled'); }",
        arg=[previous or "\u0000"], timeout=120_000,
    )  # fmt: skip
    assert not page.locator(".toast-body").count(), page.locator(".toast-body").all_inner_texts()
    page.wait_for_timeout(500)
    assert images.count() == 2  # the before/after view shows both
    before, after = (images.nth(i).get_attribute("src") for i in range(2))
    return fetch(page, before, tmp_path / f"{name}-before.png"), fetch(page, after, tmp_path / f"{name}-after.png")


def use_as_photo(page) -> None:
    page.locator("#continue").click()
    page.wait_for_function("document.querySelector('#info')?.innerText.includes('Continuing')")
    settle(page)


def changed_rows(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    rows = np.nonzero((a != b).any(axis=(1, 2)))[0]
    return rows.min(), rows.max()


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> tuple[Path, np.ndarray]:
    rgb = read_image(shared("bsds500", "test", "100007.jpg"))
    path = tmp_path_factory.mktemp("browser") / "polar.png"
    Image.fromarray(rgb).save(path)
    return path, rgb


def test_two_fills_in_a_row_with_undo_between(page, photo, tmp_path):
    path, rgb = photo
    h = rgb.shape[0]
    open_photo(page, path)
    paint(page, 0.5)
    update_screenshot(page.screenshot(clip={"x": 0, "y": 0, "width": 1400, "height": 760}))
    choose(page, "telea (classical)")
    before, first = fill(page, tmp_path, "first")
    np.testing.assert_array_equal(before, rgb)
    top, bottom = changed_rows(rgb, first)
    assert 0.35 * h < top and bottom < 0.65 * h  # only the painted band changed
    use_as_photo(page)
    paint(page, 0.2)
    before, second = fill(page, tmp_path, "second")
    np.testing.assert_array_equal(before, first)  # the second pass started from the first result
    top, bottom = changed_rows(first, second)
    assert 0.05 * h < top and bottom < 0.35 * h
    use_as_photo(page)
    assert page.locator("#redo").is_disabled()
    page.locator("#undo").click()  # back to the first result: the second pass is undone
    settle(page)
    assert page.locator("#redo").is_enabled()
    paint(page, 0.8)
    before, third = fill(page, tmp_path, "third")
    np.testing.assert_array_equal(before, first)
    top, bottom = changed_rows(first, third)
    assert 0.65 * h < top and bottom < 0.95 * h  # the band at 0.2 is the photo's again, not the second fill
    use_as_photo(page)
    assert page.locator("#redo").is_disabled()  # a new pass after an undo drops the undone one


def test_click_an_object_to_select_and_remove_it(page, tmp_path):
    rng = np.random.default_rng(0)
    h, w = 240, 320
    rgb = (rng.normal(0, 10, (h, w, 3)) + [70, 140, 60]).clip(0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:h, :w]
    ball = (yy - 120) ** 2 + (xx - 200) ** 2 < 40**2
    rgb[ball] = [210, 40, 40]
    Image.fromarray(rgb).save(tmp_path / "ball.png")
    open_photo(page, tmp_path / "ball.png")
    choose(page, "telea (classical)")
    page.get_by_text("Select an object by clicking it").click()
    view = page.locator("#select img")
    view.wait_for(state="visible")
    box = view.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 200 / w, box["y"] + box["height"] * 120 / h)
    settle(page)
    _, out = fill(page, tmp_path, "ball")
    changed = (out != rgb).any(axis=2)
    assert changed[ball].mean() > 0.95  # the ball is filled
    near = (yy - 120) ** 2 + (xx - 200) ** 2 < (40 + 8 + 4) ** 2  # its outline grown by the 8 px default
    assert not changed[~near].any()  # and nothing else
    assert (out[ball] - np.array([210, 40, 40])).__abs__().sum(axis=1).mean() > 100  # no red left


def test_extend_the_canvas(page, photo, tmp_path):
    path, rgb = photo
    open_photo(page, path)
    page.get_by_text("Extend the canvas (outpainting)").click()
    choose(page, "telea (classical)")  # first: the method's change event must not race the typed width
    field = page.locator("#extend-left input")
    field.fill("48")
    field.press("Tab")
    page.wait_for_function("document.querySelector('#extend-left input').value === '48'")
    page.wait_for_timeout(500)  # the page sends the field's value with the next event
    _, out = fill(page, tmp_path, "wider")
    assert out.shape == (rgb.shape[0], rgb.shape[1] + 48, 3)
    np.testing.assert_array_equal(out[:, 48:], rgb)  # the photo itself is untouched
    page.locator("#extend-aspect input").click()
    page.get_by_role("option", name="1:1").click()  # a ratio replaces the pixels
    _, out = fill(page, tmp_path, "square")
    h, w = rgb.shape[:2]
    top = (w - h) // 2
    assert out.shape == (w, w, 3)
    np.testing.assert_array_equal(out[top : top + h], rgb)


def test_uploads_over_the_limit_or_not_images_are_named_and_the_page_stays_usable(page, photo, tmp_path):
    big = np.random.default_rng(0).integers(0, 255, (800, 800, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "big.png")  # about 1.8 MB against a 1 MB limit
    page.locator(UPLOAD).set_input_files(str(tmp_path / "big.png"))
    page.wait_for_function("document.querySelector('#notice')?.innerText.includes('the limit is 1 MB')")
    size = (tmp_path / "big.png").stat().st_size / 2**20
    assert page.locator("#notice").inner_text() == (f"this photo is {size:.1f} MB; the limit is 1 MB (--max-upload-mb)")
    (tmp_path / "notes.png").write_text("not a photo")
    page.locator(UPLOAD).set_input_files(str(tmp_path / "notes.png"))
    toast = page.get_by_text("notes.png: not an image")
    toast.first.wait_for(timeout=30_000)
    assert "uploads" not in toast.first.inner_text()  # the file's name, not the server's folders
    page.locator(".toast-close").first.click()  # read and dismissed
    toast.first.wait_for(state="detached")
    open_photo(page, photo[0])  # still usable
    choose(page, "telea (classical)")
    paint(page, 0.5)
    _, out = fill(page, tmp_path, "after-errors")
    assert out.shape == photo[1].shape


def test_cancel_stops_a_fill(page, photo, tmp_path, monkeypatch):
    import inpaintkit.api

    real = inpaintkit.api.inpaint_array

    def slow(*args, **kwargs):  # a fill that is still running when Cancel lands, however loaded the machine
        time.sleep(6)
        return real(*args, **kwargs)

    monkeypatch.setattr(inpaintkit.api, "inpaint_array", slow)
    open_photo(page, photo[0])
    page.get_by_text("Mask file or quick mask").click()
    page.locator("#quick label", has_text="center").click()
    page.locator("#run").click()
    page.wait_for_function("document.querySelector('#info')?.innerText.includes('Filling')")  # the running time
    page.locator("#cancel").click()
    page.wait_for_timeout(8000)  # past the end of the slow fill: a result would have arrived by now
    assert "Filled" not in page.locator("#info").inner_text()
    assert page.locator("#result img").count() == 0  # no result arrived


def test_ctrl_z_and_ctrl_shift_z_undo_and_redo_strokes(page, photo, tmp_path):
    path, rgb = photo
    h = rgb.shape[0]
    open_photo(page, path)
    choose(page, "telea (classical)")
    paint(page, 0.3)
    paint(page, 0.7)
    page.keyboard.press("Control+z")  # the stroke at 0.7 is undone
    page.wait_for_timeout(500)
    _, out = fill(page, tmp_path, "undone")
    top, bottom = changed_rows(rgb, out)
    assert 0.15 * h < top and bottom < 0.45 * h
    page.keyboard.press("Control+Shift+z")  # and back
    page.wait_for_timeout(500)
    _, out = fill(page, tmp_path, "redone")
    top, bottom = changed_rows(rgb, out)
    assert 0.15 * h < top and 0.55 * h < bottom < 0.85 * h


def test_brush_size_in_image_pixels_and_the_hole_colour(page, photo, tmp_path):
    path, rgb = photo
    open_photo(page, path)
    size = page.locator("#brush-size input[type=number]")
    restyled(page, lambda: (size.fill("120"), size.press("Enter")))  # the brush is set by the server
    page.locator("#hole-colour button").first.click()  # the colour picker opens
    field = page.locator("#hole-colour input[type=text]")
    restyled(page, lambda: (field.fill("#00ff00"), field.press("Enter")))
    page.get_by_text("Remove things from a photo").click()  # and closes
    settle(page)
    paint(page, 0.5)
    canvas = page.locator("#editor canvas").first
    shot = np.asarray(Image.open(__import__("io").BytesIO(canvas.screenshot())).convert("RGB")).astype(int)
    stroke = shot[shot.shape[0] // 2, shot.shape[1] // 2]
    assert stroke[1] > stroke[0] + 40 and stroke[1] > stroke[2] + 40, stroke  # painted in green
    choose(page, "telea (classical)")
    _, out = fill(page, tmp_path, "wide")
    top, bottom = changed_rows(rgb, out)
    assert 110 <= bottom - top <= 135  # a 120 px brush, in the photo's own pixels
    zoom = page.locator("#editor").get_by_text(re.compile(r"^\d+%$"))
    before = int(zoom.inner_text().rstrip("%"))
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.keyboard.down("Alt")
    page.mouse.wheel(0, -400)  # Alt+wheel zooms in at the pointer
    page.keyboard.up("Alt")
    page.wait_for_timeout(500)
    assert int(zoom.inner_text().rstrip("%")) > before
