"""The inpainting contract, owned here and nowhere else.

Training, inference, the bench and ``apply`` all call a model through :func:`forward`:

1. the hole is hidden: the model sees ``image * (1 - mask)`` and the mask, never a hole pixel;
2. both are padded on the bottom and right to the model's ``size_multiple``, and up to its
   ``min_size`` (reflect where the image is large enough, else replicate); the prediction is
   cropped back;
3. :func:`finish` clamps the prediction to [0, 1] and, for inpainting, composites it:
   ``mask * pred + (1 - mask) * image``, so known pixels come back bit-identical.

Image-to-image models (Sobel, filter, denoise) run the same way with an all-zero mask, and their
clamped output is used whole. Tensors are ``(B, C, H, W)``; masks ``(B, 1, H, W)``, 1 = hole.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from inpaintkit.tasks import is_inpainting


def pad_to_multiple(x: torch.Tensor, multiple: int, minimum: int = 1) -> torch.Tensor:
    """Pad ``(B, C, H, W)`` on the bottom and right to multiples of ``multiple`` that are at least
    ``minimum`` (reflect where the image is large enough, else replicate)."""
    h, w = x.shape[-2:]
    ph, pw = (-max(h, minimum)) % multiple + max(minimum - h, 0), (-max(w, minimum)) % multiple + max(minimum - w, 0)
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def hide(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """What a model may see of ``image``: hole pixels set to zero."""
    return image * (1 - mask)


def forward(model, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The model's raw prediction for ``image`` with ``mask`` hidden, at the input's size. Keeps the
    autograd graph (training calls it too)."""
    h, w = image.shape[-2:]
    size = model.size_multiple, model.min_size
    return model(pad_to_multiple(hide(image, mask), *size), pad_to_multiple(mask, *size))[..., :h, :w]


def composite(pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The fill inside the hole, the original everywhere else."""
    return mask * pred + (1 - mask) * image


def finish(pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor, task: str) -> torch.Tensor:
    """What the user gets from a prediction: clamped, and composited when ``task`` is inpainting."""
    pred = pred.clamp(0, 1)
    return composite(pred, image, mask) if is_inpainting(task) else pred


def autocast(module, device_type: str):
    """The block ``module`` runs in: autocast to its ``autocast_dtype`` where it names one (served
    models, and the bench's networks at ``--precision bf16-mixed``), else nothing."""
    dtype = getattr(module, "autocast_dtype", None)
    return torch.autocast(device_type, dtype=dtype) if dtype else contextlib.nullcontext()


@torch.no_grad()
def predict(model, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The finished result of ``model`` (its declared ``task`` decides whether to composite). A
    served model (:func:`inpaintkit.inference.select_device`) may name an ``autocast_dtype``: its
    convolutions and matrix products then run in that type, the rest in float32."""
    with autocast(model, image.device.type):
        pred = forward(model, image, mask)
    return finish(pred.float(), image, mask, model.task)
