"""Optimisers and learning-rate schedules by name, as the recipe spells them."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inpaintkit.errors import InpaintError

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
SCHEDULERS = ("none", "cosine", "cosine-restarts", "step")
# What each schedule takes in ``scheduler_args``, with its default (t_max: the run's epochs).
SCHEDULER_ARGS = {
    "none": {},
    "cosine": {"t_max": None},
    "cosine-restarts": {"t_0": 5, "t_mult": 1},
    "step": {"step_size": 1, "gamma": 0.99},
}


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

    def check(self) -> None:
        """A known schedule with only its own arguments, each in range (one line if not): a misspelt
        argument would otherwise leave its default in place without a word."""
        if self.name not in SCHEDULERS:
            raise InpaintError(f"unknown scheduler {self.name!r}; choose from {', '.join(SCHEDULERS)}")
        takes = SCHEDULER_ARGS[self.name]
        for key, value in self.args:
            if key not in takes:
                allowed = ", ".join(takes) or "no arguments"
                raise InpaintError(f"scheduler {self.name} takes {allowed}, not scheduler_args {key!r}")
            if key == "gamma":
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
                    raise InpaintError(f"scheduler_args gamma must be in (0, 1], got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InpaintError(f"scheduler_args {key} must be a whole number of epochs, 1 or more, got {value!r}")

    def build(self, optimizer: torch.optim.Optimizer):
        self.check()
        args = SCHEDULER_ARGS[self.name] | dict(self.args)
        if self.name == "none":
            return None
        if self.name == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args["t_max"] or self.epochs)
        if self.name == "cosine-restarts":
            restarts = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts
            return restarts(optimizer, T_0=args["t_0"], T_mult=args["t_mult"])
        return torch.optim.lr_scheduler.StepLR(optimizer, args["step_size"], args["gamma"])
