"""Blocks shared by the model families: conv-norm-act, self-attention, the Fourier unit and FFC."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


def activation(kind: str) -> nn.Module:
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "lrelu":
        return nn.LeakyReLU(0.2, inplace=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {kind!r}")


class ConvNormAct(nn.Sequential):
    """Convolution (no bias when a norm follows), normalisation, activation."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, norm: str = "batch", act: str = "relu"):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=norm == "none"),
            norm_layer(norm, cout),
            activation(act),
        )


class UpNormAct(nn.Sequential):
    """Transposed convolution that doubles the size, normalisation, activation."""

    def __init__(self, cin: int, cout: int, norm: str = "batch", act: str = "relu", kernel: int = 4):
        padding, output_padding = (1, 0) if kernel == 4 else (1, 1)
        super().__init__(
            nn.ConvTranspose2d(cin, cout, kernel, 2, padding, output_padding, bias=norm == "none"),
            norm_layer(norm, cout),
            activation(act),
        )


class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al., 2019): query and key at C/8, value at C, a learned gate
    ``gamma`` that starts at 0 so the block begins as the identity."""

    def __init__(self, channels: int):
        super().__init__()
        self.query = nn.Conv2d(channels, max(1, channels // 8), 1)
        self.key = nn.Conv2d(channels, max(1, channels // 8), 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (B, HW, C/8)
        k = self.key(x).flatten(2)  # (B, C/8, HW)
        attn = torch.softmax(q @ k, dim=-1)  # (B, HW, HW)
        v = self.value(x).flatten(2)  # (B, C, HW)
        out = (v @ attn.transpose(1, 2)).view(b, c, h, w)
        return x + self.gamma * out


def _dft_matrices(n: int, k: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of ``2 pi i j / n`` for ``i < n``, ``j < k``: ``(n, k)`` each."""
    i = torch.arange(n, device=like.device, dtype=torch.float64)
    j = torch.arange(k, device=like.device, dtype=torch.float64)
    angle = torch.outer(i, j) * (2 * math.pi / n)
    return torch.cos(angle).to(like.dtype), torch.sin(angle).to(like.dtype)


