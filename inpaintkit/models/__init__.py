"""The model registry: every method, classical or learned, behind ``forward(image, mask) -> image``.

Builders are listed by name in one table and imported only when asked for, so listing or creating
one model never imports every family. ``create_model`` records the builder name and its arguments on
the module; ``save_model`` writes them into the safetensors header, so a file rebuilds itself.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from inpaintkit.errors import InpaintError

# name -> (module in inpaintkit.models, builder function)
_BUILDERS: dict[str, tuple[str, str]] = {
    "telea": ("classical", "telea"),
    "navier-stokes": ("classical", "navier_stokes"),
    "biharmonic": ("classical", "biharmonic"),
    "mean-fill": ("classical", "mean_fill"),
    "encoder-decoder": ("autoencoder", "encoder_decoder"),
    "conv-autoencoder": ("autoencoder", "conv_autoencoder"),
    "unet": ("unet", "unet"),
    "attention-unet": ("attention_unet", "attention_unet"),
    "context-encoder": ("context_encoder", "context_encoder"),
    "context-encoder-alexnet": ("context_encoder", "context_encoder_alexnet"),
    "pix2pix": ("pix2pix", "pix2pix"),
    "ffc": ("ffc", "ffc"),
    "ffc-lama": ("ffc", "ffc_lama"),
}
# Discriminators are not inpainting methods: their own table, same mechanics.
_DISCRIMINATORS: dict[str, tuple[str, str]] = {
    "patchgan": ("discriminators", "patchgan"),
    "patchgan-light": ("discriminators", "patchgan_light"),
    "patchgan-lama": ("discriminators", "patchgan_lama"),
}
# The registered methods that are not neural networks.
CLASSICAL = ("telea", "navier-stokes", "biharmonic", "mean-fill")
# The model `inpaintkit inpaint` uses when none is named.
DEFAULT_MODEL = "default"
CARD_FORMAT = "inpaintkit-weights-1"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    learned: bool
    parameters: int


def _unknown(name: str, known: list[str], kind: str) -> InpaintError:
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known)}"
    return InpaintError(f"unknown {kind} {name!r}{hint}")


def _builder(name: str, table: dict[str, tuple[str, str]] = _BUILDERS, kind: str = "model"):
    if name not in table:
        raise _unknown(name, list(table), kind)
    module, fn = table[name]
    return getattr(importlib.import_module(f"inpaintkit.models.{module}"), fn)


def model_names() -> list[str]:
    return list(_BUILDERS)


def discriminator_names() -> list[str]:
    return list(_DISCRIMINATORS)


def _build(name: str, kwargs: dict, table: dict[str, tuple[str, str]], kind: str) -> nn.Module:
    builder = _builder(name, table, kind)
    unknown = set(kwargs) - set(inspect.signature(builder).parameters)
    if unknown:
        raise InpaintError(f"{kind} {name!r} takes no argument {', '.join(sorted(unknown))}")
    try:
        model = builder(**kwargs)
    except (ValueError, TypeError) as exc:  # a bad argument value, named by the builder
        raise InpaintError(f"{kind} {name!r}: {exc}") from None
    model.builder_name = name
    model.builder_kwargs = dict(kwargs)
    return model


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model; ``kwargs`` override the builder's defaults and are recorded."""
    return _build(name, kwargs, _BUILDERS, "model")


def create_discriminator(name: str, **kwargs) -> nn.Module:
    """Build a registered discriminator (``forward(image, mask) -> (logits, features)``)."""
    return _build(name, kwargs, _DISCRIMINATORS, "discriminator")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_accepts(name: str, argument: str) -> bool:
    """Whether the builder of model ``name`` takes ``argument``."""
    return argument in inspect.signature(_builder(name)).parameters


def _without_pretrained(name: str, kwargs: dict) -> dict:
    """``kwargs`` with ``pretrained=False`` for builders that would load ImageNet weights: used when
    every weight comes from a file anyway, or only the architecture is wanted."""
    if model_accepts(name, "pretrained"):
        return {**kwargs, "pretrained": False}
    return dict(kwargs)


def list_models() -> list[ModelInfo]:
    infos = []
    for name in _BUILDERS:
        model = create_model(name, **_without_pretrained(name, {}))
        doc = (_builder(name).__doc__ or "").strip().splitlines()
        n = count_parameters(model)
        infos.append(ModelInfo(name, doc[0] if doc else "", n > 0, n))
    return infos


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(model: nn.Module, path: str | Path, card: dict | None = None) -> Path:
    """Write ``model`` as safetensors (card in the header) plus a readable ``.json`` card beside it."""
    from safetensors.torch import save

    if not hasattr(model, "builder_name"):
        raise ValueError("save_model needs a model made by create_model (it records how to rebuild it)")
    path = Path(path)
    full_card = {
        "format": CARD_FORMAT,
        "model": model.builder_name,
        "kwargs": model.builder_kwargs,
        "parameters": count_parameters(model),
        **(card or {}),
    }
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    _atomic_write_bytes(path, save(tensors, metadata={"inpaintkit": json.dumps(full_card)}))
    _atomic_write_bytes(path.with_suffix(".json"), (json.dumps(full_card, indent=2) + "\n").encode())
    return path


