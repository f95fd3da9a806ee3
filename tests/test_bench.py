import json

import numpy as np
import pytest
import torch

from inpaintkit.evaluation import FeatureMetrics, protocol_bins, run_bench

from .conftest import run_cli, shared

KEYS = ("psnr", "ssim", "l1", "lpips_vgg", "lpips_alex", "fid", "edge")


@pytest.fixture(scope="module")
def features(imagenet_weights):
    return FeatureMetrics()


def test_bench_cli_writes_every_file_and_is_deterministic(tmp_path, features):
    data = shared("bsds500", "test")
    args = ["--methods", "telea,mean-fill", "--data", data, "--masks", "pconv-bins", "--n", "2", "--size", "64"]
    result = run_cli("bench", *args, "--out", tmp_path / "B")
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("results.md", "results.csv", "results.json", "metrics.png", "samples.png"):
        assert (tmp_path / "B" / name).is_file(), name
    report = json.loads((tmp_path / "B" / "results.json").read_text())
    assert [r["bin"] for r in report["results"][:6]] == ["1-10%", "10-20%", "20-30%", "30-40%", "40-50%", "50-60%"]
    for row in report["results"]:
        assert all(k in row for k in KEYS), row
    ratios = [r["hole_ratio"] for r in report["results"][:6]]
    assert ratios == sorted(ratios) and 0.01 <= ratios[0] <= 0.1 and 0.5 <= ratios[-1] <= 0.6
    md = (tmp_path / "B" / "results.md").read_text()
    for title in ("PSNR", "SSIM", "hole L1", "LPIPS VGG", "LPIPS Alex", "FID", "seconds / image"):
        assert title in md
    # The same bench again in-process: identical numbers (timings aside).
    again, _ = run_bench(["telea", "mean-fill"], data, "pconv-bins", n=2, size=64, progress=False, features=features)
    assert torch.is_grad_enabled()  # the bench leaves no global state behind
    for a, b in zip(report["results"], again.rows, strict=True):
        for key in KEYS:
            assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12), key


def test_real_method_beats_mean_fill(features):
    data = shared("bsds500", "test")
    result, grid = run_bench(["telea", "mean-fill"], data, "lama-256", n=3, size=64, progress=False, features=features)
    rows = {(r["method"], r["bin"]): r for r in result.rows}
    for b in ("thin", "medium", "thick"):
        assert rows[("telea", b)]["psnr"] > rows[("mean-fill", b)]["psnr"]
        assert rows[("telea", b)]["lpips_vgg"] < rows[("mean-fill", b)]["lpips_vgg"]
    assert len(grid) == 2 * 3 and len(grid[0]) == 4  # masked input, two methods, original


def test_protocol_bins_are_fixed_per_index():
    ((label, source),) = protocol_bins("center")
    assert label == "center" and source(0, 64, 64).mean() == 0.25
    bins = protocol_bins("lama-256")
    assert [b for b, _ in bins] == ["thin", "medium", "thick"]
    assert (bins[2][1](5, 64, 64) == bins[2][1](5, 64, 64)).all()


def test_eval_cli_writes_a_report(tmp_path):
    data = shared("bsds500", "test")
    out = tmp_path / "r" / "report.json"
    result = run_cli("eval", "--model", "navier-stokes", "--data", data, "--masks", "center", "--n", "2",
                     "--size", "64", "--out", out)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["methods"] == {"navier-stokes": 0} and report["results"][0]["bin"] == "center"
    assert "bicubic" in report["preparation"]


def test_batching_leaves_the_numbers_unchanged(features):
    """Photos filled and scored 4 at a time (with a remainder of 1) give the table of one at a time.
    On the CPU the table is the same; a batched convolution may sum in another order, so a pixel may
    round one level apart (one of 4,096 did here, moving that photo's LPIPS by 4e-5). CUDA picks
    convolution algorithms by batch size (measured on an H200 with TF32 off: one FID of 9 moved by
    0.01), so the check runs on the CPU."""
    from inpaintkit.reports import results_markdown

    data = shared("bsds500", "test")
    runs = {
        batch: run_bench(
            ["telea", "default"],
            data,
            "lama-256",
            n=5,
            size=64,
            progress=False,
            features=features,
            batch=batch,
            device="cpu",
        )
        for batch in (1, 4)
    }
    (one, grid_one), (four, grid_four) = runs[1], runs[4]
    table = [results_markdown(r).split("## Speed and size")[0] for r in (one, four)]
    assert table[0] == table[1]
    assert [(r["method"], r["bin"], r["image"]) for r in one.per_image] == [
        (r["method"], r["bin"], r["image"]) for r in four.per_image
    ]
    for a, b in zip(one.per_image, four.per_image, strict=True):
        for key in KEYS[:-2] + ("edge",):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-4), (a["method"], key)
    for row_one, row_four in zip(grid_one, grid_four, strict=True):
        for x, y in zip(row_one, row_four, strict=True):
            assert np.abs(x.astype(int) - y.astype(int)).max() <= 1  # batched convolutions round alike
    assert {"decode, masks (waiting)", "fill: telea", "fill: default", "LPIPS", "Inception (FID)"} <= set(four.stages)