def rfft2_matmul(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.fft.rfft2(x, norm="ortho")`` as real and imaginary parts, written as matrix products.

    Used when exporting: ONNX Runtime's DFT kernel mishandles the inverse real FFT at dynamic sizes,
    while MatMul exports everywhere. Same values as torch.fft to float32 rounding (about 1e-6).
    """
    h, w = x.shape[-2:]
    scale = x.new_ones(()).mul(h * w).rsqrt()  # a tensor, so an exported graph keeps it symbolic
    cos_w, sin_w = _dft_matrices(w, w // 2 + 1, x)
    re, im = x @ cos_w, -(x @ sin_w)  # along W: (B, C, H, W/2+1)
    cos_h, sin_h = _dft_matrices(h, h, x)
    return (cos_h @ re + sin_h @ im) * scale, (cos_h @ im - sin_h @ re) * scale  # along H


def irfft2_matmul(re: torch.Tensor, im: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``torch.fft.irfft2(re + i im, s=(h, w), norm="ortho")`` as matrix products (see above)."""
    scale = re.new_ones(()).mul(h * w).rsqrt()
    cos_h, sin_h = _dft_matrices(h, h, re)
    re, im = cos_h @ re - sin_h @ im, sin_h @ re + cos_h @ im  # inverse along H
    k = w // 2 + 1
    cos_w, sin_w = _dft_matrices(w, k, re)
    # Bins other than DC and (for even w) Nyquist stand for a conjugate pair: they count twice.
    j = torch.arange(k, device=re.device)
    twice = (2 - (j == 0).to(re.dtype) - (2 * j == w).to(re.dtype)).to(re.dtype)
    return ((re * twice) @ cos_w.T - (im * twice) @ sin_w.T) * scale


class FourierUnit(nn.Module):
    """A 1x1 convolution in the frequency domain: every output pixel sees the whole image.

    Real FFT over (H, W), real and imaginary parts stacked as channels, conv-BN-ReLU, inverse FFT.
    The FFT runs in float32 (cuFFT does not take bf16 at arbitrary sizes).
    """

    batchnorm_inputs = {"norm": ("conv",)}  # for fold_batchnorm

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(2 * cin, 2 * cout, 1, bias=False)
        self.norm = nn.BatchNorm2d(2 * cout)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        h, w = x.shape[-2:]
        exporting = torch.compiler.is_exporting()
        with torch.autocast(device_type=x.device.type, enabled=False):
            if exporting:  # in float64: the matrix form rounds more than an FFT
                real, imag = (t.float() for t in rfft2_matmul(x.double()))
            else:
                spec = torch.fft.rfft2(x.float(), norm="ortho")  # (B, C, H, W/2+1) complex
                real, imag = spec.real, spec.imag
            spec = self.act(self.norm(self.conv(torch.cat([real, imag], dim=1))))  # (B, 2C_out, H, W/2+1)
            real, imag = spec.chunk(2, dim=1)
            if exporting:
                out = irfft2_matmul(real.double(), imag.double(), h, w).float()
            else:
                out = torch.fft.irfft2(torch.complex(real, imag), s=(h, w), norm="ortho")  # (B, C_out, H, W)
        return out.to(dtype)


class SpectralTransform(nn.Module):
    """LaMa's global branch: halve channels, Fourier unit with a residual, project to ``cout``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = max(1, cout // 2)
        self.reduce = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True))
        self.fourier = FourierUnit(mid, mid)
        self.project = nn.Conv2d(mid, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        return self.project(x + self.fourier(x))


class FFC(nn.Module):
    """Fast Fourier Convolution (Chi et al., 2020): channels split into a local part (3x3 convs)
    and a global part (spectral transform); four paths exchange information between them."""

    # Each norm's input is the sum of these convolutions' outputs (for fold_batchnorm).
    batchnorm_inputs = {
        "norm_local": ("local_to_local", "global_to_local"),
        "norm_global": ("local_to_global", "global_to_global.project"),
    }

    def __init__(self, channels: int, global_ratio: float = 0.75):
        super().__init__()
        self.cg = int(channels * global_ratio)
        self.cl = channels - self.cg
        self.local_to_local = nn.Conv2d(self.cl, self.cl, 3, padding=1, padding_mode="reflect", bias=False)
        self.local_to_global = nn.Conv2d(self.cl, self.cg, 3, padding=1, padding_mode="reflect", bias=False)
        self.global_to_local = nn.Conv2d(self.cg, self.cl, 3, padding=1, padding_mode="reflect", bias=False)
        self.global_to_global = SpectralTransform(self.cg, self.cg)
        self.norm_local = nn.BatchNorm2d(self.cl)
        self.norm_global = nn.BatchNorm2d(self.cg)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xl, xg = x.split([self.cl, self.cg], dim=1)
        yl = self.local_to_local(xl) + self.global_to_local(xg)
        yg = self.local_to_global(xl) + self.global_to_global(xg)
        return torch.cat([self.act(self.norm_local(yl)), self.act(self.norm_global(yg))], dim=1)


class FFCResBlock(nn.Module):
    """Two FFCs with a residual connection (LaMa's FFCResnetBlock)."""

    def __init__(self, channels: int, global_ratio: float = 0.75):
        super().__init__()
        self.ffc1 = FFC(channels, global_ratio)
        self.ffc2 = FFC(channels, global_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ffc2(self.ffc1(x))


def push_pull_fill(image: torch.Tensor, mask: torch.Tensor, levels: int = 8) -> torch.Tensor:
    """A smooth coarse fill of the hole from the known pixels ("push-pull", Gortler et al., 1996).

    Push: average the known pixels (weighted by how much of each cell is known) down a pyramid.
    Pull: come back up, keeping each level's own average where it has known pixels and blending in
    the upsampled coarser fill where it has few or none. Pure tensor ops, so it exports to ONNX.
    ``image (B, C, H, W)``, ``mask (B, 1, H, W)`` (1 = hole) -> ``(B, C, H, W)``.
    """
    known = 1 - mask
    x, w = image * known, known
    pyramid = []
    for _ in range(levels):
        pyramid.append((x, w))
        x, w = F.avg_pool2d(x, 2, ceil_mode=True), F.avg_pool2d(w, 2, ceil_mode=True)
    # Cells with no known pixel even at the coarsest level take the image's mean known colour.
    mean = x.sum(dim=(2, 3), keepdim=True) / w.sum(dim=(2, 3), keepdim=True).clamp_min(1e-8)
    fill = torch.where(w > 0, x / w.clamp_min(1e-8), mean)
    for x_l, w_l in reversed(pyramid):
        up = F.interpolate(fill, size=x_l.shape[-2:], mode="bilinear", align_corners=False)
        fill = torch.where(w_l > 0, x_l + up * (1 - w_l), up)  # x_l / w_l * w_l + up * (1 - w_l)
    return fill


def _laplacian9(u: torch.Tensor) -> torch.Tensor:
    """6x the isotropic 9-point Laplacian, [[1, 4, 1], [4, -20, 4], [1, 4, 1]], where it fits (valid).

    Sums of shifted slices: depthwise convolutions are several times slower on CPUs."""
    rows = u[..., :, :-2] + u[..., :, 2:]
    rows.add_(u[..., :, 1:-1], alpha=4)
    out = rows[..., :-2, :] + rows[..., 2:, :]
    return out.add_(rows[..., 1:-1, :], alpha=4).add_(u[..., 1:-1, 1:-1], alpha=-36)


def biharmonic_fill(
    image: torch.Tensor, mask: torch.Tensor, fine_iterations: int = 10, max_iterations: int = 30, tension: float = 0.1
) -> torch.Tensor:
    """The smoothest fill of the hole (thin plate: least squared Laplacian), solved fast and in torch.

    The same surface scikit-image's ``inpaint_biharmonic`` solves exactly, found here approximately
    by a cascadic conjugate-gradient multigrid (Bornemann & Deuflhard, 1996): the known pixels are
    averaged down a pyramid to a few pixels; at each level, from coarse to fine, the upsampled coarser
    fill is the start of a few conjugate-gradient steps on that level's hole, more steps on the cheap
    coarse levels (``fine_iterations`` at full size, doubling per level up to ``max_iterations``).
    The Laplacian is taken only where its 3x3 stencil fits, so borders are free (natural boundary);
    a little membrane energy (``tension`` times the squared gradient, as in Smith & Wessel's 1990
    "surface") keeps holes on the image's corners from running off.
    ``image (B, C, H, W)``, ``mask (B, 1, H, W)`` (1 = hole) -> ``(B, C, H, W)``; hole pixels only
    are changed. Its loop depends on the image size, so it does not export to ONNX.
    """
    # In NCHW order: shifted slices are several times slower on channels-last tensors (a one-channel
    # mask may pass for either and would pass channels-last on to what it multiplies).
    image, mask = (t.detach().clone(memory_format=torch.contiguous_format) for t in (image, mask))

    def normal(u: torch.Tensor) -> torch.Tensor:  # the gradient of the energy, halved, times 36
        bending = _laplacian9(F.pad(_laplacian9(u), (2, 2, 2, 2)))  # L^T L u; L is symmetric
        # The membrane term's gradient is the grid graph's Laplacian, borders included: a replicated
        # border adds no difference.
        g = F.pad(u, (1, 1, 1, 1), mode="replicate")
        grid = g[..., :-2, 1:-1] + g[..., 2:, 1:-1] + g[..., 1:-1, :-2] + g[..., 1:-1, 2:]
        return bending.add_(grid.sub_(u, alpha=4), alpha=-36 * tension)

    def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * b).sum(dim=(2, 3), keepdim=True)

    known = 1 - mask
    x, w = image * known, known
    pyramid = [(x, w)]
    while min(x.shape[-2:]) > 8:
        x, w = F.avg_pool2d(x, 2, ceil_mode=True), F.avg_pool2d(w, 2, ceil_mode=True)
        pyramid.append((x, w))
    known_sum = w.sum(dim=(2, 3), keepdim=True)
    # The known pixels' mean colour to start from; mid-grey when nothing is known.
    fill = torch.where(known_sum > 0, x.sum(dim=(2, 3), keepdim=True) / known_sum.clamp_min(1e-8), 0.5)
    for level in reversed(range(len(pyramid))):
        x_l, w_l = pyramid[level]
        # Coarse cells at least half known count as known; at full size only fully known pixels do.
        hole = (w_l < (0.999 if level == 0 else 0.5)).to(image.dtype)
        fill = F.interpolate(fill, size=x_l.shape[-2:], mode="bilinear", align_corners=False)
        fill = hole * fill + (1 - hole) * x_l / w_l.clamp_min(1e-8)
        if min(x_l.shape[-2:]) < 3:
            continue
        residual = normal(fill).mul_(hole).neg_()
        direction, rr = residual.clone(), dot(residual, residual)
        for _ in range(min(max_iterations, fine_iterations << level)):
            step = normal(direction).mul_(hole)
            alpha = rr / dot(direction, step).clamp_min(1e-12)
            fill = fill.addcmul(alpha, direction)
            residual.addcmul_(alpha, step, value=-1)
            rr, rr_old = dot(residual, residual), rr
            direction.mul_(rr / rr_old.clamp_min(1e-12)).add_(residual)
    return fill  # known pixels were set from the image and every CG step is masked to the hole


def telea_fill(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The hole filled by the classical ``telea`` method (OpenCV fast marching), at 8 bits.

    Not differentiable and not exportable (it leaves torch), but a far better start than a smooth
    fill for a network that only has to correct it. ``image (B, 3, H, W)`` in [0, 1], ``mask
    (B, 1, H, W)`` (1 = hole) -> ``(B, 3, H, W)``.
    """
    from inpaintkit.models.classical import telea

    if torch.compiler.is_exporting():
        raise RuntimeError("the telea prefill runs OpenCV and cannot be exported; export a push-pull model")
    return telea()(image.detach().float(), mask.detach()).to(image.dtype)


def resize_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize to ``size`` (antialiased when shrinking); a no-op at the same size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = x.shape[-2] > size[0] or x.shape[-1] > size[1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """For inference: fold each BatchNorm that directly follows convolutions into them (weights
    scaled per output channel, the shift as a bias) and replace it by ``Identity``. The outputs
    are the same up to rounding, with one pass fewer over every feature map it touched. Folds in
    place, and only a model in eval mode (training needs the batch statistics)."""
    if model.training:
        raise ValueError("fold_batchnorm is for inference: call model.eval() first")
    for owner, name, convs in _batchnorm_sites(model):
        norm = getattr(owner, name)
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        shift = norm.bias - norm.running_mean * scale
        for i, conv in enumerate(convs):
            axis = 1 if isinstance(conv, nn.ConvTranspose2d) else 0
            shape = [1, 1, 1, 1]
            shape[axis] = -1
            bias = conv.bias * scale if conv.bias is not None else torch.zeros_like(scale)
            conv.weight = nn.Parameter(conv.weight.detach() * scale.detach().view(shape), requires_grad=False)
            conv.bias = nn.Parameter((bias + shift if i == 0 else bias).detach(), requires_grad=False)
        setattr(owner, name, nn.Identity())
    return model


def _batchnorm_sites(model: nn.Module):
    """``(owner, attribute, convolutions)`` for every BatchNorm2d (with running statistics and an
    affine part) whose input is a sum of the outputs of those ungrouped convolutions alone: the
    direct successor of a convolution in an ``nn.Sequential``, or what a module declares in its
    ``batchnorm_inputs``."""

    def plain(conv) -> bool:
        return isinstance(conv, nn.Conv2d | nn.ConvTranspose2d) and conv.groups == 1

    def foldable(norm) -> bool:
        return isinstance(norm, nn.BatchNorm2d) and norm.affine and norm.track_running_stats

    sites = []
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            sites += [(module, b, [module._modules[a]]) for a, b in zip(names, names[1:], strict=False)]
        for norm, convs in getattr(module, "batchnorm_inputs", {}).items():
            sites.append((module, norm, [module.get_submodule(c) for c in convs]))
    return [s for s in sites if foldable(getattr(s[0], s[1])) and all(map(plain, s[2]))]
