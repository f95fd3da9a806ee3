"""ONNX: exporting a learned model, and running an export with ONNX Runtime as a drop-in model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from inpaintkit.errors import InpaintError
from inpaintkit.io import write_bytes


class OnnxModel:
    """An exported model run by ONNX Runtime, with the torch model's calling convention and the
    metadata the export recorded (``size_multiple``, ``min_size``, the card and its task)."""

    learned = True
    not_exportable_because = "it is already an ONNX model"

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
        self.min_size = int(meta.get("min_size", "1"))
        self.card = json.loads(meta.get("inpaintkit", "{}"))
        self.task = self.card.get("task", "inpaint")

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        feeds = {"image": image.float().cpu().numpy(), "mask": mask.float().cpu().numpy()}
        return torch.from_numpy(self.session.run(None, feeds)[0])


def export_onnx(model: nn.Module, path: str | Path) -> Path:
    """Export with dynamic height and width (multiples of ``size_multiple``), opset 20; the card,
    ``size_multiple`` and ``min_size`` go into the model's metadata."""
    path = Path(path)
    if not model.exportable:
        raise InpaintError(f"this model cannot be exported to ONNX: {model.not_exportable_because}")
    multiple = model.size_multiple
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
    card = model.card or {**(model.config or {}), "task": model.task}
    meta = {"size_multiple": str(multiple), "min_size": str(model.min_size), "inpaintkit": json.dumps(card)}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return write_bytes(path, proto.SerializeToString())


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

    if backend == "onnx" and not model.learned:
        raise InpaintError("classical methods run in NumPy; --backend onnx applies to learned models")
    if backend == "torch" or not model.learned or _on_gpu(model):
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
    return next((p.device.type != "cpu" for p in model.parameters()), False)


def _model_key(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return f"{(model.config or {}).get('model', 'model')}-{digest.hexdigest()[:16]}"
