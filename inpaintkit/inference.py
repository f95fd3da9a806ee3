"""Running a model on photos of any size and shape, with one validated options object.

:class:`InpaintOptions` carries every setting of a fill (strategy, max side, feather, device,
backend); the CLI, the Python API and the app build one and pass it here. The model is called
through :mod:`inpaintkit.runner`, which hides the hole, pads, crops and composites, so known pixels
are bit-identical. Large photos use a strategy:

- ``original``: the whole photo at full resolution (memory grows with the pixel count);
- ``resize``: the photo scaled down so its long side is ``max_side``, filled, and only the filled
  region scaled back up and pasted into the full-resolution original;
- ``crop``: a window around each hole (the hole's bounding box plus a margin of half its size,
  at least 64 px) is filled on its own, so a small hole in a 12-megapixel photo costs little;
- ``auto`` (default): ``original`` when the long side is at most ``max_side``; otherwise ``crop``
  when the windows around the holes cover less than half the photo, else ``resize``. Every path
  keeps the model's input at most ``max_side`` on a side, which bounds memory.
"""

from __future__ import annotations

import contextlib
import numbers
import platform
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from inpaintkit import runner
from inpaintkit.errors import InpaintError
from inpaintkit.masks import bounding_box
from inpaintkit.models.layers import fold_batchnorm
from inpaintkit.tasks import is_inpainting

STRATEGIES = ("auto", "original", "resize", "crop")
BACKENDS = ("auto", "torch", "onnx")
DEVICES = ("auto", "cpu", "cuda", "mps")


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``uint8 (H, W, 3)`` -> ``float32 (1, 3, H, W)`` in [0, 1]."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def mask_to_tensor(mask: np.ndarray) -> torch.Tensor:
    """``bool (H, W)`` -> ``float32 (1, 1, H, W)``, 1 = hole."""
    return torch.from_numpy(np.array(mask, dtype=np.float32))[None, None]


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """``float (1, 3, H, W)`` or ``(3, H, W)`` in [0, 1] -> ``uint8 (H, W, 3)`` (rounded, clipped)."""
    if image.dim() == 4:
        image = image[0]
    arr = image.detach().float().clamp(0, 1).mul(255.0).round().to(torch.uint8)
    return arr.permute(1, 2, 0).cpu().numpy()


@dataclass(frozen=True)
class InpaintOptions:
    """How a photo is filled. Checked when made, so a bad value fails before any model loads."""

    strategy: str = "auto"  # auto, original, resize or crop (see the module's docstring)
    max_side: int = 1024  # the longest side the model runs at under resize and crop
    feather: int = 0  # blend the fill into the hole's border over this many pixels
    device: str = "auto"  # auto (CUDA, else an Apple GPU, when present), cpu, cuda or mps
    backend: str = "auto"  # torch, onnx (ONNX Runtime), or auto (ONNX when an export is cached)

    def __post_init__(self):
        for key, choices in (("strategy", STRATEGIES), ("device", DEVICES), ("backend", BACKENDS)):
            if getattr(self, key) not in choices:
                raise InpaintError(f"unknown {key} {getattr(self, key)!r}; choose from {', '.join(choices)}")
        if not _whole(self.max_side) or self.max_side < 16:
            raise InpaintError(f"max side must be a whole number of at least 16 pixels, got {self.max_side!r}")
        if not _whole(self.feather) or self.feather < 0:
            raise InpaintError(f"feather must be a whole number of 0 or more pixels, got {self.feather!r}")
        object.__setattr__(self, "max_side", int(self.max_side))  # a NumPy integer becomes a Python one
        object.__setattr__(self, "feather", int(self.feather))


def _whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def prepare(model, options: InpaintOptions):
    """``model`` ready to serve on ``options.device`` with ``options.backend``."""
    from inpaintkit.export import with_backend

    return with_backend(select_device(model, options.device), options.backend)


