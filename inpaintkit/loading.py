"""Any model a user can name: a registered method, bundled weights, a weights file or (trusted) one
of our training checkpoints. The one place names and paths turn into models."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from inpaintkit.errors import InpaintError
from inpaintkit.models import create_model, load_weights, model_names
from inpaintkit.models.registry import unknown_name

# The model `inpaintkit inpaint` uses when none is named.
DEFAULT_MODEL = "default"
BUNDLED = {
    "default": "the inpainting flagship (the model used when none is named)",
    "sobel": "a 0.48M-parameter U-Net that computes the Sobel edge magnitude (task sobel)",
    "filter": "a 0.48M-parameter U-Net that applies a fixed 5x5 filter (task filter, kernel seed 0)",
    "denoise": "a 0.48M-parameter U-Net that removes Gaussian noise of sigma 25/255 (task denoise)",
}
PICKLE_SUFFIXES = (".ckpt", ".pth", ".pt", ".bin")


def bundled_weights(name: str = DEFAULT_MODEL) -> Path:
    """Where the bundled weights ``name`` (a key of ``BUNDLED``) ship inside the package."""
    return Path(__file__).resolve().parent / "weights" / f"{name}.safetensors"


def require_known(name_or_path: str | Path) -> None:
    """``name_or_path`` names a model (bundled, registered) or a file of one; else the one-line
    "unknown model" error with the names that come closest."""
    text = str(name_or_path)
    if text not in BUNDLED and not text.endswith((".safetensors", *PICKLE_SUFFIXES)) and text not in model_names():
        raise unknown_name(text, [*BUNDLED, *model_names()], "model")


def load_model(name_or_path: str | Path, trust_pickle: bool = False, untrained: bool = False) -> nn.Module:
    """A registered name (``telea``, ``unet`` ...), bundled weights (``default``, ``sobel``) or a weights file.

    A learned architecture named without weights has random weights: it is refused unless
    ``untrained`` (for showing its layers or timing it), since its fill is noise. Pickled checkpoints
    can run code when loaded: they are refused unless ``trust_pickle``, and then read with
    ``torch.load(weights_only=True)``, which admits tensors and plain containers only."""
    text = str(name_or_path)
    if text in BUNDLED:
        if not bundled_weights(text).is_file():
            raise InpaintError(f"this build has no bundled {text!r} weights; name a model with --model")
        return load_weights(bundled_weights(text))
    if text.endswith(".safetensors"):
        return load_weights(text)
    if text.endswith(PICKLE_SUFFIXES):
        if not trust_pickle:
            raise InpaintError(
                f"{text}: pickled checkpoints can run code when loaded; use the run's .safetensors file, "
                "or pass --trust-pickle for a checkpoint you made"
            )
        from inpaintkit.training import load_checkpoint

        return load_checkpoint(text)
    require_known(text)
    model = create_model(text).eval()
    if not untrained and any(True for _ in model.parameters()):
        raise InpaintError(
            f"model {text!r} is an architecture without trained weights; train it (inpaintkit train) and pass "
            "its .safetensors file, or name default or a classical method"
        )
    return model
