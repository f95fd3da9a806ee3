"""Running a model on photos of any size and shape.

The model always sees a padded copy (reflect, to its ``size_multiple``) and the result is cropped
back and composited, so known pixels are bit-identical. Large photos use a strategy:

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

import json
import os
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from inpaintkit.errors import InpaintError
from inpaintkit.io import mask_to_tensor, to_tensor, to_uint8
from inpaintkit.models.layers import fold_batchnorm

STRATEGIES = ("auto", "original", "resize", "crop")
BACKENDS = ("auto", "torch", "onnx")
DEFAULT_MAX_SIDE = 1024


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad ``(B, C, H, W)`` on the bottom and right to multiples of ``multiple`` (reflect where the
    image is large enough, else replicate)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def _device(model) -> torch.device:
    return next((p.device for p in getattr(model, "parameters", lambda: iter(()))()), torch.device("cpu"))


@torch.no_grad()
def predict(model, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Composited result of ``model``: ``image (B, 3, H, W)``, ``mask (B, 1, H, W)`` -> ``(B, 3, H, W)``.

    Hole pixels are zeroed before the model sees them, so nothing of the original leaks through.
    """
    multiple = getattr(model, "size_multiple", 1)
    h, w = image.shape[-2:]
    masked = image * (1 - mask)
    pred = model(pad_to_multiple(masked, multiple), pad_to_multiple(mask, multiple))[..., :h, :w]
    return mask * pred.clamp(0, 1) + (1 - mask) * image


