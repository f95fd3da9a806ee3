"""Training on Lightning, usable from Python without the CLI (``train(TrainConfig(...))``).

- :mod:`~inpaintkit.training.recipe`: the recipe schema (:class:`TrainConfig`) and its validation;
- :mod:`~inpaintkit.training.optim`: optimisers and schedules by name;
- :mod:`~inpaintkit.training.curriculum`: on-demand learning, a mask strategy;
- :mod:`~inpaintkit.training.modules`: thin LightningModules that receive built parts;
- :mod:`~inpaintkit.training.build`: the parts built once from a recipe; checkpoints read back;
- :mod:`~inpaintkit.training.callbacks`: atomic checkpoints, ``last.ckpt``, loggers;
- :mod:`~inpaintkit.training.run`: ``train``, the run folder and the exported model.
"""

from inpaintkit.training.build import build_module, load_checkpoint, start_at_mean_target
from inpaintkit.training.callbacks import AtomicCheckpointIO
from inpaintkit.training.curriculum import Curriculum
from inpaintkit.training.modules import AdversarialModule, InpaintModule
from inpaintkit.training.recipe import TrainConfig, load_config
from inpaintkit.training.run import train

__all__ = [
    "AdversarialModule", "AtomicCheckpointIO", "Curriculum", "InpaintModule", "TrainConfig", "build_module",
    "load_checkpoint", "load_config", "start_at_mean_target", "train",
]  # fmt: skip
