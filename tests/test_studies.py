"""Studies: every file in configs/studies runs end to end at toy scale through the real CLI; a rerun
reuses finished runs and resumes interrupted ones."""

from __future__ import annotations

import json

import pytest
import yaml

from inpaintkit.errors import InpaintError
from inpaintkit.evaluation import protocol_bins
from inpaintkit.study import Study, _variants

from .conftest import REPO, run_cli

STUDIES = sorted((REPO / "configs" / "studies").glob("*.yaml"))
# Two batches of two from the tiny train folder (none held out), no validation (the curves show the
# training loss), two test photos
TOY = [
    "--set", "max_steps=2", "--set", "batch_size=2", "--set", "holdout=0", "--set", "val_data=null",
    "--set", "val_every=0", "--set", "workers=0", "--n", "2",
]  # fmt: skip


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_each_study_runs_at_toy_scale_through_the_cli(path, photo_dirs, tmp_path, imagenet_weights):
    train_dir, test_dir = photo_dirs
    study = Study.load(path)
    page_dir, runs_dir = tmp_path / "page", tmp_path / "runs"
    args = [
        "study", path, "--out", page_dir, "--runs", runs_dir, "--data", test_dir,
        "--set", f"data={train_dir}", *TOY,
    ]  # fmt: skip
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    page = (page_dir / "README.md").read_text()
    numbers = json.loads((page_dir / "results.json").read_text())
    runs = sorted(runs_dir.iterdir())
    assert sorted(map(str, runs)) == sorted(numbers["runs"])
    labels = []
    for recipe in study.recipes:
        for item in study.vary:
            key, variants = _variants(item)
            labels += [label for label, _ in variants]
            section = page.split(f"\n## {recipe}: {key}\n")[1].split("\n## ")[0]
            rows = [line for line in section.splitlines() if line.startswith("| ")][1:]  # after the header
            assert [row.split("|")[1].strip() for row in rows[1:]] == [label for label, _ in variants]
            assert "Best on the test" in section
            assert (page_dir / f"{recipe}-{key}" / "curves.png").is_file()
    # a variant equal to another (the recipe's own value in two grids) trains once
    assert len(runs) <= len(labels) and all((run / "model.safetensors").is_file() for run in runs)
    bins = len(protocol_bins(study.masks()))
    assert len(numbers["test"]) == len(runs) * bins
    assert all(row["images"] == 2 for row in numbers["test"])


def test_vary_entries_and_one_bin_per_mask_spec():
    assert _variants("optimizer=adam,sgd") == ("optimizer", [("adam", ["optimizer=adam"]), ("sgd", ["optimizer=sgd"])])
    labelled = {"training": {"level-1": ["curriculum=null", "masks=box:min=1,max=18"], "all": ["masks=box"]}}
    assert _variants(labelled) == ("training", [("level-1", labelled["training"]["level-1"]), ("all", ["masks=box"])])
    for bad in ({"training": {"only": ["x=1"]}}, {"a": {}, "b": {}}, 3, "optimizer=adam"):
        with pytest.raises(InpaintError, match="vary entry|at least two values"):
            _variants(bad)
    bins = protocol_bins("box:min=1,max=18,margin=0; box:min=19,max=36,margin=0")
    assert [label for label, _ in bins] == ["box:min=1,max=18,margin=0", "box:min=19,max=36,margin=0"]
    sides = [int(mask_of(0, 64, 64).sum() ** 0.5) for _, mask_of in bins]
    assert 1 <= sides[0] <= 18 and 19 <= sides[1] <= 36


BAD_STUDIES = {
    "a key that is not text": ("unknown key '1'", "1: x"),
    "a metric that is a list": ("test metrics must be a list", "metrics: [[psnr]]"),
    "a group varied twice": ("varies 'lr' twice", 'vary: ["lr=0.1,0.2", "lr=0.3,0.4"]'),
    "a label that names another folder": ("must be letters, digits", 'vary: ["data=../x,../y"]'),
    "a value given twice": ("given twice", 'vary: ["lr=0.1,0.1"]'),
    "an unquoted on/off label": ("(True|False) is not text; quote it", "vary: [{attention: {on: [x=1], off: [x=2]}}]"),
}


@pytest.mark.parametrize("case", sorted(BAD_STUDIES))
def test_bad_study_files_are_one_line_errors(case, tmp_path):
    expected, change = BAD_STUDIES[case]
    study = {
        "title": "t", "reference": "r", "recipes": ["landscape-unet"], "vary": ["lr=0.1,0.2"],
        "test": {"data": "photos", "masks": "center", "n": 2, "size": 64, "metrics": ["psnr"]},
    }  # fmt: skip
    extra = yaml.safe_load(change)
    if "metrics" in extra:
        study["test"] |= extra
    else:
        study |= extra
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    with pytest.raises(InpaintError, match=expected):
        Study.load(path)


def test_runs_are_reused_resumed_or_refused(tmp_path, monkeypatch):
    from inpaintkit import study as module
    from inpaintkit.training import TrainConfig

    variant = TrainConfig(name="v", out=str(tmp_path), size=32)
    calls = []

    def fake_train(config, resume=None, command=None):
        calls.append(resume)
        run_dir = tmp_path / config.name
        run_dir.mkdir(exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
        return run_dir

    monkeypatch.setattr("inpaintkit.training.train", fake_train)
    run_dir, _ = module._train_once(variant, None)  # new: trained from the start
    assert calls == [None] and (run_dir / module.DONE).is_file()
    assert module._train_once(variant, None)[0] == run_dir and calls == [None]  # finished: reused
    (run_dir / module.DONE).unlink()  # interrupted after a checkpoint: resumed from it
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    module._train_once(variant, None)
    assert calls == [None, str(run_dir / "checkpoints" / "last.ckpt")]
    other = TrainConfig(name="v", out=str(tmp_path), size=64)  # another recipe's run in that folder
    with pytest.raises(InpaintError, match="holds another recipe's run"):
        module._train_once(other, None)
    assert calls == [None, str(run_dir / "checkpoints" / "last.ckpt")]
