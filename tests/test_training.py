import numpy as np
import pytest
import torch
import yaml

from inpaintkit.errors import InpaintError
from inpaintkit.io import read_image
from inpaintkit.loading import load_model
from inpaintkit.training import Curriculum, TrainConfig, load_config

from .conftest import REPO, run_cli, shared

RECIPES = sorted(p.stem for p in (REPO / "configs").glob("*.yaml"))
SIZES = {"pix2pix": 256, "on-demand-cnn": 128, "on-demand-gan": 128, "sobel-pix2pix": 128}
# pix2pix's 8-level U-Net needs 256 px; a narrower one trains the same recipe in a third of the time
NARROW = {"pix2pix": "model_args={width: 16}", "sobel-pix2pix": "model_args={width: 16, depth: 7}"}


def tensorboard_tags(run_dir) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in run_dir.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    return tags


def small_run(config, photo_dirs, out, *extra, fresh: bool = False):
    train_dir, val_dir = photo_dirs
    size = SIZES.get(config.stem, 64)
    return run_cli(
        "train", "--config", config, "--data", train_dir, "--out", out, "--max-steps", "2",
        "--set", f"val_data={val_dir}", "--set", f"size={size}", "--set", "batch_size=2",
        "--set", "val_count=2", "--set", "workers=0", "--set", "val_every=1", "--set", "log_every=1", *extra,
        fresh=fresh,
    )  # fmt: skip


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_trains_two_steps_through_the_cli(recipe, photo_dirs, tmp_path, imagenet_weights):
    config = REPO / "configs" / f"{recipe}.yaml"
    result = small_run(config, photo_dirs, tmp_path, *(("--set", NARROW[recipe]) if recipe in NARROW else ()))
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = list(tmp_path.iterdir())
    for name in ("config.yaml", "command.txt", "meta.json", "checkpoints/last.ckpt", "model.safetensors"):
        assert (run_dir / name).is_file(), name
    assert "train" in (run_dir / "command.txt").read_text()
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["max_steps"] == 2 and resolved["batch_size"] == 2
    tags = tensorboard_tags(run_dir)
    recipe_terms = load_config(config).loss
    for term in recipe_terms:  # every term of the recipe is what was trained and logged
        assert f"train/{term}" in tags, (term, tags)
    assert {"train/loss", "val/psnr", "val/ssim"} <= tags
    assert list((run_dir / "samples").glob("*.png"))
    model = load_model(run_dir / "model.safetensors")
    assert model.card["recipe"]["loss"] == recipe_terms
    first = photo_dirs[1] / sorted(p.name for p in photo_dirs[1].iterdir())[0]
    if model.card["recipe"]["task"] != "inpaint":
        result = run_cli("apply", "--model", run_dir / "model.safetensors", first, "-o", tmp_path / "applied.png")
        assert result.returncode == 0, result.stderr[-2000:]
        assert read_image(tmp_path / "applied.png").shape == read_image(first).shape
        return
    photo = read_image(first)
    hole = np.zeros(photo.shape[:2], bool)
    hole[100:150, 100:200] = True
    import inpaintkit

    out = inpaintkit.inpaint(photo, hole, model=model)
    np.testing.assert_array_equal(out[~hole], photo[~hole])


def test_checkpoints_need_trust_pickle(photo_dirs, tmp_path):
    config = REPO / "configs" / "landscape-unet.yaml"
    assert small_run(config, photo_dirs, tmp_path, "--set", "model_args={width: 8}").returncode == 0
    (run_dir,) = list(tmp_path.iterdir())
    last = run_dir / "checkpoints" / "last.ckpt"
    photo = sorted(photo_dirs[1].iterdir())[0]
    mask = tmp_path / "mask.png"
    hole = np.zeros(read_image(photo).shape[:2], bool)
    hole[50:90, 60:120] = True
    from PIL import Image

    Image.fromarray(hole).save(mask)
    refused = run_cli("inpaint", photo, "--mask", mask, "--model", last, "-o", tmp_path / "a.png")
    assert refused.returncode == 2 and "--trust-pickle" in refused.stderr and not (tmp_path / "a.png").exists()
    allowed = run_cli("inpaint", photo, "--mask", mask, "--model", last, "--trust-pickle", "-o", tmp_path / "a.png")
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    out = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(out[~hole], read_image(photo)[~hole])
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    bad = run_cli("inpaint", photo, "--mask", mask, "--model", junk, "--trust-pickle", "-o", tmp_path / "b.png")
    assert bad.returncode == 2 and "not an inpaintkit training checkpoint" in bad.stderr


