"""Weights on disk: safetensors with a JSON card in the header (and a readable ``.json`` beside it).

The card says how to rebuild the model (builder name and arguments) and what the weights are
(recipe, task, metrics). Nothing is unpickled: a file is checked against the model its card names
before any tensor is read.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from inpaintkit.errors import InpaintError
from inpaintkit.io import write_bytes
from inpaintkit.models.base import Generator
from inpaintkit.models.registry import architecture, count_parameters, create_model, model_accepts, model_names

CARD_FORMAT = "inpaintkit-weights-1"


def save_model(model: nn.Module, path: str | Path, card: dict | None = None) -> Path:
    """Write ``model`` as safetensors (card in the header) plus a readable ``.json`` card beside it."""
    from safetensors.torch import save

    if not isinstance(model, Generator) or model.config is None:
        raise ValueError(f"{type(model).__name__} has no recorded config: build it with create_model")
    if not model.learned:
        raise InpaintError("classical methods have no weights to save")
    path = Path(path)
    full_card = {
        "format": CARD_FORMAT,
        "model": model.config["model"],
        "kwargs": model.config["kwargs"],
        "parameters": count_parameters(model),
        **(card or {}),
    }
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    write_bytes(path, save(tensors, metadata={"inpaintkit": json.dumps(full_card)}))
    write_bytes(path.with_suffix(".json"), (json.dumps(full_card, indent=2) + "\n").encode())
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
    except (json.JSONDecodeError, RecursionError):
        raise InpaintError(f"{path}: the inpaintkit card in the header is not valid JSON") from None
    if not isinstance(card, dict) or "model" not in card or not isinstance(card.get("kwargs", {}), dict):
        raise InpaintError(f"{path}: the inpaintkit card lacks the model name or its arguments")
    if not isinstance(card.get("task", "inpaint"), str) or not isinstance(card.get("recipe", {}), dict):
        raise InpaintError(f"{path}: the inpaintkit card's task or recipe is malformed")
    return card


def card_task(card: dict) -> str:
    """The task a card's model was trained for (older cards record it in the recipe only)."""
    return card.get("task") or card.get("recipe", {}).get("task", "inpaint")


def _untrained(name: str, kwargs: dict) -> dict:
    return {**kwargs, "pretrained": False} if model_accepts(name, "pretrained") else kwargs


def build_untrained(name: str, kwargs: dict) -> nn.Module:
    """The architecture of model ``name`` with ``kwargs``, without the ImageNet weights a builder
    would load (used when every weight comes from a file, or only the architecture is wanted)."""
    return create_model(name, **_untrained(name, kwargs))


def load_weights(path: str | Path) -> nn.Module:
    """Rebuild a model from a safetensors file; shapes are checked against the card's model before
    any tensor is read, so a mismatched or hostile file fails with one clear error."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InpaintError(f"{path}: weights file not found")
    card = read_card(path)
    if not isinstance(card["model"], str) or card["model"] not in model_names():
        raise InpaintError(f"{path}: the card names no known model ({str(card['model'])[:40]!r})")
    kwargs = _untrained(card["model"], card.get("kwargs", {}))
    # The card's architecture is checked against the file's tensors on the meta device, so a card
    # asking for a huge model allocates nothing before it is refused.
    expected = architecture(card["model"], kwargs).state_dict()
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
    model = create_model(card["model"], **kwargs)
    model.config = {"model": card["model"], "kwargs": dict(card.get("kwargs", {}))}
    model.load_state_dict(state, strict=True)
    model.card = card
    model.task = card_task(card)
    return model.eval()
