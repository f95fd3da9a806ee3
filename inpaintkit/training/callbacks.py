"""What the trainer is given besides the module: checkpoint writing, the last-checkpoint callback
and the experiment logger."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import Checkpoint

from inpaintkit.io import atomic_write

LOGGERS = ("tensorboard", "wandb", "mlflow", "none")


@contextmanager
def _sigint_deferred():
    """Hold a Ctrl-C that arrives inside the block until the block is done, then raise it.

    An interrupt inside ``torch.save`` surfaces as a zip-writer RuntimeError rather than a
    KeyboardInterrupt, which would turn a graceful stop into a crash."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and previous is not signal.SIG_IGN:
        if callable(previous):
            previous(signal.SIGINT, None)
        else:
            raise KeyboardInterrupt


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written atomically (:func:`inpaintkit.io.atomic_write`): a kill or a full disk
    during a save leaves the previous checkpoint intact, and a Ctrl-C waits for the save to finish.
    Read back with ``weights_only=True``."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        with _sigint_deferred(), atomic_write(path) as handle:
            torch.save(checkpoint, handle)

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)


class SaveLast(Checkpoint):
    """``last.ckpt`` after every validation (after every epoch when validating per epoch) and when
    training ends: what ``--resume`` continues from. Lightning's own ``save_last`` writes only when
    a new best is saved, so a resumed run could repeat hundreds of steps."""

    def __init__(self, path: Path, per_epoch: bool):
        self.path, self.per_epoch, self._step = path, per_epoch, -1

    def _save(self, trainer: L.Trainer) -> None:
        if trainer.sanity_checking or trainer.global_step in (0, self._step):
            return
        trainer.save_checkpoint(self.path, weights_only=False)  # the optimiser too, for --resume
        self._step = trainer.global_step

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self.per_epoch:
            self._save(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.per_epoch:
            self._save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._save(trainer)


def make_logger(kind: str, name: str, run_dir: Path):
    """The run's experiment logger (``False`` for none); W&B and MLflow are optional extras."""
    if kind == "none":
        return False
    if kind == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        return TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False)
    if kind == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        return WandbLogger(project="inpaintkit", name=name, save_dir=str(run_dir))
    from lightning.pytorch.loggers import MLFlowLogger

    return MLFlowLogger(experiment_name="inpaintkit", run_name=name, tracking_uri=f"sqlite:///{run_dir}/mlflow.db")
