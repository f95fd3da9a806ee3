"""The registry: every method, classical or learned, by name.

Each family's file registers its builders beside their definitions with :func:`register`, which
records the builder's one-line description (its docstring) and its parameter count at the default
arguments, so listing the methods builds none of them (a test checks every declared count). The
registry reads the family files named in ``FAMILIES``; importing all of them costs about 35 ms.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from inpaintkit.errors import InpaintError

FAMILIES = (
    "classical", "autoencoder", "unet", "attention_unet", "context_encoder", "pix2pix", "ffc", "textured",
    "discriminators",
)  # fmt: skip
KINDS = ("model", "discriminator")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    parameters: int  # at the builder's default arguments; 0 for classical methods
    builder: Callable[..., nn.Module]

    @property
    def learned(self) -> bool:
        return self.parameters > 0


_REGISTRY: dict[str, dict[str, ModelInfo]] = {kind: {} for kind in KINDS}


def register(name: str, parameters: int, kind: str = "model"):
    """Register the decorated builder as ``name``; ``parameters`` is its count at the defaults."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        description = (builder.__doc__ or "").strip().splitlines()[0]
        _REGISTRY[kind][name] = ModelInfo(name, description, parameters, builder)
        return builder

    return decorate


def entries(kind: str = "model") -> dict[str, ModelInfo]:
    """Every registered builder of ``kind`` (``model`` or ``discriminator``), in the families' order."""
    for family in FAMILIES:
        importlib.import_module(f"inpaintkit.models.{family}")
    return _REGISTRY[kind]


def unknown_name(name: str, known: list[str], kind: str) -> InpaintError:
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known)}"
    return InpaintError(f"unknown {kind} {name!r}{hint}")


def info(name: str, kind: str = "model") -> ModelInfo:
    table = entries(kind)
    if name not in table:
        raise unknown_name(name, list(table), kind)
    return table[name]


def list_models() -> list[ModelInfo]:
    """Every registered method with its description and parameter count; nothing is built."""
    return list(entries("model").values())


def model_names() -> list[str]:
    return list(entries("model"))


def classical_names() -> list[str]:
    return [e.name for e in entries("model").values() if not e.learned]


def discriminator_names() -> list[str]:
    return list(entries("discriminator"))


def model_accepts(name: str, argument: str) -> bool:
    """Whether the builder of model ``name`` takes ``argument``."""
    return argument in inspect.signature(info(name).builder).parameters


# The largest network built on request (4 GB of float32 weights): a card or a recipe asking for
# more is refused before anything is allocated.
MAX_PARAMETERS = 1_000_000_000


def _call(builder, name: str, kwargs: dict, kind: str) -> nn.Module:
    try:
        return builder(**kwargs)
    except (ValueError, TypeError, RuntimeError) as exc:  # a bad argument value, named by the builder
        raise InpaintError(f"{kind} {name!r}: {str(exc).splitlines()[0]}") from None


def architecture(name: str, kwargs: dict, kind: str = "model") -> nn.Module:
    """Model ``name`` built on the meta device: its structure, parameter shapes and count, without
    allocating or initialising a single weight. Bad argument values and sizes over
    ``MAX_PARAMETERS`` are refused here, in one line."""
    import torch

    builder = info(name, kind).builder
    unexpected = set(kwargs) - set(inspect.signature(builder).parameters)
    if unexpected:
        raise InpaintError(f"{kind} {name!r} takes no argument {', '.join(sorted(unexpected))}")
    bad = [k for k, v in kwargs.items() if not isinstance(v, str | int | float | bool | None)]
    if bad:
        raise InpaintError(f"{kind} {name!r}: argument {bad[0]} must be a number, text or true/false")
    with torch.device("meta"):
        model = _call(builder, name, kwargs, kind)
    if (n := count_parameters(model)) > MAX_PARAMETERS:
        raise InpaintError(f"{kind} {name!r} with {kwargs} would have {n:,} parameters, over {MAX_PARAMETERS:,}")
    return model


def _build(name: str, kwargs: dict, kind: str) -> nn.Module:
    architecture(name, kwargs, kind)
    model = _call(info(name, kind).builder, name, kwargs, kind)
    model.config = {"model": name, "kwargs": dict(kwargs)}
    return model


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model; ``kwargs`` override the builder's defaults and are recorded."""
    return _build(name, kwargs, "model")


def create_discriminator(name: str, **kwargs) -> nn.Module:
    """Build a registered discriminator (``forward(image, condition) -> (logits, features)``)."""
    return _build(name, kwargs, "discriminator")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