def _run(model, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    device = _device(model)
    return to_uint8(runner.predict(model, to_tensor(image).to(device), mask_to_tensor(hole).to(device)))


def _resized(model, image: np.ndarray, hole: np.ndarray, max_side: int) -> np.ndarray:
    """Fill at a long side of ``max_side``; returns a full-size prediction (valid inside the hole)."""
    h, w = hole.shape
    scale = max_side / max(h, w)
    if scale >= 1:
        return _run(model, image, hole)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    # Any hole pixel inside a low-resolution cell makes that cell a hole: nothing old leaks back.
    small_hole = cv2.resize(hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
    filled = _run(model, small, small_hole)
    return cv2.resize(filled, (w, h), interpolation=cv2.INTER_CUBIC)


def hole_windows(hole: np.ndarray, min_margin: int = 64) -> list[tuple[int, int, int, int]]:
    """``(top, bottom, left, right)`` windows around groups of hole pixels: each hole's bounding box
    grown by half its size (at least ``min_margin``); overlapping windows are merged."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(hole.astype(np.uint8), connectivity=8)
    h, w = hole.shape
    boxes = []
    for x, y, bw, bh, _ in stats[1:count]:
        m = max(min_margin, max(bw, bh) // 2)
        boxes.append([max(0, y - m), min(h, y + bh + m), max(0, x - m), min(w, x + bw + m)])
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]:
                    boxes[i] = [min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return [tuple(b) for b in boxes]


def choose_strategy(hole: np.ndarray, max_side: int) -> str:
    h, w = hole.shape
    if max(h, w) <= max_side:
        return "original"
    covered = sum((b - t) * (r - left) for t, b, left, r in hole_windows(hole))
    return "crop" if covered < 0.5 * h * w else "resize"


def feather_weights(hole: np.ndarray, width: int) -> np.ndarray:
    """Blend weight of the fill: 1 deep inside the hole, ramping to 0 at its border over ``width``
    px (at most the hole's own depth, so its middle is always filled), 0 outside. Softens the seam
    when a mask is drawn loosely around an object."""
    if width <= 0:
        return hole.astype(np.float32)
    inside = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3)
    return np.clip(inside / max(1.0, min(width, inside.max())), 0, 1).astype(np.float32) * hole  # no 0/0


def require_inpainter(model) -> None:
    """Refuse a model trained for another image-to-image task (``sobel`` ...)."""
    if not is_inpainting(model.task):
        raise InpaintError(
            f"this model computes the {model.task!r} task, not inpainting; run it with `inpaintkit apply`"
        )


def inpaint_array(model, image: np.ndarray, hole: np.ndarray, options: InpaintOptions = InpaintOptions()) -> np.ndarray:
    """``uint8 (H, W, 3)`` and ``bool (H, W)`` -> ``uint8 (H, W, 3)``; known pixels bit-identical."""
    require_inpainter(model)
    if not hole.any():
        return image.copy()
    strategy = choose_strategy(hole, options.max_side) if options.strategy == "auto" else options.strategy
    if strategy == "original":
        pred = _run(model, image, hole)
    elif strategy == "resize":
        pred = _resized(model, image, hole, options.max_side)
    else:
        pred = image.copy()
        for top, bottom, left, right in hole_windows(hole):
            window = (slice(top, bottom), slice(left, right))
            pred[window] = _resized(model, pred[window], hole[window], options.max_side)
    # Composite only inside the hole's bounding box: on a 12-megapixel photo with a small hole the
    # full-frame float blend used to cost more than the model.
    # A ring of known pixels around the hole, so the feather's distances are the full frame's.
    top, bottom, left, right = bounding_box(hole, margin=options.feather + 1)
    box = (slice(top, bottom), slice(left, right))
    weight = feather_weights(hole[box], options.feather)[:, :, None]
    blended = np.round(weight * pred[box] + (1 - weight) * image[box]).astype(np.uint8)
    out = image.copy()
    out[box] = np.where(hole[box][:, :, None], blended, image[box])
    return out


@torch.no_grad()
def apply_array(model, image: np.ndarray) -> np.ndarray:
    """An image-to-image model (Sobel, filter, denoise) on a whole photo: ``uint8 (H, W, 3)`` ->
    ``uint8 (H, W, 3)``, or ``(H, W)`` for a one-channel output."""
    device = _device(model)
    source = to_tensor(image).to(device)
    out = runner.predict(model, source, torch.zeros_like(source[:, :1]))
    array = to_uint8(out.expand(-1, 3, -1, -1))
    return np.ascontiguousarray(array[:, :, 0] if out.shape[1] == 1 else array)


def _device(model) -> torch.device:
    if isinstance(model, nn.Module):
        return next((p.device for p in model.parameters()), torch.device("cpu"))
    return torch.device("cpu")


def _available(device: str) -> bool:
    if device == "cuda":
        return torch.cuda.is_available()
    return device == "mps" and torch.backends.mps.is_available()


def resolve_device(device: str = "auto") -> str:
    """``cpu``, ``cuda`` or ``mps`` for a ``--device`` value: ``auto`` picks CUDA, else an Apple GPU,
    when present; a device that is not here is a one-line error."""
    if device not in DEVICES:
        raise InpaintError(f"unknown device {device!r}; choose from {', '.join(DEVICES)}")
    names = {"cuda": "CUDA device", "mps": "Apple GPU (MPS)"}
    if device in names and not _available(device):
        raise InpaintError(f"--device {device}: no {names[device]} is available here")
    return device if device != "auto" else next((d for d in names if _available(d)), "cpu")


@contextlib.contextmanager
def full_float32(device: str):
    """On CUDA, convolutions and matrix products in float32, not TF32 (PyTorch's default for
    convolutions), inside the block; the bench runs in it. Measured on an H200, the bench's tables
    on CUDA are then the CPU's to the printed digit but FID (within 0.02 on 9 photos); with TF32,
    LPIPS and SSIM moved in the 4th decimal and FID by up to 0.25. The settings are the process's:
    one such block at a time."""
    if device != "cuda":
        yield
        return
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # torch 2.9 on
        flags = [(torch.backends.cudnn.conv, "fp32_precision", "ieee")]
        flags.append((torch.backends.cuda.matmul, "fp32_precision", "ieee"))
    else:
        flags = [(torch.backends.cudnn, "allow_tf32", False), (torch.backends.cuda.matmul, "allow_tf32", False)]
    saved = [getattr(owner, name) for owner, name, _ in flags]
    for owner, name, value in flags:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for (owner, name, _), value in zip(flags, saved, strict=True):
            setattr(owner, name, value)


def select_device(model, device: str = "auto"):
    """Make a torch model ready to serve: on ``cpu``, ``cuda``, ``mps`` (Apple GPUs) or (``auto``)
    CUDA, else MPS, when present, in channels-last memory format (measured about 25 % faster for
    ``ffc`` on CPU at 256-1024 px), and, in eval mode, with its BatchNorms folded into the
    convolutions in place (4-11 % faster from 512 px to 12 MP; benchmarks/). Where the device
    computes bfloat16 natively (CPUs with AVX512-BF16 or AMX, CUDA GPUs from Ampere on), the model's
    convolutions run in bfloat16 under autocast (:func:`inpaintkit.runner.predict`): the default
    model's network 1.2-1.5x faster on this project's CPU, its fills within 3 levels of float32's."""
    target = resolve_device(device)
    if not isinstance(model, nn.Module):
        return model
    if not model.training:
        fold_batchnorm(model)
    model.autocast_dtype = torch.bfloat16 if native_bfloat16(target) else None
    return model.to(target).to(memory_format=torch.channels_last)


def native_bfloat16(device: str) -> bool:
    """Whether ``device`` computes bfloat16 natively (AVX512-BF16 or AMX; CUDA from Ampere on). On
    x86, oneDNN's own check admits any AVX512 CPU, where bfloat16 is emulated and slower."""
    if device == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return torch.ops.mkldnn._is_mkldnn_bf16_supported()


# the bench's precisions, named as recipes name theirs (Lightning's names)
PRECISIONS = {"32-true": None, "bf16-mixed": torch.bfloat16}


def network_dtype(precision: str, device: str) -> torch.dtype | None:
    """The autocast type of a bench's networks (learned fills, LPIPS, Inception) for ``precision``:
    None for ``32-true``; ``bf16-mixed`` only where ``device`` computes bfloat16 natively (elsewhere it is
    emulated, slower than float32)."""
    if precision not in PRECISIONS:
        raise InpaintError(f"unknown precision {precision!r}; choose {' or '.join(PRECISIONS)}")
    if PRECISIONS[precision] is not None and not native_bfloat16(device):
        raise InpaintError(
            f"bfloat16 is not native on this {device} (it needs AVX512-BF16 or AMX, or a CUDA GPU from "
            "Ampere on), so it would be slower than float32; use --precision 32-true"
        )
    return PRECISIONS[precision]
