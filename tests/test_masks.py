import numpy as np
import pytest

from inpaintkit.errors import InpaintError
from inpaintkit.mask_sets import write_mask_set
from inpaintkit.masks import PRESETS, MaskGenerator, hole_ratio

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
    [("nope", "unknown mask preset"), ("center:x", "not a number"), ("center:-1", "must be 0 or more"), ("", "empty")],
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


def test_presets_take_parameters():
    sides = []
    for i in range(40):
        m = MaskGenerator("box:min=1,max=90").sample(i, 256, 256, 0) > 0.5
        rows, cols = np.nonzero(m)
        assert np.ptp(rows) == np.ptp(cols)  # a square
        sides.append(np.ptp(rows) + 1)
    assert 1 <= min(sides) < 30 and 60 < max(sides) <= 90
    block = MaskGenerator("blocks:count=1,size=40,shape=square").sample(0, 256, 256, 0)
    assert block.sum() == 40 * 40
    five = MaskGenerator("blocks:count=5,size=40,shape=square").sample(0, 256, 256, 0)
    assert 40 * 40 < five.sum() <= 5 * 40 * 40
    thin, thick = (MaskGenerator(f"strokes:count=1,width={w}").sample(0, 256, 256, 0).mean() for w in (4, 20))
    assert thick > 3 * thin
    assert MaskGenerator("center:fraction=0.25").sample(0, 64, 64, 0).sum() == 16 * 16
    band = MaskGenerator("outpaint:min=0.2,max=0.2").sample(0, 100, 100, 0)
    full_rows, full_cols = band.all(axis=1).sum(), band.all(axis=0).sum()
    assert {full_rows, full_cols} <= {0, 20, 40, 100} and band.any()  # bands 20 px deep on 100 px


def test_parameters_and_probabilities_in_a_mixture():
    gen = MaskGenerator("box:min=10,max=10,p=0.25,center:p=0.75")
    assert gen.names == ["box", "center"] and np.allclose(gen.probabilities, [0.25, 0.75])
    ratios = {round(hole_ratio(gen.sample(i, 64, 64, 0)), 4) for i in range(60)}
    assert ratios == {round(100 / 64**2, 4), 0.25}
    assert np.allclose(MaskGenerator("lama-thick:0.5,blocks:0.5").probabilities, [0.5, 0.5])  # as before


@pytest.mark.parametrize(
    "spec, message",
    [
        ("box:size=3", "mask preset box has no parameter 'size'; it takes min, max, margin"),
        ("box:min=x", "min='x' must be a whole number from 1 to 16384"),
        ("box:min=0", "min='0' must be a whole number from 1"),
        ("box:min=50,max=10", "min 50 is over max 10"),
        ("blocks:count=2.5", "count='2.5' must be a whole number"),
        ("blocks:shape=star", "choose from square, circle, any"),
        ("lama-thick:width=3", "mask preset lama-thick has no parameter 'width'; it takes no parameters"),
        ("min=3", "'min=3' comes before any preset"),
        ("center:fraction=nan", "fraction='nan' must be a number from 0.01 to 1"),
        ("center:p=-1", "must be 0 or more"),
    ],
)
def test_bad_parameters_are_named(spec, message):
    with pytest.raises(InpaintError, match=message.replace("(", r"\(").replace("?", r"\?")):
        MaskGenerator(spec)
