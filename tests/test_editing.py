"""Holes made by editing: canvas extension and click-to-select, in Python and through the CLI."""

import numpy as np
import pytest
from PIL import Image

from inpaintkit.editing import Extension, parse_points, select_object
from inpaintkit.errors import InpaintError
from inpaintkit.io import read_image

from .conftest import run_cli, shared


def ball_photo(h: int = 240, w: int = 320) -> tuple[np.ndarray, np.ndarray]:
    """A red ball on a noisy green field: a photo with one clear object."""
    rng = np.random.default_rng(0)
    rgb = (rng.normal(0, 10, (h, w, 3)) + [70, 140, 60]).clip(0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:h, :w]
    ball = (yy - 120) ** 2 + (xx - 200) ** 2 < 40**2
    rgb[ball] = (rng.normal(0, 10, (ball.sum(), 3)) + [210, 40, 40]).clip(0, 255)
    return rgb, ball


def test_extension_parses_sides_all_and_aspect():
    assert Extension.parse("left=128, right=64").sides == (128, 0, 64, 0)
    assert Extension.parse("all=5").sides == (5, 5, 5, 5)
    assert Extension.parse("aspect=16:9").fit(90, 100).sides == (30, 0, 30, 0)  # 100x90 -> 160x90
    assert Extension.parse("aspect=1:2").fit(100, 100).sides == (0, 50, 0, 50)
    for bad in ("left=x", "", "middle=3", "left=0", "top=99999", "aspect=0:9", "aspect=16:9,left=3", "left=-4"):
        with pytest.raises(InpaintError):
            Extension.parse(bad)
    with pytest.raises(InpaintError, match="has that aspect already"):
        Extension.parse("aspect=1:1").fit(50, 50)


def test_extension_adds_a_border_that_is_the_hole():
    rgb, _ = ball_photo(20, 30)
    bigger, hole = Extension(left=4, top=2, bottom=1).apply(rgb)
    assert bigger.shape == (23, 34, 3) and hole.shape == (23, 34)
    np.testing.assert_array_equal(bigger[2:22, 4:], rgb)
    assert hole[:2].all() and hole[22].all() and hole[:, :4].all() and not hole[2:22, 4:].any()


def test_one_click_selects_the_object():
    rgb, ball = ball_photo()
    hole = select_object(rgb, [(200, 120)], dilate=0)
    assert (hole & ball).sum() / (hole | ball).sum() > 0.9
    grown = select_object(rgb, [(200, 120)], dilate=6)
    assert grown[hole].all() and grown.sum() > hole.sum()
    yy, xx = np.mgrid[:240, :320]
    assert not grown[(yy - 120) ** 2 + (xx - 200) ** 2 > (40 + 8) ** 2].any()
    assert parse_points("12,5; 7,9") == [(12, 5), (7, 9)]
    for bad in ("12", "a,b", "1,2,3"):
        with pytest.raises(InpaintError, match="x,y"):
            parse_points(bad)
    with pytest.raises(InpaintError, match="outside"):
        select_object(rgb, [(320, 10)])
    with pytest.raises(InpaintError, match="at least one point"):
        select_object(rgb, [])


def test_cli_selects_and_extends(tmp_path):
    rgb, ball = ball_photo()
    Image.fromarray(rgb).save(tmp_path / "ball.png")
    result = run_cli("inpaint", tmp_path / "ball.png", "--select", "200,120", "--model", "telea",
                     "-o", tmp_path / "gone.png")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    out = read_image(tmp_path / "gone.png")
    changed = (out != rgb).any(axis=2)
    assert changed[ball].mean() > 0.95 and changed.sum() < 2.2 * ball.sum()
    photo = shared("bsds500", "test", "100007.jpg")
    result = run_cli("inpaint", photo, "--extend", "aspect=16:9", "--model", "telea", "-o", tmp_path / "wide.png")
    assert result.returncode == 0, result.stderr[-2000:]
    wide, original = read_image(tmp_path / "wide.png"), read_image(photo)
    assert wide.shape[0] == original.shape[0] and abs(wide.shape[1] / wide.shape[0] - 16 / 9) < 0.01
    left = (wide.shape[1] - original.shape[1]) // 2
    np.testing.assert_array_equal(wide[:, left : left + original.shape[1]], original)
    for args, words in (
        (["--select", "9999,1"], "outside the"),
        (["--extend", "left=x"], "extend 'left=x'"),
        (["--exclude", "3,3"], "points to exclude"),
        ([], "no hole given"),
    ):
        bad = run_cli("inpaint", tmp_path / "ball.png", *args, "-o", tmp_path / "bad.png")
        assert bad.returncode == 2 and words in bad.stderr and "Traceback" not in bad.stderr, (args, bad.stderr)
        assert not (tmp_path / "bad.png").exists()
