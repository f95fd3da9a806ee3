"""Optimisers and learning-rate schedules by name, as the recipe spells them."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inpaintkit.errors import InpaintError

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
SCHEDULERS = ("none", "cosine", "cosine-restarts", "step")


@dataclass(frozen=True)
class OptimizerRecipe:
    name: str = "adam"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)  # adam, adamw
    momentum: float = 0.9  # sgd, rmsprop
    weight_decay: float = 0.0

    def build(self, params) -> torch.optim.Optimizer:
        if self.name == "adam":
            return torch.optim.Adam(params, lr=self.lr, betas=tuple(self.betas), weight_decay=self.weight_decay)
        if self.name == "adamw":
            return torch.optim.AdamW(params, lr=self.lr, betas=tuple(self.betas), weight_decay=self.weight_decay)
        if self.name == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        if self.name == "rmsprop":
            return torch.optim.RMSprop(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        if self.name == "adagrad":
            return torch.optim.Adagrad(params, lr=self.lr, weight_decay=self.weight_decay)
        raise InpaintError(f"unknown optimizer {self.name!r}; choose from {', '.join(OPTIMIZERS)}")


@dataclass(frozen=True)
class SchedulerRecipe:
    """A learning-rate schedule stepped once per epoch."""

    name: str = "none"
    epochs: int = 20
    args: tuple[tuple[str, float], ...] = ()  # t_max; t_0, t_mult; step_size, gamma

    def build(self, optimizer: torch.optim.Optimizer):
        args = dict(self.args)
        if self.name == "none":
            return None
        if self.name == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.get("t_max", self.epochs))
        if self.name == "cosine-restarts":
            return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
                optimizer, T_0=args.get("t_0", 5), T_mult=args.get("t_mult", 1)
            )
        if self.name == "step":
            return torch.optim.lr_scheduler.StepLR(optimizer, args.get("step_size", 1), args.get("gamma", 0.99))
        raise InpaintError(f"unknown scheduler {self.name!r}; choose from {', '.join(SCHEDULERS)}")
