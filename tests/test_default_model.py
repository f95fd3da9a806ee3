"""The bundled default model: it loads, fills real photos with known pixels kept, runs the demo, and
its quality on fixed photos and masks is pinned so a later change cannot silently degrade it."""

import numpy as np
import pytest
from PIL import Image

import inpaintkit
from inpaintkit.data import fit_square
from inpaintkit.evaluation import score
from inpaintkit.io import read_image
from inpaintkit.loading import DEFAULT_MODEL, bundled_weights, load_model
from inpaintkit.masks import MaskGenerator
from inpaintkit.models import read_card

from .conftest import run_cli, shared

# PSNR (dB) of the bundled model on the first four BSDS500 test photos (256 px, centre crop) with
# lama-thick masks drawn with seed 7; measured when the weights were bundled.
PINNED_PSNR = 27.807  # Telea: 25.587; exact biharmonic (scikit-image): 26.497
PHOTOS = 4


def test_default_weights_ship_and_are_the_default():
    assert bundled_weights().is_file()
    assert bundled_weights().stat().st_size < 50e6
    model = load_model(DEFAULT_MODEL)  # what inpaint uses when no model is named
    assert model.card == read_card(bundled_weights())
    assert model.card["recipe"]["model"] == "ffc" and "bench" in model.card and "training" in model.card


def test_cli_without_model_uses_the_default_and_keeps_known_pixels(tmp_path):
    photo = shared("bsds500", "test", "100007.jpg")
    rgb = read_image(photo)
    hole = MaskGenerator("lama-thick").sample(0, *rgb.shape[:2], seed=3) > 0.5
    Image.fromarray(hole).save(tmp_path / "m.png")
    result = run_cli("inpaint", photo, "--mask", tmp_path / "m.png", "-o", tmp_path / "o.png")
    assert result.returncode == 0, result.stderr
    out = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(out[~hole], rgb[~hole])
    assert (out[hole] != rgb[hole]).any()


def fixed_cases():
    files = sorted(shared("bsds500", "test").glob("*.jpg"))[:PHOTOS]
    for i, f in enumerate(files):
        image = fit_square(read_image(f), 256)
        yield image, MaskGenerator("lama-thick").sample(i, 256, 256, seed=7) > 0.5


def test_quality_is_pinned():
    model = load_model("default")
    psnr = [score(inpaintkit.inpaint(image, hole, model=model), image, hole)["psnr"] for image, hole in fixed_cases()]
    telea = [
        score(inpaintkit.inpaint(image, hole, model="telea"), image, hole)["psnr"] for image, hole in fixed_cases()
    ]
    assert np.mean(psnr) == pytest.approx(PINNED_PSNR, abs=0.05)
    assert np.mean(psnr) > np.mean(telea) + 1.0


def test_python_api_and_odd_sizes_keep_known_pixels():
    rng = np.random.default_rng(1)
    for h, w in ((37, 53), (200, 131)):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        hole = np.zeros((h, w), bool)
        hole[h // 4 : h // 2, w // 3 : w // 2] = True
        out = inpaintkit.inpaint(image, hole)
        np.testing.assert_array_equal(out[~hole], image[~hole])


def test_demo_runs_end_to_end_with_the_default_model(tmp_path):
    result = run_cli("demo", "--out", tmp_path, "--size", "64")
    assert result.returncode == 0, result.stderr
    assert "| default |" in result.stdout and "| telea |" in result.stdout
    assert (tmp_path / "grid.png").is_file()
