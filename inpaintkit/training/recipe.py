"""The training recipe: one flat YAML mapping, read into :class:`TrainConfig` and validated with
one clear line per mistake (unknown keys, wrong types, bad values) before anything is built."""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from inpaintkit import losses
from inpaintkit.data import MAX_TILE
from inpaintkit.errors import InpaintError
from inpaintkit.tasks import Task
from inpaintkit.training.callbacks import LOGGERS
from inpaintkit.training.optim import OPTIMIZERS, OptimizerRecipe, SchedulerRecipe

# Lightning's precision names.
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true")


@dataclass
class TrainConfig:
    """One flat recipe. Every key is documented in the README; unknown keys are an error."""

    name: str = "run"
    task: str = "inpaint"
    task_args: dict = field(default_factory=dict)
    model: str = "unet"
    model_args: dict = field(default_factory=dict)
    init: str | None = None  # start the generator from these weights (.safetensors of the same model)
    discriminator: str | None = None
    discriminator_args: dict = field(default_factory=dict)
    loss: dict = field(default_factory=lambda: {"l1": 1.0})
    loss_crop: int = -1  # -1: the losses see the whole image; N >= 0: the hole's bounding box grown by N px
    adversarial: str = "nonsaturating"
    data: str | list = "../shared/data/bsds500/train"
    val_data: str | None = "../shared/data/bsds500/val"
    holdout: int = 0  # leave the first N photos of each data folder (sorted) out: a bench --n N tests on them
    size: int = 128
    masks: str = "blocks"
    val_masks: str | None = None
    curriculum: list | None = None
    batch_size: int = 16
    workers: int = 2
    optimizer: str = "adam"
    lr: float = 1e-3
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    momentum: float = 0.9
    weight_decay: float = 0.0
    d_optimizer: str = "adam"
    d_lr: float = 2e-4
    d_betas: list = field(default_factory=lambda: [0.5, 0.999])
    scheduler: str = "none"
    scheduler_args: dict = field(default_factory=dict)
    grad_clip: float = 0.0
    epochs: int = 20
    max_steps: int = -1
    val_every: int = 0
    val_count: int = 64
    patience: int = 3
    seed: int = 0
    precision: str = "32-true"
    channels_last: bool = False  # NHWC tensors: faster convolutions on GPUs under bf16
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    logger: str = "tensorboard"
    out: str = "runs"
    deterministic: bool = False
    log_every: int = 10

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> TrainConfig:
        if not isinstance(raw, dict):
            raise InpaintError(f"{source}: expected a mapping of keys to values")
        hints = typing.get_type_hints(cls)
        raw = {k: _number(v) if hints.get(k) in (float, int) else v for k, v in raw.items()}
        for key, value in raw.items():
            if key not in hints:
                close = difflib.get_close_matches(str(key), list(hints), n=1)
                raise InpaintError(
                    f"{source}: unknown key {key!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                )
            if not _type_ok(value, hints[key]):
                raise InpaintError(f"{source}: {key} = {value!r} is not a valid {_type_name(hints[key])}")
        values = {k: float(v) if hints[k] is float else v for k, v in raw.items()}
        return cls(**values)

    def with_overrides(self, assignments: list[str]) -> TrainConfig:
        """Apply ``key=value`` strings (values parsed as YAML: numbers, lists, mappings)."""
        raw = self.to_dict()
        for item in assignments:
            if "=" not in item:
                raise InpaintError(f"--set {item!r}: expected key=value")
            key, text = item.split("=", 1)
            raw[key.strip()] = parse_yaml(text, f"--set {key.strip()}") if text.strip() else None
        return TrainConfig.from_dict(raw, source="--set")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def _check_devices(self) -> None:
        """``devices`` asks for no more than this machine has (Lightning would wait for them)."""
        if self.devices in ("auto", -1):
            return
        if not isinstance(self.devices, int) or self.devices < 1:
            raise InpaintError(f"devices must be auto, -1 (all) or a positive count, got {self.devices!r}")
        gpu = self.accelerator in ("gpu", "cuda") or (self.accelerator == "auto" and torch.cuda.is_available())
        have = torch.cuda.device_count() if gpu else os.cpu_count() or 1
        if self.devices > have:
            kind = "GPUs" if gpu else "CPU cores"
            raise InpaintError(f"devices={self.devices}, but this machine has {have} {kind}")

    def optimizer_recipe(self) -> OptimizerRecipe:
        return OptimizerRecipe(self.optimizer, self.lr, tuple(self.betas), self.momentum, self.weight_decay)

    def d_optimizer_recipe(self) -> OptimizerRecipe:
        return OptimizerRecipe(self.d_optimizer, self.d_lr, tuple(self.d_betas), self.momentum, 0.0)

    def scheduler_recipe(self) -> SchedulerRecipe:
        return SchedulerRecipe(self.scheduler, self.epochs, tuple(sorted(self.scheduler_args.items())))

    def make_task(self) -> Task:
        try:
            return Task(self.task, **self.task_args)
        except TypeError as exc:
            raise InpaintError(f"task_args: {exc}") from None

    def validate(self) -> None:
        """Checks that need no data loading; each failure is one clear line."""
        for key in ("lr", "d_lr"):
            if not math.isfinite(getattr(self, key)) or getattr(self, key) <= 0:
                raise InpaintError(f"learning rates must be positive numbers: {key} = {getattr(self, key)}")
        for key in ("momentum", "weight_decay", "grad_clip"):
            if not math.isfinite(getattr(self, key)) or getattr(self, key) < 0:
                raise InpaintError(f"{key} must be 0 or a positive number, got {getattr(self, key)}")
        for key in ("batch_size", "size", "epochs", "num_nodes", "val_count", "log_every"):
            if getattr(self, key) < 1:
                raise InpaintError(f"{key} must be at least 1, got {getattr(self, key)}")
        for key in ("workers", "val_every", "patience", "holdout"):
            if getattr(self, key) < 0:
                raise InpaintError(f"{key} must be 0 or more, got {getattr(self, key)}")
        if not 0 <= self.seed < 2**32:
            raise InpaintError(f"seed must be 0 to 2**32 - 1, got {self.seed}")
        for key in ("betas", "d_betas"):
            betas = getattr(self, key)
            if len(betas) != 2 or not all(isinstance(b, int | float) and 0 <= b < 1 for b in betas):
                raise InpaintError(f"{key} must be two numbers in [0, 1), got {betas}")
        if self.size > MAX_TILE:
            raise InpaintError(f"size {self.size} is over {MAX_TILE} px; train on crops and fill any size later")
        if self.loss_crop < -1:
            raise InpaintError(f"loss_crop must be -1 (the whole image) or 0 or more px, got {self.loss_crop}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise InpaintError(f"max_steps must be -1 (no limit) or at least 1, got {self.max_steps}")
        if self.precision not in PRECISIONS:
            raise InpaintError(f"unknown precision {self.precision!r}; choose from {', '.join(PRECISIONS)}")
        self._check_devices()
        out = Path(self.out)
        if any(p.exists() and not p.is_dir() for p in (out, *out.parents)):
            raise InpaintError(f"out {self.out}: a file is in the way of that folder")
        if self.optimizer not in OPTIMIZERS or self.d_optimizer not in OPTIMIZERS:
            raise InpaintError(f"unknown optimizer; choose from {', '.join(OPTIMIZERS)}")
        self.scheduler_recipe().check()
        if self.logger not in LOGGERS:
            raise InpaintError(f"unknown logger {self.logger!r}; choose from {', '.join(LOGGERS)}")
        if self.logger in ("wandb", "mlflow") and importlib.util.find_spec(self.logger) is None:
            raise InpaintError(f"logger {self.logger} is not installed: pip install 'inpaintkit[tracking]'")
        if self.adversarial not in losses.ADVERSARIAL_KINDS:
            raise InpaintError(
                f"unknown adversarial loss {self.adversarial!r}; choose from {', '.join(losses.ADVERSARIAL_KINDS)}"
            )
        self.make_task()
        recipe = losses.parse_recipe(self.loss)
        gan_terms = [n for n in losses.GAN_LOSSES if recipe.get(n, (0,))[0] > 0]
        if gan_terms and not self.discriminator:
            raise InpaintError(f"loss terms {', '.join(gan_terms)} need a discriminator (set discriminator:)")
        if self.discriminator and "adversarial" not in gan_terms:
            raise InpaintError("a discriminator is set but the loss has no adversarial term")
        if self.curriculum is not None:
            _check_levels(self.curriculum, self.size)
        for key in ("data", "val_data"):
            value = getattr(self, key)
            for path in value if isinstance(value, list) else [value]:
                if path is not None and not Path(path).is_dir():
                    raise InpaintError(f"{key} folder {path} not found")


def _number(value):
    """YAML 1.1 reads ``1e-3`` (no dot) as text; numbers written that way are numbers here."""
    if isinstance(value, str):
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
    return value


def _type_ok(value, hint) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_type_ok(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, origin or hint)


def _type_name(hint) -> str:
    return " or ".join(a.__name__ for a in typing.get_args(hint)) or getattr(hint, "__name__", str(hint))


def _check_levels(levels, size: int) -> None:
    ok = (
        isinstance(levels, list)
        and levels
        and all(isinstance(lv, list) and len(lv) == 2 and 1 <= lv[0] <= lv[1] <= size for lv in levels)
    )
    if not ok:
        raise InpaintError(f"curriculum must be a list of [min, max] hole sides within 1..{size}, got {levels!r}")


class _NoAliases(yaml.SafeLoader):
    """YAML without anchors and aliases: a recipe is a flat mapping, and aliases nested in aliases
    expand exponentially (a few lines can stand for billions of values)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError(f"aliases such as *{self.peek_event().anchor} are not allowed in a recipe")
        return super().compose_node(parent, index)


def parse_yaml(text: str, source: str):
    """``text`` read as YAML (no aliases); a syntax error is one line naming ``source``."""
    try:
        return yaml.load(text, Loader=_NoAliases)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise InpaintError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})") from None


def load_config(path: str | Path) -> TrainConfig:
    path = Path(path)
    if not path.is_file():
        raise InpaintError(f"{path}: config file not found")
    if path.stat().st_size > 1_000_000:
        raise InpaintError(f"{path}: a recipe is a short YAML file; this one is over 1 MB")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InpaintError(f"{path}: not a text file (a recipe is YAML)") from None
    return TrainConfig.from_dict(parse_yaml(text, str(path)) or {}, source=str(path))
