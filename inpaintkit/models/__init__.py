"""Every method, classical or learned, behind one contract: ``forward(masked_image, mask) -> image``.

- :mod:`~inpaintkit.models.base`: the :class:`Generator` base class and what a model declares;
- :mod:`~inpaintkit.models.registry`: builders by name, registered in each family's own file;
- :mod:`~inpaintkit.models.weights`: safetensors files with a card that rebuilds the model;
- one file per family (``unet.py``, ``ffc.py`` ...) plus ``layers.py``, the shared blocks.
"""

from inpaintkit.models.base import Generator
from inpaintkit.models.registry import (
    ModelInfo,
    classical_names,
    count_parameters,
    create_discriminator,
    create_model,
    discriminator_names,
    list_models,
    model_accepts,
    model_names,
)
from inpaintkit.models.weights import build_untrained, card_task, load_weights, read_card, save_model

__all__ = [
    "Generator", "ModelInfo", "build_untrained", "classical_names", "count_parameters", "create_discriminator",
    "create_model", "discriminator_names", "list_models", "load_weights", "model_accepts", "model_names",
    "read_card", "save_model", "card_task",
]  # fmt: skip
