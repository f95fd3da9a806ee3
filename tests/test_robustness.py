"""Whatever a camera or a browser produces: the right result, or one clear message and a non-zero
exit, never a traceback, a partial output file or an overwritten input."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import inpaintkit

from .conftest import png_bytes, run_cli


def _save(path, array, **kwargs):
    Image.fromarray(array).save(path, **kwargs)
    return path


def make_inputs(folder):
    """name -> (photo path, mask path, expected: 'ok' or a substring of the error)."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    hole = np.zeros((40, 60), np.uint8)
    hole[10:20, 20:40] = 255
    mask = _save(folder / "mask.png", hole)
    good = _save(folder / "photo.png", rgb)
    cases = {}
    (folder / "empty.jpg").write_bytes(b"")
    cases["empty file"] = (folder / "empty.jpg", mask, "empty")
    (folder / "text.jpg").write_text("not really a photo")
    cases["text named .jpg"] = (folder / "text.jpg", mask, "not an image")
    _save(folder / "big.jpg", rng.integers(0, 256, (200, 300, 3), dtype=np.uint8), quality=90)
    (folder / "trunc.jpg").write_bytes((folder / "big.jpg").read_bytes()[:3000])
    cases["truncated JPEG"] = (folder / "trunc.jpg", mask, "truncated")
    (folder / "trunc.png").write_bytes(good.read_bytes()[:500])
    cases["truncated PNG"] = (folder / "trunc.png", mask, "truncated|cannot read|not an image")
    (folder / "zero.png").write_bytes(png_bytes(0, 10))
    cases["zero-sized image"] = (folder / "zero.png", mask, "not an image|zero size")
    (folder / "bomb.png").write_bytes(png_bytes(30000, 30000))
    cases["decompression bomb"] = (folder / "bomb.png", mask, "megapixels")
    for side in (1, 3):
        photo = _save(folder / f"tiny{side}.png", rgb[:side, :side])
        m = _save(folder / f"tinymask{side}.png", np.full((side, side), 255, np.uint8))
        cases[f"{side}x{side} image"] = (photo, m, "ok")
    cases["grayscale"] = (_save(folder / "gray.png", rgb[:, :, 0]), mask, "ok")
    cases["palette"] = (folder / "p.png", mask, "ok")
    Image.fromarray(rgb).convert("P").save(folder / "p.png")
    cases["RGBA"] = (_save(folder / "rgba.png", np.dstack([rgb, np.full((40, 60), 128, np.uint8)])), mask, "ok")
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    cases["CMYK"] = (folder / "cmyk.jpg", mask, "ok")
    cases["16-bit PNG"] = (_save(folder / "d16.png", (rgb[:, :, 0].astype(np.uint16) * 257)), mask, "ok")
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = 3  # rotated 180 degrees: same size
    img.save(folder / "exif.jpg", exif=exif)
    cases["EXIF-rotated JPEG"] = (folder / "exif.jpg", mask, "ok")
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    cases["animated GIF"] = (folder / "anim.gif", mask, "ok")
    frames[0].save(folder / "pages.tiff", save_all=True, append_images=frames[1:])
    cases["multi-page TIFF"] = (folder / "pages.tiff", mask, "ok")
    cases["mask of another size"] = (good, _save(folder / "m-size.png", np.zeros((10, 10), np.uint8)), "--resize-mask")
    cases["mask all zero"] = (good, _save(folder / "m-zero.png", np.zeros((40, 60), np.uint8)), "ok")
    cases["mask all one"] = (good, _save(folder / "m-one.png", np.full((40, 60), 255, np.uint8)), "ok")
    grey = hole.copy()
    grey[grey > 0] = 7
    cases["mask with grey values"] = (good, _save(folder / "m-grey.png", grey), "ok")
    alpha = np.zeros((40, 60, 4), np.uint8)
    alpha[10:20, 20:40, 3] = 255
    cases["mask with alpha only"] = (good, _save(folder / "m-alpha.png", alpha), "ok")
    odd = folder / "ünï cödé folder" / "a photo with spaces.png"
    odd.parent.mkdir()
    cases["non-ASCII and space path"] = (_save(odd, rgb), mask, "ok")
    return cases


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("inputs"))


CASES = [
    "empty file", "text named .jpg", "truncated JPEG", "truncated PNG", "zero-sized image", "decompression bomb",
    "1x1 image", "3x3 image", "grayscale", "palette", "RGBA", "CMYK", "16-bit PNG", "EXIF-rotated JPEG",
    "animated GIF", "multi-page TIFF", "mask of another size", "mask all zero", "mask all one",
    "mask with grey values", "mask with alpha only", "non-ASCII and space path",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_cli_bad_input_matrix(case, inputs, tmp_path):
    photo, mask, expected = inputs[case]
    before = photo.read_bytes()
    out = tmp_path / "out dir" / "result.png"
    result = run_cli("inpaint", photo, "--mask", mask, "--model", "telea", "-o", out)
    assert "Traceback" not in result.stderr
    if expected == "ok":
        assert result.returncode == 0, result.stderr
        Image.open(out).verify()
    else:
        assert result.returncode != 0 and not out.exists()
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        import re

        assert re.search(expected, lines[0]), lines[0]
    assert photo.read_bytes() == before  # the input is never touched


def test_unwritable_output_folder_and_output_equal_to_input(inputs, tmp_path):
    photo, mask, _ = inputs["grayscale"]
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        result = run_cli("inpaint", photo, "--mask", mask, "--model", "telea", "-o", locked / "sub" / "o.png")
        if os.geteuid() != 0:  # root writes anywhere; the check is for ordinary users
            assert result.returncode == 2 and "cannot write" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        os.chmod(locked, 0o700)
    before = photo.read_bytes()
    result = run_cli("inpaint", photo, "--mask", mask, "--model", "telea", "-o", photo)
    assert result.returncode == 2 and "overwrite an input" in result.stderr and photo.read_bytes() == before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    h=st.integers(1, 48), w=st.integers(1, 48), seed=st.integers(0, 2**31 - 1),
    fill=st.floats(0, 1), method=st.sampled_from(["telea", "navier-stokes", "mean-fill", "biharmonic"]),
)  # fmt: skip
def test_any_image_and_mask_keeps_known_pixels(h, w, seed, fill, method):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    hole = rng.random((h, w)) < fill
    out = inpaintkit.inpaint(image, hole, model=method)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~hole], image[~hole])