def read_card(path: str | Path) -> dict:
    """The card stored in a safetensors file's header (no tensors are read)."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise InpaintError(f"{path}: not a valid safetensors file ({exc})") from None
    if "inpaintkit" not in meta:
        raise InpaintError(f"{path}: safetensors file has no inpaintkit card (model name and arguments)")
    try:
        card = json.loads(meta["inpaintkit"])
    except json.JSONDecodeError:
        raise InpaintError(f"{path}: the inpaintkit card in the header is not valid JSON") from None
    if not isinstance(card, dict) or "model" not in card or not isinstance(card.get("kwargs", {}), dict):
        raise InpaintError(f"{path}: the inpaintkit card lacks the model name or its arguments")
    return card


def load_weights(path: str | Path) -> nn.Module:
    """Rebuild a model from a safetensors file; shapes are checked against the card's model before
    any tensor is read, so a mismatched or hostile file fails with one clear error."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InpaintError(f"{path}: weights file not found")
    card = read_card(path)
    model = create_model(card["model"], **_without_pretrained(card["model"], card.get("kwargs", {})))
    model.builder_kwargs = dict(card.get("kwargs", {}))
    expected = model.state_dict()
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        missing, extra = set(expected) - keys, keys - set(expected)
        if missing or extra:
            raise InpaintError(
                f"{path}: tensors do not match model {card['model']!r} "
                f"(missing {sorted(missing)[:3]}, unexpected {sorted(extra)[:3]})"
            )
        for key, ref in expected.items():
            shape = tuple(f.get_slice(key).get_shape())
            if shape != tuple(ref.shape):
                raise InpaintError(f"{path}: tensor {key} has shape {shape}, model expects {tuple(ref.shape)}")
        state = {key: f.get_tensor(key) for key in expected}
    model.load_state_dict(state, strict=True)
    model.card = card
    return model.eval()


BUNDLED = {
    "default": "the inpainting flagship (the model used when none is named)",
    "sobel": "a 0.48M-parameter U-Net that computes the Sobel edge magnitude (task sobel)",
}


def bundled_weights(name: str = "default") -> Path:
    """Where the bundled weights ``name`` (a key of ``BUNDLED``) ship inside the package."""
    return Path(__file__).resolve().parent.parent / "weights" / f"{name}.safetensors"


def load_checkpoint(path: str | Path) -> nn.Module:
    """The generator of one of our training checkpoints (``.ckpt``), read with ``weights_only=True``."""
    import torch

    from inpaintkit.training import TrainConfig, build_generator, make_task

    path = Path(path)
    if not path.is_file():
        raise InpaintError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        config = TrainConfig.from_dict(state["hyper_parameters"]["config"])
        weights = {
            k.removeprefix("generator."): v for k, v in state["state_dict"].items() if k.startswith("generator.")
        }
    except Exception as exc:  # torch.load raises pickle, zip and runtime errors alike for foreign files
        raise InpaintError(f"{path}: not an inpaintkit training checkpoint ({str(exc).splitlines()[0]})") from None
    model = build_generator(config, make_task(config))
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise InpaintError(f"{path}: weights do not fit {config.model!r} ({str(exc).splitlines()[0]})") from None
    model.card = {"model": config.model, "recipe": config.to_dict(), "checkpoint": path.name}
    return model.eval()


def load_model(name_or_path: str | Path, trust_pickle: bool = False) -> nn.Module:
    """A registered name (``telea``, ``unet`` ...), bundled weights (``default``, ``sobel``) or a weights file.

    Pickled checkpoints can run code when loaded: they are refused unless ``trust_pickle``, and then
    read with ``torch.load(weights_only=True)``, which admits tensors and plain containers only."""
    text = str(name_or_path)
    if text in BUNDLED:
        if not bundled_weights(text).is_file():
            raise InpaintError(f"this build has no bundled {text!r} weights; name a model with --model")
        return load_weights(bundled_weights(text))
    if text.endswith(".safetensors"):
        return load_weights(text)
    if text.endswith((".ckpt", ".pth", ".pt", ".bin")):
        if not trust_pickle:
            raise InpaintError(
                f"{text}: pickled checkpoints can run code when loaded; use the run's .safetensors file, "
                "or pass --trust-pickle for a checkpoint you made"
            )
        return load_checkpoint(text)
    if text not in _BUILDERS:
        raise _unknown(text, [*BUNDLED, *_BUILDERS], "model")
    return create_model(text).eval()
