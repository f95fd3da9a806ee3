import numpy as np
import pytest

from inpaintkit.errors import InpaintError
from inpaintkit.masks import PRESETS, MaskGenerator, hole_ratio, write_mask_set

from .conftest import run_cli, shared

# (min, max) of the mean hole ratio over 64 masks at 256 px: wide enough for sampling noise, narrow
# enough to catch a preset that draws nothing or everything.
EXPECTED_MEAN = {
    "center": (0.249, 0.251),
    "blocks": (0.08, 0.25),
    "box": (0.015, 0.017),
    "strokes": (0.1, 0.3),
    "lama-thin": (0.2, 0.35),
    "lama-medium": (0.15, 0.3),
    "lama-thick": (0.2, 0.35),
    "lama-wide": (0.2, 0.35),
    "outpaint": (0.25, 0.6),
}


def test_every_preset_has_an_expected_range():
    assert set(EXPECTED_MEAN) == set(PRESETS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_deterministic_and_in_range(name):
    gen = MaskGenerator(name)
    a = [gen.sample(i, 256, 256, seed=7) for i in range(64)]
    b = [gen.sample(i, 256, 256, seed=7) for i in range(64)]
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b, strict=True))
    assert all(x.dtype == np.float32 and x.shape == (256, 256) for x in a)
    assert all(set(np.unique(x)) <= {0.0, 1.0} for x in a)
    lo, hi = EXPECTED_MEAN[name]
    assert lo <= np.mean([hole_ratio(x) for x in a]) <= hi
    if name != "center":
        c = gen.sample(0, 256, 256, seed=8)
        assert any(c.tobytes() != x.tobytes() for x in a[:1])


@pytest.mark.parametrize("name", ["lama-thin", "lama-medium", "lama-thick"])
def test_lama_masks_never_cover_more_than_half(name):
    gen = MaskGenerator(name)
    for size in (256, 512):
        assert max(hole_ratio(gen.sample(i, size, size, 0)) for i in range(40)) <= 0.5


def test_non_square_sizes():
    for name in PRESETS:
        m = MaskGenerator(name).sample(0, 120, 200, 0)
        assert m.shape == (120, 200)


def test_mixture_draws_each_component():
    gen = MaskGenerator("center:0.5,outpaint:0.5")
    kinds = {hole_ratio(gen.sample(i, 64, 64, 0)) == 0.25 for i in range(50)}
    assert kinds == {True, False}
    assert np.allclose(gen.probabilities, [0.5, 0.5])


@pytest.mark.parametrize(
    "spec, message",
    [("nope", "unknown mask preset"), ("center:x", "not a number"), ("center:-1", "negative"), ("", "empty")],
)
def test_bad_specs(spec, message):
    with pytest.raises(InpaintError, match=message):
        MaskGenerator(spec)


def test_folder_masks_from_the_irregular_set():
    folder = shared("irregular-masks", "masks")
    gen = MaskGenerator(f"folder={folder}")
    m = gen.sample(0, 128, 128, 0)
    assert m.shape == (128, 128) and 0 < m.mean() < 0.7
    assert gen._fns[0].load(0, 256, 256).mean() <= 0.1  # the first bin holds 1-10 % holes


def test_write_mask_set_writes_pngs_csv_and_preview(tmp_path):
    ratios = write_mask_set("strokes", 5, 64, 3, tmp_path / "m", preview=tmp_path / "grid.png")
    assert len(ratios) == 5 and (tmp_path / "grid.png").is_file()
    lines = (tmp_path / "m" / "masks.csv").read_text().splitlines()
    assert lines[0] == "file,hole_ratio" and len(lines) == 6
    assert sorted(p.name for p in (tmp_path / "m").glob("*.png")) == [f"{i:05d}.png" for i in range(5)]


def test_cli_masks_twice_gives_identical_bytes(tmp_path):
    for name in ("a", "b"):
        result = run_cli(
            "masks", "lama-thick", "--count", "20", "--size", "256", "--seed", "1", "--out", tmp_path / name
        )
        assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(files) == 21
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
