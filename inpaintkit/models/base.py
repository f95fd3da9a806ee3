"""What every method declares about itself, so no caller has to probe a model.

A :class:`Generator` predicts an image from ``(masked_image (B, 3, H, W), mask (B, 1, H, W))``;
the runner (:mod:`inpaintkit.runner`) has already hidden the hole, padded to ``size_multiple`` and
will crop and composite. Besides ``forward`` a generator declares:

- ``size_multiple``: the input's height and width must be multiples of it;
- ``min_size``: and at least this many pixels (the runner pads smaller photos up to it);
- ``not_exportable_because``: ``None`` when it exports to ONNX, else the reason in words;
- ``learned``: ``False`` for classical methods (no weights to train, save or export);
- ``task``: what it computes (``inpaint`` until trained weights say otherwise);
- ``config``: how to rebuild it, ``{"model": builder name, "kwargs": {...}}``, recorded when it is
  built, whether by :func:`inpaintkit.models.create_model` or by calling its class directly.
"""

from __future__ import annotations

import functools
import inspect
from typing import ClassVar

from torch import nn


class Generator(nn.Module):
    size_multiple: int = 1
    min_size: int = 1
    not_exportable_because: str | None = None
    learned: ClassVar[bool] = True
    task: str = "inpaint"
    # The registered builder whose arguments are this class's constructor arguments: a model built
    # directly from its class is saved as that builder called with those arguments.
    builder: ClassVar[str | None] = None
    config: dict | None = None
    card: dict | None = None  # what the weights file said: recipe, metrics, lineage

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            return
        init = cls.__init__
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            init(self, *args, **kw)
            if type(self) is cls and self.builder is not None:  # the outermost constructor records
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                self.config = {"model": self.builder, "kwargs": dict(list(bound.arguments.items())[1:])}

        cls.__init__ = recording_init

    @property
    def exportable(self) -> bool:
        return self.not_exportable_because is None
