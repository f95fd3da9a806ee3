import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintkit.data import InpaintDataModule, InpaintDataset, augment, cut_tiles, fit_square, prepare
from inpaintkit.errors import InpaintError
from inpaintkit.io import write_image

from .conftest import run_cli


@pytest.fixture
def photo_folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for i in range(10):
        write_image(root / ("sub" if i % 2 else "") / f"p{i}.png", rng.integers(0, 256, (70, 100, 3), dtype=np.uint8))
    (root / "broken.jpg").write_bytes(b"not a jpeg")
    return root


def test_cut_tiles_and_fit_square():
    image = np.zeros((100, 230, 3), np.uint8)
    tiles = cut_tiles(image, 50)
    assert len(tiles) == 2 * 4 and all(t.shape == (50, 50, 3) for t in tiles)
    assert len(cut_tiles(np.zeros((30, 40, 3), np.uint8), 50)) == 1  # small photos are scaled up
    assert fit_square(image, 64).shape == (64, 64, 3)


def test_prepare_splits_by_photo_and_counts_unreadable(tmp_path, photo_folder):
    report = prepare(photo_folder, tmp_path / "out", size=32, mode="tile", split=(0.6, 0.2, 0.2), seed=1)
    assert report["photos"] == 11 and report["unreadable"] == 1
    assert "broken.jpg" in report["unreadable_files"][0]["file"]
    per_photo = 2 * 3
    assert report["tiles"]["train"] + report["tiles"]["val"] + report["tiles"]["test"] == 10 * per_photo
    stems = {
        split: {p.name.rsplit("_", 1)[0] for p in (tmp_path / "out" / split).glob("*.png")}
        for split in ("train", "val", "test")
    }
    assert not (stems["train"] & stems["val"]) and not (stems["train"] & stems["test"])
    assert json.loads((tmp_path / "out" / "prepare.json").read_text())["unreadable"] == 1
    again = prepare(photo_folder, tmp_path / "again", size=32, mode="tile", split=(0.6, 0.2, 0.2), seed=1)
    assert again["tiles"] == report["tiles"]


@pytest.mark.parametrize("mode", ["resize", "center-crop"])
def test_prepare_one_square_per_photo(tmp_path, photo_folder, mode):
    report = prepare(photo_folder, tmp_path / "o", size=48, mode=mode, workers=2)
    assert sum(report["tiles"].values()) == 10
    sample = next((tmp_path / "o").rglob("*.png"))
    assert Image.open(sample).size == (48, 48)


def test_prepare_cli_and_bad_mode(tmp_path, photo_folder, monkeypatch):
    result = run_cli("prepare", photo_folder, tmp_path / "o", "--size", "32", "--mode", "squash")
    assert result.returncode == 2 and result.stderr.strip().startswith("error:") and "--mode" in result.stderr
    monkeypatch.setenv("INPAINTKIT_PROGRESS", "1")  # a bar, as in a terminal
    result = run_cli("prepare", photo_folder, tmp_path / "o", "--size", "32")
    assert result.returncode == 0 and "1 unreadable" in result.stdout
    assert "prepare: 100%" in result.stderr
    assert re.search(r"(\d+)/\1 \[\d\d:\d\d<00:00", result.stderr)  # the count, time taken and time left


def test_progress_bars_show_in_a_terminal_or_when_asked(monkeypatch, capsys):
    from inpaintkit.progress import progress

    monkeypatch.delenv("INPAINTKIT_PROGRESS", raising=False)
    assert list(progress(range(3), "work")) == [0, 1, 2]
    assert capsys.readouterr().err == ""  # stderr is not a terminal here
    monkeypatch.setenv("INPAINTKIT_PROGRESS", "1")
    list(progress(range(3), "work"))
    assert "work: 100%" in capsys.readouterr().err
    monkeypatch.setenv("INPAINTKIT_PROGRESS", "0")
    list(progress(range(3), "work", show=None))
    assert capsys.readouterr().err == ""


def test_dataset_is_seeded_per_sample_and_epoch(photo_folder):
    with pytest.warns(UserWarning, match="unreadable"):
        ds = InpaintDataset(photo_folder, 32, "strokes", seed=3)  # never the whole 32 px tile
        samples = [ds[i] for i in range(len(ds))]
    assert len(ds.skipped) == 1
    image, target, mask = samples[1]
    assert torch.equal(image, target)  # inpainting: the photo is its own target
    assert image.shape == (3, 32, 32) and mask.shape == (1, 32, 32)
    assert image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1
    again = InpaintDataset(photo_folder, 32, "strokes", seed=3)
    torch.testing.assert_close(again[1][0], image, rtol=0, atol=0)
    torch.testing.assert_close(again[1][2], mask, rtol=0, atol=0)
    again.set_epoch(1)
    assert not torch.equal(again[1][0], image) and not torch.equal(again[1][2], mask)  # both redrawn


def test_validation_dataset_is_fixed_across_epochs(photo_folder):
    ds = InpaintDataset(photo_folder, 32, "strokes", train=False, seed=0)
    first = ds[2]
    ds.set_epoch(5)
    assert torch.equal(ds[2][0], first[0]) and torch.equal(ds[2][2], first[2])


def test_augment_keeps_range_and_is_seeded():
    x = torch.rand(3, 16, 16)
    a = augment(x, np.random.default_rng(0))
    b = augment(x, np.random.default_rng(0))
    assert torch.equal(a, b) and a.shape == x.shape and 0 <= a.min() and a.max() <= 1


def test_datamodule_batches(photo_folder):
    dm = InpaintDataModule(photo_folder, photo_folder, size=32, masks="box", batch_size=4, workers=0)
    image, _, mask = next(iter(dm.train_dataloader()))
    assert image.shape == (4, 3, 32, 32) and mask.shape == (4, 1, 32, 32)
    with pytest.raises(InpaintError, match="fewer than the batch size"):
        InpaintDataModule(photo_folder, None, size=32, batch_size=64, workers=0)


def test_holdout_leaves_the_bench_photos_out_of_training(tmp_path):
    from inpaintkit.evaluation import first_images
    from inpaintkit.training import TrainConfig

    rng = np.random.default_rng(0)
    for name in ("d", "b", "f", "a", "e", "c"):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    module = InpaintDataModule(tmp_path, None, size=16, masks="center", batch_size=2, workers=0, holdout=2)
    tested = first_images(tmp_path, 2)
    assert [p.name for p in tested] == ["a.png", "b.png"]
    assert [p.name for p in module.train_set.files] == ["c.png", "d.png", "e.png", "f.png"]
    with pytest.raises(InpaintError, match="holdout must be 0 or more"):
        TrainConfig(holdout=-1).validate()
