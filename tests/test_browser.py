"""A real browser: Debian's Chromium driven by Playwright uploads a photo, paints a stroke with the
mouse, runs the fill and checks the result against the input."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaintkit.io import read_image

from .conftest import shared
from .test_app import free_port

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip


@pytest.fixture(scope="module")
def app_url():
    pytest.importorskip("gradio", reason="the app extra is installed by make test")
    from inpaintkit.app import launch

    demo, url = launch(port=free_port(), block=False)
    yield url
    demo.close()


def test_paint_a_stroke_and_fill_it(app_url, tmp_path):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "make test installs Debian's chromium package"
    rgb = read_image(shared("bsds500", "test", "100007.jpg"))
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url, wait_until="networkidle")
        page.locator("#editor input[type=file]").set_input_files(str(tmp_path / "photo.png"))
        canvas = page.locator("#editor canvas").first
        canvas.wait_for(state="visible")
        page.wait_for_timeout(1500)
        box = canvas.bounding_box()
        y = box["y"] + box["height"] * 0.5
        page.mouse.move(box["x"] + box["width"] * 0.3, y)
        page.mouse.down()
        for i in range(1, 21):
            page.mouse.move(box["x"] + box["width"] * (0.3 + 0.4 * i / 20), y)
        page.mouse.up()
        page.wait_for_timeout(500)
        page.locator("#run").click()
        result = page.locator("#result img")
        result.wait_for(state="visible", timeout=120_000)
        src = result.get_attribute("src")
        data = page.request.get(src if src.startswith("http") else app_url.rstrip("/") + src).body()
        browser.close()
    (tmp_path / "result.png").write_bytes(data)
    out = read_image(tmp_path / "result.png")
    assert out.shape == rgb.shape
    changed = (out != rgb).any(axis=2)
    rows, cols = np.nonzero(changed)
    assert changed.sum() > 200  # the stroke was filled
    h, w = changed.shape
    # Everything that changed lies on the painted band; everything else is bit-identical.
    assert 0.3 * h < rows.min() and rows.max() < 0.7 * h, (rows.min(), rows.max())
    assert cols.max() - cols.min() > 0.4 * w  # a long horizontal stroke, as drawn
    assert 0.05 * w < cols.min() and cols.max() < 0.95 * w, (cols.min(), cols.max())
    np.testing.assert_array_equal(out[: int(0.3 * h)], rgb[: int(0.3 * h)])
    np.testing.assert_array_equal(out[int(0.7 * h) :], rgb[int(0.7 * h) :])
