"""Every command against a table of bad values: one line on stderr, no traceback, a non-zero exit,
and no file created."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import REPO, run_cli

RECIPE = str(REPO / "configs" / "landscape-unet.yaml")
TRAIN = ["train", "--config", RECIPE, "--data", "photos", "--set", "val_data=null", "--out", "runs", "--max-steps", "2"]
BENCH = ["bench", "--masks", "center", "--out", "b"]
EVAL = ["eval", "--model", "telea", "--masks", "center"]

BAD = {  # case: (what its one line must say, arguments)
    "inpaint: missing mask": ("file not found", ["inpaint", "photo.png", "--mask", "nothing.png", "-o", "out.png"]),
    "inpaint: mask of another size": (
        "mask is 20x20 but the image is 48x40",
        ["inpaint", "photo.png", "--mask", "small.png", "-o", "out.png"],
    ),
    "inpaint: output is the input": (
        "would overwrite an input",
        ["inpaint", "photo.png", "--mask", "mask.png", "-o", "photo.png"],
    ),
    "inpaint: output in a symlink loop": (
        "loop/out.png",
        ["inpaint", "photo.png", "--mask", "mask.png", "-o", "loop/out.png"],
    ),
    "inpaint: unknown model": (
        "unknown model 'nosuch'",
        ["inpaint", "photo.png", "--mask", "mask.png", "--model", "nosuch", "-o", "out.png"],
    ),
    "inpaint: max side 0": (
        "max side must be",
        ["inpaint", "photo.png", "--mask", "mask.png", "-o", "out.png", "--max-side", "0"],
    ),
    "inpaint: bad strategy": (
        "unknown strategy 'x'",
        ["inpaint", "photo.png", "--mask", "mask.png", "-o", "out.png", "--strategy", "x"],
    ),
    "inpaint: device mps on a machine without one": (
        "--device mps: no Apple GPU (MPS) is available here",
        ["inpaint", "photo.png", "--mask", "mask.png", "-o", "out.png", "--model", "telea", "--device", "mps"],
    ),
    "inpaint: unknown device": (
        "unknown device 'tpu'",
        ["inpaint", "photo.png", "--mask", "mask.png", "-o", "out.png", "--device", "tpu"],
    ),
    "inpaint: not an image": ("not an image", ["inpaint", "notes.txt", "--mask", "mask.png", "-o", "out.png"]),
    "inpaint: an architecture without weights": (
        "'unet' is an architecture without trained weights",
        ["inpaint", "photo.png", "--mask", "mask.png", "--model", "unet", "-o", "out.png"],
    ),
    "inpaint: an empty model name": (
        "unknown model ''",
        ["inpaint", "photo.png", "--mask", "mask.png", "--model", "", "-o", "out.png"],
    ),
    "inpaint: negative pixel limit": (
        "--max-pixels must be 0",
        ["inpaint", "photo.png", "--mask", "mask.png", "--max-pixels", "-1", "-o", "out.png"],
    ),
    "inpaint: a border over the pixel limit": (
        "with its border the photo is 248x240 (59,520 pixels), over the limit of 5,000 pixels",
        ["inpaint", "photo.png", "--extend", "all=100", "--max-pixels", "5000", "--model", "telea", "-o", "out.png"],
    ),
    "inpaint: not a number": (
        "Invalid value for '--max-side'",
        ["inpaint", "photo.png", "--mask", "mask.png", "--max-side", "abc", "-o", "out.png"],
    ),
    "inpaint: unknown option": ("No such option: --bogus", ["inpaint", "photo.png", "--bogus"]),
    "inpaint: output format": (
        "unsupported output format .xyz",
        ["inpaint", "photo.png", "--mask", "mask.png", "--model", "telea", "-o", "out.xyz"],
    ),
    "inpaint: output is a folder": (
        "is a folder; name an output file",
        ["inpaint", "photo.png", "--mask", "mask.png", "-o", "."],
    ),
    "export: an architecture without weights": (
        "without trained weights",
        ["export", "--model", "unet", "--output", "m.onnx"],
    ),
    "models: summary of a classical method": ("telea is a classical method", ["models", "telea", "--summary"]),
    "models: a name and nothing to show": ("--summary and/or --diagram", ["models", "unet"]),
    "models: an unknown name": ("unknown model 'nosuch'", ["models", "nosuch"]),
    "apply: an inpainting method": ("telea fills holes", ["apply", "photo.png", "--model", "telea", "-o", "o.png"]),
    "app: port out of range": ("'--port'", ["app", "--port", "99999"]),
    "models: diagram format": ("write .svg, .png, .pdf or .dot", ["models", "unet", "--diagram", "unet.txt"]),
    "models: size 1e6": ("--size must be 16 to 2048", ["models", "unet", "--summary", "--size", "1000000"]),
    "masks: size 1e6": (
        "--size 1 to 16384",
        ["masks", "lama-thick", "--size", "1000000", "--count", "1", "--out", "m"],
    ),
    "masks: no count": ("--count must be positive", ["masks", "lama-thick", "--count", "0", "--out", "m"]),
    "masks: unknown preset": ("unknown mask preset 'nosuch'", ["masks", "nosuch", "--out", "m"]),
    "masks: preview over a photo": (
        "photo.png already exists",
        ["masks", "lama-thick", "--count", "2", "--out", "m", "--preview", "photo.png"],
    ),
    "masks: preview format": (
        "unsupported output format .xyz",
        ["masks", "lama-thick", "--count", "2", "--out", "m", "--preview", "p.xyz"],
    ),
    "prepare: split nan": (
        "--split needs three non-negative fractions",
        ["prepare", "photos", "dst", "--split", "nan,0.1,0.1"],
    ),
    "masks: negative seed": ("--seed", ["masks", "lama-thick", "--count", "1", "--seed", "-1", "--out", "m"]),
    "prepare: negative seed": ("--seed", ["prepare", "photos", "dst", "--seed", "-1"]),
    "prepare: size 1e5": ("--size must be 8 to 4096", ["prepare", "photos", "dst", "--size", "100000"]),
    "prepare: bad mode": ("unknown --mode 'banana'", ["prepare", "photos", "dst", "--mode", "banana"]),
    "train: missing recipe": (
        "config file not found",
        ["train", "--config", "nothing.yaml", "--data", "photos", "--out", "runs"],
    ),
    "train: lr nan": ("lr = nan", [*TRAIN, "--set", "lr=.nan"]),
    "train: workers -1": ("workers must be 0 or more", [*TRAIN, "--set", "workers=-1"]),
    "train: precision banana": ("unknown precision 'banana'", [*TRAIN, "--set", "precision=banana"]),
    "train: size 1e5": ("size 100000 is over 4096", [*TRAIN, "--set", "size=100000"]),
    "train: width 1e6": ("over 1,000,000,000", [*TRAIN, "--set", "model_args={width: 1000000}"]),
    "train: width -5": ("negative dimension", [*TRAIN, "--set", "model_args={width: -5}"]),
    "train: max_steps 0": ("max_steps must be -1", [*TRAIN[:-2], "--set", "max_steps=0"]),
    "train: out under a file": ("a file is in the way", [*TRAIN[:-4], "--out", "notes.txt/runs"]),
    "train: devices 99": ("devices=99", [*TRAIN, "--set", "devices=99"]),
    "train: negative seed": ("seed must be 0 to 2**32 - 1", [*TRAIN, "--set", "seed=-1"]),
    "train: beta over 1": ("betas must be two numbers in [0, 1)", [*TRAIN, "--set", "betas=[2, 0.9]"]),
    "train: a recipe that is not text": (
        "photo.png: not a text file",
        ["train", "--config", "photo.png", "--data", "photos", "--out", "runs"],
    ),
    "train: resume from a photo": ("photo.png: not a training checkpoint", [*TRAIN, "--resume", "photo.png"]),
    "train: misspelt scheduler argument": (
        "scheduler cosine takes t_max, not scheduler_args 't-max'",
        [*TRAIN, "--set", "scheduler=cosine", "--set", "scheduler_args={t-max: 5}"],
    ),
    "train: scheduler gamma 2": (
        "gamma must be in (0, 1], got 2",
        [*TRAIN, "--set", "scheduler=step", "--set", "scheduler_args={gamma: 2}"],
    ),
    "train: no readable photo": (
        "junk: no readable images",
        [*TRAIN[:3], "--data", "junk", *TRAIN[5:], "--set", "batch_size=2"],
    ),
    "train: no readable validation photo": (
        "junk: no readable images",
        [*TRAIN[:6], "val_data=junk", *TRAIN[7:], "--set", "batch_size=2"],
    ),
    "bench: missing data": ("folder not found", [*BENCH, "--methods", "telea", "--data", "nothing"]),
    "bench: n 0": (
        "--n must be at least 1",
        [*BENCH, "--methods", "telea", "--data", "photos", "--n", "0"],
    ),
    "bench: no method": ("--methods: name at least one", [*BENCH, "--methods", ",,", "--data", "photos"]),
    "bench: size 7": ("'--size'", [*BENCH, "--methods", "telea", "--data", "photos", "--size", "7"]),
    "bench: a task the method does not compute": (
        "telea does not compute the sobel task",
        [*BENCH, "--methods", "telea", "--data", "photos", "--task", "sobel"],
    ),
    "eval: size 0": ("'--size'", [*EVAL, "--data", "photos", "--out", "r.json", "--size", "0"]),
    "demo: size 0": ("'--size'", ["demo", "--out", "d", "--size", "0", "--methods", "telea"]),
    "study: not text": ("photo.png: not a text file", ["study", "photo.png", "--out", "page"]),
    "bench: unknown method": (
        "unknown model 'nosuch'",
        [*BENCH, "--methods", "nosuch", "--data", "photos"],
    ),
    "eval: missing data": ("folder not found", [*EVAL, "--data", "nothing", "--out", "r.json"]),
    "eval: report over a photo": ("the report is JSON", [*EVAL, "--data", "photos", "--out", "photo.png"]),
    "export: classical method": ("cannot be exported", ["export", "--model", "telea", "--output", "m.onnx"]),
    "export: missing weights": (
        "weights file not found",
        ["export", "--model", "nothing.safetensors", "--output", "m.onnx"],
    ),
    "study: missing file": ("study file not found", ["study", "nothing.yaml", "--out", "page"]),
    "study: out is a file": ("notes.txt: exists and is not a folder", ["study", "nothing.yaml", "--out", "notes.txt"]),
    "bench: out is a file": (
        "notes.txt: exists and is not a folder",
        ["bench", "--masks", "center", "--out", "notes.txt", "--methods", "telea", "--data", "photos"],
    ),
    "study: not a study": ("expected a mapping", ["study", "notes.txt", "--out", "page"]),
    "study: no test images": ("--n must be at least 1", ["study", "notes.txt", "--out", "page", "--n", "0"]),
    "apply: missing input": ("file not found", ["apply", "nothing.png", "--model", "telea", "--output", "o.png"]),
}
for logger in ("wandb", "mlflow"):
    if importlib.util.find_spec(logger) is None:
        BAD[f"train: {logger} logger without its extra"] = (
            "pip install 'inpaintkit[tracking]'",
            [*TRAIN, "--set", f"logger={logger}"],
        )


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    mask = np.zeros((40, 48), np.uint8)
    mask[10:20, 10:30] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    Image.fromarray(mask[:20, :20]).save(tmp_path / "small.png")
    (tmp_path / "photos").mkdir()
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / "photos" / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not a photo\n")
    (tmp_path / "junk").mkdir()
    for i in range(2):
        (tmp_path / "junk" / f"{i}.jpg").write_text("not a photo either\n")
    os.symlink("loop", tmp_path / "loop")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def listing(root) -> dict[str, int]:
    """Every path under ``root`` with its size (links not followed)."""
    return {
        os.path.join(folder, name): os.lstat(os.path.join(folder, name)).st_size
        for folder, dirs, files in os.walk(root)
        for name in dirs + files
    }


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_values_give_one_line_and_create_nothing(case, workspace):
    before = listing(workspace)
    expected, args = BAD[case]
    result = run_cli(*args)
    err = result.stderr
    assert result.returncode != 0, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: ") and result.returncode == 2, err
    assert expected in lines[0], err
    assert listing(workspace) == before


def test_a_run_that_fails_before_learning_leaves_no_folder(workspace, monkeypatch):
    import lightning as L

    from inpaintkit.training import TrainConfig, train

    def failing_fit(self, *args, **kwargs):
        (Path(self.default_root_dir) / "tensorboard").mkdir(parents=True)  # what a logger makes first
        raise RuntimeError("out of memory")

    monkeypatch.setattr(L.Trainer, "fit", failing_fit)
    config = TrainConfig(
        name="broken", model="unet", model_args={"width": 8}, data="photos", val_data=None, size=32, batch_size=2,
        workers=0, max_steps=2, out="runs",
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="out of memory"):
        train(config)
    assert not (workspace / "runs" / "broken").exists()
    (workspace / "runs" / "broken").mkdir()  # someone's folder: the next run is broken-2, and only it goes
    with pytest.raises(RuntimeError):
        train(config)
    assert os.listdir(workspace / "runs") == ["broken"]


@pytest.mark.parametrize("side", [1, 3, 8, 15])
def test_photos_of_a_few_pixels_are_filled_by_the_default(side):
    import inpaintkit

    image = np.random.default_rng(side).integers(0, 256, (side, side + 1, 3), dtype=np.uint8)
    hole = np.zeros((side, side + 1), bool)
    hole[side // 2, side // 2] = True
    out = inpaintkit.inpaint(image, hole)
    assert out.shape == image.shape
    np.testing.assert_array_equal(out[~hole], image[~hole])


def test_prepare_without_one_readable_photo_fails(workspace):
    result = run_cli("prepare", "junk", "dst")
    assert result.returncode == 2 and "junk: no readable photos (2 unreadable" in result.stderr, result.stderr


def test_prepare_never_mixes_two_sets_or_cuts_its_own_tiles(workspace):
    assert run_cli("prepare", "photos", "dst", "--size", "16").returncode == 0
    before = listing(workspace)
    again = run_cli("prepare", "photos", "dst", "--size", "8")
    assert again.returncode == 2 and "dst: already holds a prepared set" in again.stderr, again.stderr
    inside = run_cli("prepare", "photos", "photos/tiles", "--size", "16")
    assert inside.returncode == 2 and "is inside photos" in inside.stderr, inside.stderr
    assert listing(workspace) == before