def test_nan_loss_stops_with_a_clear_message(photo_dirs, tmp_path):
    config = REPO / "configs" / "landscape-unet.yaml"
    result = small_run(config, photo_dirs, tmp_path, "--set", "lr=1e30", "--set", "optimizer=sgd",
                       "--set", "momentum=0.0", "--max-steps", "6")  # fmt: skip
    assert result.returncode == 2
    assert "the loss became" in result.stderr and "Traceback" not in result.stderr


def test_resume_continues_at_the_right_step(photo_dirs, tmp_path):
    config = REPO / "configs" / "landscape-unet.yaml"
    assert small_run(config, photo_dirs, tmp_path).returncode == 0
    (run_dir,) = list(tmp_path.iterdir())
    last = run_dir / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2
    result = small_run(config, photo_dirs, tmp_path, "--max-steps", "4", "--resume", last)
    assert result.returncode == 0, result.stderr[-2000:]
    assert list(tmp_path.iterdir()) == [run_dir]  # the same run directory
    state = torch.load(last, weights_only=True)
    assert state["global_step"] == 4 and state["optimizer_states"][0]["state"]


def test_training_improves_on_real_photos(photo_dirs, tmp_path):
    """Thirty steps of a narrow U-Net on eight photos beat the first validation's PSNR."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from inpaintkit.training import train

    train_dir, val_dir = photo_dirs
    cfg = TrainConfig(
        model="unet", model_args={"width": 16}, loss={"l1": 1.0}, data=str(train_dir), val_data=str(val_dir),
        size=64, masks="box", batch_size=4, workers=0, max_steps=30, val_every=3, val_count=4, epochs=100,
        patience=0, out=str(tmp_path), lr=3e-3,
    )  # fmt: skip
    run_dir = train(cfg)
    (events,) = list(run_dir.rglob("events.out.tfevents.*"))
    acc = EventAccumulator(str(events))
    acc.Reload()
    psnr = [e.value for e in acc.Scalars("val/psnr")]
    assert len(psnr) == 10 and max(psnr[1:]) > psnr[0] + 0.5, psnr
    model = load_model(run_dir / "model.safetensors")
    assert model.card["val_psnr"] == pytest.approx(max(psnr), abs=1e-3)  # the best checkpoint is exported


BAD = [
    ({"lrr": 0.1}, "unknown key 'lrr'; did you mean 'lr'"),
    ({"model": "unet3"}, "unknown model 'unet3'"),
    ({"loss": {"l3": 1}}, "unknown loss 'l3'"),
    ({"lr": -0.1}, "learning rates must be positive"),
    ({"batch_size": "many"}, "batch_size = 'many' is not a valid int"),
    ({"loss": {"adversarial": 1}}, "need a discriminator"),
    ({"optimizer": "adamax"}, "unknown optimizer"),
]


@pytest.mark.parametrize("override, message", BAD)
def test_bad_configs_fail_with_one_line(tmp_path, photo_dirs, override, message):
    from inpaintkit.models import create_model
    from inpaintkit.training import train

    raw = {**TrainConfig(data=str(photo_dirs[0]), val_data=None).to_dict(), **override}
    with pytest.raises(InpaintError, match=message):
        cfg = TrainConfig.from_dict(raw)
        cfg.validate()
        create_model(cfg.model)
        train(cfg)


def test_missing_data_and_too_few_images(tmp_path, photo_dirs):
    from inpaintkit.training import train

    with pytest.raises(InpaintError, match="data folder .* not found"):
        TrainConfig(data=str(tmp_path / "nope"), val_data=None).validate()
    with pytest.raises(InpaintError, match="fewer than the batch size"):
        train(TrainConfig(data=str(photo_dirs[0]), val_data=None, batch_size=64, out=str(tmp_path)))


def test_cli_bad_config_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: unet\nlrr: 0.1\n")
    result = run_cli("train", "--config", bad)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {bad}: unknown key 'lrr'; did you mean 'lr'?"]
    result = run_cli("train", "--config", REPO / "configs" / "landscape-unet.yaml", "--data", tmp_path / "none")
    assert result.returncode == 2 and "not found" in result.stderr and "Traceback" not in result.stderr


def test_curriculum_gives_more_samples_to_harder_levels():
    levels = [[1, 18], [19, 36], [37, 54], [55, 72], [73, 90]]
    cur = Curriculum(levels, 90, seed=0)
    assert cur.counts() == [18] * 5  # no measurement yet: even shares
    masks, assigned = cur.masks(128, step=0)
    assert masks.shape == (90, 1, 128, 128)
    sides = masks[:, 0].sum(dim=(1, 2)).sqrt()
    for side, level in zip(sides.tolist(), assigned, strict=True):
        lo, hi = levels[level]
        assert lo <= round(side) <= hi
    psnr = torch.tensor([40.0, 32, 28, 24, 20])[torch.tensor(assigned)]
    cur.update(assigned, psnr)
    counts = cur.counts()
    assert sum(counts) == 90 and counts == sorted(counts) and counts[-1] > counts[0]
    again = Curriculum(levels, 90, seed=0)
    again.load_state_dict(cur.state_dict())
    assert again.counts() == counts
    assert torch.equal(cur.masks(128, step=3)[0], again.masks(128, step=3)[0])


def test_ddp_with_two_cpu_processes(photo_dirs, tmp_path):
    config = REPO / "configs" / "landscape-unet.yaml"
    ddp = ("--set", "accelerator=cpu", "--set", "devices=2", "--set", "strategy=ddp")
    # DDP starts the second rank by running this command again: it needs a process of its own
    result = small_run(config, photo_dirs, tmp_path, *ddp, fresh=True)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = list(tmp_path.iterdir())  # both ranks wrote into one run directory
    assert (run_dir / "model.safetensors").is_file()
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2


def test_shared_data_recipes_point_at_real_folders():
    from inpaintkit.io import list_images

    shared("bsds500")
    for recipe in RECIPES:
        cfg = load_config(REPO / "configs" / f"{recipe}.yaml")
        cfg.validate()  # data folders exist, names and weights are valid
        for folder in cfg.data if isinstance(cfg.data, list) else [cfg.data]:
            assert len(list_images(folder)) >= cfg.batch_size, (recipe, folder)
        if cfg.val_data is not None:
            assert list_images(cfg.val_data), recipe


def test_grid_trains_each_variant_with_its_own_loss_and_compares(photo_dirs, tmp_path):
    config = REPO / "configs" / "landscape-unet.yaml"
    result = small_run(config, photo_dirs, tmp_path, "--grid", "loss=mse,l1", "--set", "model_args={width: 8}")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = {p.name: p for p in tmp_path.iterdir()}
    assert set(runs) == {"landscape-unet-loss-mse", "landscape-unet-loss-l1", "landscape-unet-grid"}
    for loss, other in (("mse", "l1"), ("l1", "mse")):
        run = runs[f"landscape-unet-loss-{loss}"]
        assert load_model(run / "model.safetensors").card["recipe"]["loss"] == {loss: 1.0}
        tags = tensorboard_tags(run)
        assert f"train/{loss}" in tags and f"train/{other}" not in tags
    for name in ("curves.png", "bars.png", "compare.md"):
        assert (runs["landscape-unet-grid"] / name).is_file()
    assert "mse: 1.0" in (runs["landscape-unet-grid"] / "compare.md").read_text()
    out = tmp_path / "cmp"
    result = run_cli("compare", runs["landscape-unet-loss-mse"], runs["landscape-unet-loss-l1"], "--out", out,
                     "--data", photo_dirs[1], "--masks", "center", "--n", "2")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "test psnr" in (out / "compare.md").read_text()


def test_grid_rejects_a_single_value(photo_dirs, tmp_path):
    result = small_run(REPO / "configs" / "landscape-unet.yaml", photo_dirs, tmp_path, "--grid", "optimizer=adam")
    assert result.returncode == 2 and "at least two values" in result.stderr


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm-to-group"])
def test_a_stop_keeps_the_best_model(photo_dirs, tmp_path, stop):
    """Ctrl-C, or SIGTERM to the whole process group (as ``timeout`` sends it) with a loader
    worker in the group: the trainer stops gracefully and exports the best model so far."""
    import os
    import signal
    import subprocess
    import time

    from .conftest import CLI

    train_dir, val_dir = photo_dirs
    args = [
        str(CLI), "train", "--config", str(REPO / "configs" / "landscape-unet.yaml"), "--data", str(train_dir),
        "--out", str(tmp_path), "--max-steps", "10000", "--set", f"val_data={val_dir}", "--set", "size=32",
        "--set", "batch_size=2", "--set", "val_count=2", "--set", f"workers={int(stop != 'ctrl-c')}",
        "--set", "val_every=1", "--set", "model_args={width: 8}", "--set", "patience=0",
    ]  # fmt: skip
    # The child gets Ctrl-C's default disposition even when this runner was started with it ignored.
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    best = tmp_path / "landscape-unet" / "checkpoints" / "best.ckpt"
    deadline = time.time() + 300
    while not best.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    time.sleep(1.0)
    if stop == "ctrl-c":
        os.kill(proc.pid, signal.SIGINT)
    else:
        os.killpg(proc.pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 2, stderr[-2000:]
    assert "training interrupted" in stderr and "Traceback" not in stderr
    assert load_model(tmp_path / "landscape-unet" / "model.safetensors").card["val_psnr"] is not None


def test_ctrl_c_during_a_checkpoint_save_waits_for_the_save(tmp_path, monkeypatch):
    import os
    import signal

    from inpaintkit.training import AtomicCheckpointIO

    real_save = torch.save

    def interrupted_save(obj, handle):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C lands in the middle of the write
        real_save(obj, handle)

    monkeypatch.setattr(torch, "save", interrupted_save)
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the runner ignores Ctrl-C
    try:
        with pytest.raises(KeyboardInterrupt):
            AtomicCheckpointIO().save_checkpoint({"w": torch.arange(5.0)}, tmp_path / "last.ckpt")
        restored = signal.getsignal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, outer)
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["w"].tolist() == [0, 1, 2, 3, 4]
    assert restored is signal.default_int_handler


def test_a_full_disk_during_a_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno

    from inpaintkit.training import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, tmp_path / "last.ckpt")
    real_save = torch.save

    def disk_full(obj, handle):
        real_save(obj, handle)
        handle.truncate(100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(InpaintError, match=r"last.ckpt: cannot write \(No space left on device\)"):
        io.save_checkpoint({"step": 2}, tmp_path / "last.ckpt")
    assert torch.load(tmp_path / "last.ckpt", weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


@pytest.mark.parametrize("name", ["unet", "encoder-decoder", "conv-autoencoder", "pix2pix", "attention-unet", "ffc"])
def test_sigmoid_generators_start_at_the_mean_target(name):
    from inpaintkit.models import create_model
    from inpaintkit.training import start_at_mean_target

    torch.manual_seed(0)
    size = 256 if name == "pix2pix" else 64
    dataset = [(torch.rand(3, size, size), torch.full((1, size, size), 0.04), None) for _ in range(4)]
    model = create_model(name, out_channels=1).eval()
    x, zero = torch.rand(2, 3, size, size), torch.zeros(2, 1, size, size)
    with torch.no_grad():
        before = model(x, zero).mean().item()
        start_at_mean_target(model, dataset)
        after = model(x, zero).mean().item()
    assert before > 0.3 and abs(after - 0.04) < 0.03, (before, after)


def test_sigkill_then_resume_equals_an_uninterrupted_run(photo_dirs, tmp_path):
    """Deterministic CPU mode: a run killed with SIGKILL at a random moment and resumed from its last
    checkpoint ends with exactly the weights and validation PSNR of a run that was never killed."""
    import os
    import random
    import signal
    import subprocess
    import time

    from safetensors.torch import load_file

    from .conftest import CLI

    train_dir, val_dir = photo_dirs
    config = REPO / "configs" / "landscape-unet.yaml"

    def args(out, *extra):
        return [
            str(CLI), "train", "--config", str(config), "--data", str(train_dir), "--out", str(out),
            "--set", f"val_data={val_dir}", "--set", "size=32", "--set", "batch_size=2", "--set", "val_count=2",
            "--set", "workers=0", "--set", "epochs=8", "--set", "patience=0", "--set", "deterministic=true",
            "--set", "model_args={width: 8}", "--set", "scheduler=step", *extra,
        ]  # fmt: skip

    whole = subprocess.run(args(tmp_path / "whole"), capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-2000:]
    proc = subprocess.Popen(args(tmp_path / "killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "killed" / "landscape-unet" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 1.0))  # somewhere in the following epochs, maybe inside a save
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    epoch = torch.load(last, weights_only=True)["epoch"]
    resumed = subprocess.run(args(tmp_path / "killed", "--resume", str(last)), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = load_file(tmp_path / "whole" / "landscape-unet" / "model.safetensors")
    b = load_file(tmp_path / "killed" / "landscape-unet" / "model.safetensors")
    assert a.keys() == b.keys()
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst <= 1e-6, f"killed after epoch {epoch}: weights differ by {worst}"
    card_a = load_model(tmp_path / "whole" / "landscape-unet" / "model.safetensors").card
    card_b = load_model(tmp_path / "killed" / "landscape-unet" / "model.safetensors").card
    assert abs(card_a["val_psnr"] - card_b["val_psnr"]) <= 1e-4


def test_init_starts_from_earlier_weights_and_refuses_another_model(photo_dirs, tmp_path):
    from inpaintkit.models import create_model, save_model

    config = REPO / "configs" / "landscape-unet.yaml"
    torch.manual_seed(0)
    source = create_model("unet", width=8)
    save_model(source, tmp_path / "start.safetensors", {})
    result = small_run(config, photo_dirs, tmp_path / "a", "--set", "model_args={width: 8}", "--set", "lr=1e-12",
                       "--set", f"init={tmp_path / 'start.safetensors'}")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    trained = load_model(next((tmp_path / "a").iterdir()) / "model.safetensors")
    conv = "enc1.0.0.weight"
    assert torch.allclose(trained.state_dict()[conv], source.state_dict()[conv], atol=1e-6)
    assert trained.card["recipe"]["init"] == str(tmp_path / "start.safetensors")
    wrong = small_run(config, photo_dirs, tmp_path / "b", "--set", "model_args={width: 16}",
                      "--set", f"init={tmp_path / 'start.safetensors'}")  # fmt: skip
    assert wrong.returncode == 2 and "does not fit" in wrong.stderr and "Traceback" not in wrong.stderr


def test_without_validation_the_last_state_is_saved_and_exported(photo_dirs, tmp_path):
    config = REPO / "configs" / "landscape-unet.yaml"
    result = small_run(config, photo_dirs, tmp_path, "--set", "val_data=null", "--max-steps", "3",
                       "--set", "model_args={width: 8}")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = list(tmp_path.iterdir())
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3
    assert not (run_dir / "checkpoints" / "best.ckpt").exists()
    assert load_model(run_dir / "model.safetensors").card["batches"] == 3


def test_channels_last_recipe_puts_weights_and_batches_in_nhwc():
    from inpaintkit.training import build_module

    config = TrainConfig(model="unet", model_args={"width": 8}, val_data=None, channels_last=True)
    module = build_module(config)
    module.on_fit_start()
    conv = next(m for m in module.generator.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    batch = [torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16), torch.rand(2, 1, 16, 16)]
    source, target, mask, _ = module._batch(batch)
    assert source.is_contiguous(memory_format=torch.channels_last) and not batch[0].is_contiguous(
        memory_format=torch.channels_last
    )
    plain = build_module(TrainConfig(**dict(config.to_dict(), channels_last=False)))
    assert plain._batch(batch)[0] is batch[0]


def test_resume_refuses_a_checkpoint_of_other_networks(tmp_path):
    from inpaintkit.training.run import _check_resume

    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    own, other = tmp_path / "own.ckpt", tmp_path / "other.ckpt"
    torch.save({"state_dict": module.state_dict()}, own)
    torch.save({"state_dict": torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3)).state_dict()}, other)
    _check_resume(str(own), module)
    with pytest.raises(InpaintError, match="other.ckpt: a checkpoint of other networks"):
        _check_resume(str(other), module)
    (tmp_path / "junk.ckpt").write_bytes(b"\0" * 64)
    with pytest.raises(InpaintError, match="not a training checkpoint"):
        _check_resume(str(tmp_path / "junk.ckpt"), module)
