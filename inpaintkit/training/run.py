"""``train(config)``: the run folder, the Lightning trainer and its callbacks, and the exported model."""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from inpaintkit.data import InpaintDataModule
from inpaintkit.errors import InpaintError
from inpaintkit.io import write_bytes
from inpaintkit.models import save_model
from inpaintkit.training.build import build_module, start_at_mean_target, start_from
from inpaintkit.training.callbacks import AtomicCheckpointIO, SaveLast, make_logger
from inpaintkit.training.recipe import TrainConfig


def _run_dir(config: TrainConfig, resume: str | None) -> Path:
    """The run's folder: the resumed run's, one handed down from the launching process (DDP ranks
    re-run the command), or a new ``out/name[-N]``."""
    if resume:
        return Path(resume).resolve().parent.parent
    if os.environ.get("INPAINTKIT_RUN_DIR"):
        return Path(os.environ["INPAINTKIT_RUN_DIR"])
    base = Path(config.out) / config.name
    run, n = base, 1
    while run.exists():
        n += 1
        run = base.with_name(f"{config.name}-{n}")
    return run


def _check_resume(resume: str, module: torch.nn.Module) -> None:
    """``resume`` is a training checkpoint of this recipe's networks (one line if not)."""
    try:
        state = torch.load(resume, map_location="cpu", weights_only=True).get("state_dict")
    except Exception:  # a file torch cannot read, whatever it is
        state = None
    if not isinstance(state, dict):
        raise InpaintError(f"{resume}: not a training checkpoint (runs keep them in checkpoints/last.ckpt)")
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    if {k: tuple(v.shape) for k, v in state.items()} != expected:
        raise InpaintError(f"{resume}: a checkpoint of other networks than this recipe's; resume with its own recipe")


def train(config: TrainConfig, resume: str | None = None, command: list[str] | None = None) -> Path:
    """Train ``config``; returns the run directory, which holds ``config.yaml``, ``command.txt``,
    ``meta.json``, ``checkpoints/{best,last}.ckpt``, logs, samples and ``model.safetensors``."""
    config.validate()
    if resume is not None and not Path(resume).is_file():
        raise InpaintError(f"{resume}: checkpoint not found")
    task = config.make_task()
    L.seed_everything(config.seed, workers=True, verbose=False)  # before the weights are drawn
    module = build_module(config)  # fails early on a bad model name, argument or size
    if resume is not None:
        _check_resume(resume, module)
    datamodule = InpaintDataModule(
        config.data, config.val_data, size=config.size, masks=config.masks, val_masks=config.val_masks,
        batch_size=config.batch_size, workers=config.workers, seed=config.seed, val_count=config.val_count,
        task=task, holdout=config.holdout,
    )  # fmt: skip
    run_dir = _run_dir(config, resume)
    new_run = not run_dir.exists()
    adversarial = config.discriminator is not None
    module.run_dir = run_dir
    if resume is None and config.init:
        start_from(module.generator, config.init)
    elif resume is None and not task.composite:
        start_at_mean_target(module.generator, datamodule.train_set)
    has_val = config.val_data is not None
    # Validating once per epoch: save after the epoch has fully ended (progress counters, scheduler
    # step), which is where Lightning resumes without running an epoch too few.
    per_epoch = config.val_every <= 0
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="best", save_last=False, save_top_k=1 if has_val else 0,
        monitor="val/psnr" if has_val else None, mode="max", enable_version_counter=False,
        save_on_train_epoch_end=per_epoch,
    )  # fmt: skip
    last = SaveLast(run_dir / "checkpoints" / "last.ckpt", per_epoch)
    callbacks = [checkpoint, last]
    if has_val and config.patience > 0:
        callbacks.append(
            EarlyStopping(monitor="val/psnr", mode="max", patience=config.patience, check_on_train_epoch_end=False)
        )
    steps_per_batch = 2 if adversarial else 1  # Lightning counts each optimizer step
    strategy = config.strategy
    if strategy == "ddp" and adversarial:
        strategy = "ddp_find_unused_parameters_true"
    trainer = L.Trainer(
        default_root_dir=str(run_dir), max_epochs=config.epochs,
        max_steps=config.max_steps * steps_per_batch if config.max_steps > 0 else -1,
        accelerator=config.accelerator, devices=config.devices, num_nodes=config.num_nodes, strategy=strategy,
        precision=config.precision, logger=make_logger(config.logger, config.name, run_dir), callbacks=callbacks,
        plugins=[AtomicCheckpointIO()], log_every_n_steps=config.log_every, deterministic=config.deterministic,
        val_check_interval=config.val_every if config.val_every > 0 else None,
        check_val_every_n_epoch=None if config.val_every > 0 else 1,
        num_sanity_val_steps=0, gradient_clip_val=None, enable_model_summary=False,
    )  # fmt: skip
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_bytes(run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
        write_bytes(run_dir / "command.txt", " ".join(command or sys.argv) + "\n")
        from inpaintkit import __version__

        meta = {
            "inpaintkit": __version__, "torch": torch.__version__, "lightning": L.__version__,
            "python": platform.python_version(), "machine": platform.machine(), "started": time.ctime(),
            "resumed_from": resume,
        }  # fmt: skip
        write_bytes(run_dir / "meta.json", json.dumps(meta, indent=2) + "\n")
    handed_down = "INPAINTKIT_RUN_DIR" in os.environ
    os.environ["INPAINTKIT_RUN_DIR"] = str(run_dir)  # DDP ranks re-run the command and read it
    interrupted = False
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    except SystemExit:  # Lightning exits after a graceful Ctrl-C; keep what was learned
        if not trainer.interrupted:
            raise
        interrupted = True
    except Exception:
        if new_run and trainer.is_global_zero and trainer.global_step == 0:
            shutil.rmtree(run_dir, ignore_errors=True)  # a run that failed before its first step
        raise
    finally:
        if not handed_down:
            os.environ.pop("INPAINTKIT_RUN_DIR", None)
    if trainer.is_global_zero and (checkpoint.best_model_path or last.path.is_file()):
        export_best(module.generator, run_dir, config, checkpoint, last)
    if interrupted:
        raise InpaintError(f"training interrupted; the best model so far is in {run_dir / 'model.safetensors'}")
    return run_dir


def export_best(
    generator: torch.nn.Module, run_dir: Path, config: TrainConfig, checkpoint: ModelCheckpoint, last: SaveLast
) -> Path:
    """Load the best (else last) checkpoint's weights into the run's ``generator`` and write it as
    ``model.safetensors`` with a card of the run."""
    source = Path(checkpoint.best_model_path or last.path)
    state = torch.load(source, map_location="cpu", weights_only=True)
    prefix = "generator."
    generator.load_state_dict({k[len(prefix) :]: v for k, v in state["state_dict"].items() if k.startswith(prefix)})
    score = checkpoint.best_model_score
    card = {
        "recipe": config.to_dict(),
        "checkpoint": source.name,
        "epoch": state.get("epoch"),
        "batches": state.get("global_step", 0) // (2 if config.discriminator else 1),
        "task": config.task,
        "val_psnr": None if score is None or math.isnan(float(score)) else round(float(score), 4),
        "trained_on": config.data,
    }
    return save_model(generator, run_dir / "model.safetensors", card)