def test_eval_refuses_a_device_that_is_not_here(tmp_path):
    """``--device`` names where learned fills and metrics run; one that is absent is a one-line error."""
    absent = "mps" if torch.cuda.is_available() else "cuda"
    out = tmp_path / "report.json"
    result = run_cli("eval", "--model", "telea", "--data", tmp_path, "--masks", "center", "--out", out,
                     "--device", absent)  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and f"--device {absent}: no" in result.stderr
    assert not out.exists()


def test_bfloat16_precision_moves_the_numbers_a_little(features, monkeypatch):
    """``precision="bf16-mixed"`` runs the networks (the learned fill, LPIPS, Inception) in bfloat16:
    classical fills and pixel metrics are exactly float32's, the rest close to them. Forced on here,
    so that it runs on any CPU (emulated where not native)."""
    import inpaintkit.inference as inference

    monkeypatch.setattr(inference, "native_bfloat16", lambda device: True)
    data = shared("bsds500", "test")
    runs = {
        precision: run_bench(["telea", "default"], data, "lama-256", n=4, size=64, progress=False,
                             features=features, device="cpu", precision=precision)[0]
        for precision in ("32-true", "bf16-mixed")
    }  # fmt: skip
    exact, fast = runs["32-true"], runs["bf16-mixed"]
    assert (exact.precision, fast.precision) == ("32-true", "bf16-mixed")
    assert fast.to_json()["precision"] == "bf16-mixed"
    moved = []
    for a, b in zip(exact.rows, fast.rows, strict=True):
        if a["method"] == "telea":
            for key in ("psnr", "ssim", "l1", "edge"):
                assert a[key] == b[key], key
        assert b["psnr"] == pytest.approx(a["psnr"], abs=0.05)
        for key in ("lpips_vgg", "lpips_alex"):
            assert b[key] == pytest.approx(a[key], abs=0.002), key
            moved.append(a[key] != b[key])
        # FID of 4 photos swings with any change: Telea's moves by Inception alone, the default's by its fill too
        assert b["fid"] == pytest.approx(a["fid"], rel=0.02 if a["method"] == "telea" else 0.06)
    assert any(moved)  # LPIPS's backbones ran in bfloat16
    rows = [(a, b) for a, b in zip(exact.rows, fast.rows, strict=True)]
    assert any(a["psnr"] != b["psnr"] for a, b in rows if a["method"] == "default")  # so did the learned fill
    assert any(a["fid"] != b["fid"] for a, b in rows if a["method"] == "telea")  # and Inception
    from inpaintkit.reports import results_markdown

    assert "Precision bf16-mixed" in results_markdown(fast) and "bfloat16" not in results_markdown(exact)


def test_bench_refuses_a_precision_it_cannot_use(tmp_path, monkeypatch):
    """An unknown precision, or bfloat16 where the device does not compute it natively, is a one-line
    error before anything runs."""
    import inpaintkit.inference as inference

    args = ["--methods", "telea", "--data", tmp_path, "--masks", "center", "--out", tmp_path / "B"]
    result = run_cli("bench", *args, "--precision", "float16")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "unknown precision 'float16'" in result.stderr and "Traceback" not in result.stderr
    monkeypatch.setattr(inference, "native_bfloat16", lambda device: False)
    result = run_cli("bench", *args, "--precision", "bf16-mixed", "--device", "cpu")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "bfloat16 is not native on this cpu" in result.stderr
    result = run_cli("bench", *args, "--task", "sobel", "--precision", "bf16-mixed")
    assert result.returncode == 2 and "applies to inpainting benches" in result.stderr
    assert not (tmp_path / "B").exists()