def _run(model, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    device = _device(model)
    out = predict(model, to_tensor(image).to(device), mask_to_tensor(hole).to(device))
    return to_uint8(out)


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
    px, 0 outside. Softens the seam when a mask is drawn loosely around an object."""
    if width <= 0:
        return hole.astype(np.float32)
    inside = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3)
    return np.clip(inside / width, 0, 1).astype(np.float32) * hole


def require_inpainter(model) -> None:
    """Refuse a model its card says was trained for another image-to-image task (``sobel`` ...)."""
    task = (getattr(model, "card", None) or {}).get("task", "inpaint")
    if task not in ("inpaint", "outpaint"):
        raise InpaintError(f"this model computes the {task!r} task, not inpainting; run it with `inpaintkit apply`")


def inpaint_array(
    model,
    image: np.ndarray,
    hole: np.ndarray,
    strategy: str = "auto",
    max_side: int = DEFAULT_MAX_SIDE,
    feather: int = 0,
) -> np.ndarray:
    """``uint8 (H, W, 3)`` and ``bool (H, W)`` -> ``uint8 (H, W, 3)``; known pixels bit-identical."""
    if strategy not in STRATEGIES:
        raise InpaintError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if feather < 0:
        raise InpaintError(f"feather must be 0 or more pixels, got {feather}")
    require_inpainter(model)
    if not hole.any():
        return image.copy()
    if strategy == "auto":
        strategy = choose_strategy(hole, max_side)
    if strategy == "original":
        pred = _run(model, image, hole)
    elif strategy == "resize":
        pred = _resized(model, image, hole, max_side)
    else:
        pred = image.copy()
        for top, bottom, left, right in hole_windows(hole):
            window = (slice(top, bottom), slice(left, right))
            pred[window] = _resized(model, pred[window], hole[window], max_side)
    # Composite only inside the hole's bounding box: on a 12-megapixel photo with a small hole the
    # full-frame float blend used to cost more than the model.
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    m = max(feather, 0) + 1  # a ring of known pixels, so the feather's distances are the full frame's
    box = (slice(max(0, rows[0] - m), rows[-1] + 1 + m), slice(max(0, cols[0] - m), cols[-1] + 1 + m))
    weight = feather_weights(hole[box], feather)[:, :, None]
    blended = np.round(weight * pred[box] + (1 - weight) * image[box]).astype(np.uint8)
    out = image.copy()
    out[box] = np.where(hole[box][:, :, None], blended, image[box])
    return out


class OnnxModel:
    """An exported model run by ONNX Runtime, with the torch model's calling convention."""

    def __init__(self, path: str | Path, threads: int = 0):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
            raise InpaintError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        self.size_multiple = int(meta.get("size_multiple", "1"))
        self.card = json.loads(meta.get("inpaintkit", "{}"))

    def parameters(self):
        return iter(())

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        feeds = {"image": image.float().cpu().numpy(), "mask": mask.float().cpu().numpy()}
        return torch.from_numpy(self.session.run(None, feeds)[0])


def export_onnx(model: nn.Module, path: str | Path) -> Path:
    """Export with dynamic height and width (multiples of ``size_multiple``), opset 20; the card and
    ``size_multiple`` go into the model's metadata."""
    import onnx

    path = Path(path)
    multiple = getattr(model, "size_multiple", 1)
    if not any(True for _ in model.parameters()):
        raise InpaintError("classical methods are not neural networks and cannot be exported to ONNX")
    if not getattr(model, "exportable", True):
        raise InpaintError(f"this model cannot be exported to ONNX: {model.not_exportable_because}")
    model = model.eval().cpu()
    size = 8 * multiple if multiple < 32 else 2 * multiple
    example = (torch.rand(1, 3, size, size), torch.zeros(1, 1, size, size))
    h, w = torch.export.Dim("h", min=1, max=8192 // multiple), torch.export.Dim("w", min=1, max=8192 // multiple)
    dims = {2: multiple * h, 3: multiple * w} if multiple > 1 else {2: h, 3: w}
    program = torch.onnx.export(
        model, example, dynamo=True, opset_version=20, input_names=["image", "mask"], output_names=["output"],
        dynamic_shapes={"image": dims, "mask": dims}, verbose=False,
    )  # fmt: skip
    proto = program.model_proto
    card = getattr(model, "card", None) or {"model": getattr(model, "builder_name", type(model).__name__)}
    for key, value in (("size_multiple", str(multiple)), ("inpaintkit", json.dumps(card))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    onnx.save(proto, str(tmp))
    os.replace(tmp, path)
    return path


def onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def with_backend(model, backend: str = "auto", cache: Path | None = None):
    """``model`` as run by ``backend``: ``torch`` as it is; ``onnx`` through ONNX Runtime (exported
    once into ``cache``, keyed by the weights); ``auto`` uses ONNX Runtime when it is installed and
    this model's export is already cached (a first export can take minutes), else torch."""
    from inpaintkit.backbones import home

    if backend not in BACKENDS:
        raise InpaintError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    learned = isinstance(model, nn.Module) and any(True for _ in model.parameters())
    if backend == "onnx" and not learned:
        raise InpaintError("classical methods run in NumPy; --backend onnx applies to learned models")
    if backend == "torch" or not learned or _on_gpu(model):
        return model
    path = (cache or home() / "onnx") / f"{_model_key(model)}.onnx"
    if backend == "auto":
        return OnnxModel(path) if onnx_available() and path.is_file() else model
    if not onnx_available():
        raise InpaintError("--backend onnx needs onnxruntime: pip install 'inpaintkit[onnx]'")
    if not path.is_file():
        export_onnx(model, path)
    return OnnxModel(path)


def _on_gpu(model: nn.Module) -> bool:
    return _device(model).type != "cpu"


def _model_key(model: nn.Module) -> str:
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return f"{getattr(model, 'builder_name', 'model')}-{digest.hexdigest()[:16]}"


def select_device(model, device: str = "auto"):
    """Make a torch model ready to serve: on ``cpu``, ``cuda`` or (``auto``) CUDA when present, in
    channels-last memory format (measured about 25 % faster for ``ffc`` on CPU at 256-1024 px), and,
    in eval mode, with its BatchNorms folded into the convolutions in place (4-11 % faster from 512 px
    to 12 MP; benchmarks/)."""
    if device not in ("auto", "cpu", "cuda"):
        raise InpaintError(f"unknown device {device!r}; choose auto, cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise InpaintError("--device cuda: no CUDA device is available here")
    target = "cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu"
    if not isinstance(model, nn.Module):
        return model
    if not model.training:
        fold_batchnorm(model)
    return model.to(target).to(memory_format=torch.channels_last)
