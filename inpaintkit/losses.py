"""Losses: pure functions of ``(pred, target, mask)`` plus :class:`Criterion`, a weighted sum that
reports every term. Images are ``(B, C, H, W)`` in [0, 1]; masks ``(B, 1, H, W)``, 1 = hole.

A recipe is a mapping of loss name to weight, or to ``{weight: w, option: value}`` for losses with
options, e.g. ``{l1: 100, edge: 25, adversarial: 1}`` or ``{hole_l1: {weight: 1, hole: 6, valid: 1}}``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from inpaintkit import metrics
from inpaintkit.errors import InpaintError
from inpaintkit.filters import sobel


def mse(pred, target, mask=None):
    return F.mse_loss(pred, target)


def l1(pred, target, mask=None):
    return F.l1_loss(pred, target)


def hole_l1(pred, target, mask, hole: float = 6.0, valid: float = 1.0):
    """L1 weighted separately inside (``hole``) and outside (``valid``) the hole; the defaults are
    Partial Convolutions' 6 and 1. Each part is averaged over the whole image, as in that paper."""
    diff = (pred - target).abs()
    return hole * (diff * mask).mean() + valid * (diff * (1 - mask)).mean()


def poisson(pred, target, mask=None):
    """Poisson negative log-likelihood with ``pred`` as the rate."""
    return F.poisson_nll_loss(pred, target, log_input=False, eps=1e-6)


def kl(pred, target, mask=None, eps: float = 1e-8):
    """KL(target || pred) with each image channel normalised to a distribution over its pixels."""
    p = (target + eps) / (target + eps).sum(dim=(-2, -1), keepdim=True)
    q = (pred + eps) / (pred + eps).sum(dim=(-2, -1), keepdim=True)
    return (p * (p.log() - q.log())).sum(dim=(-2, -1)).mean()


def cross_entropy(pred, target, mask=None, eps: float = 1e-6):
    """Pixel-wise binary cross-entropy, each intensity read as a probability."""
    return F.binary_cross_entropy(pred.clamp(eps, 1 - eps), target)


def edge(pred, target, mask=None):
    """L1 between Sobel gradient magnitudes (of the luma): penalises blurred or misplaced edges."""
    return F.l1_loss(sobel(pred, eps=1e-12), sobel(target, eps=1e-12))


def ssim(pred, target, mask=None):
    """1 - SSIM (Gaussian window 11, sigma 1.5)."""
    return 1 - metrics.ssim(pred, target).mean()


def tv(pred, target=None, mask=None):
    """Total variation: mean absolute difference between neighbouring pixels."""
    return (pred[..., 1:, :] - pred[..., :-1, :]).abs().mean() + (pred[..., 1:] - pred[..., :-1]).abs().mean()


def gram(features: torch.Tensor) -> torch.Tensor:
    b, c, h, w = features.shape
    f = features.flatten(2)  # (B, C, HW)
    return f @ f.transpose(1, 2) / (c * h * w)  # (B, C, C)


ADVERSARIAL_KINDS = ("nonsaturating", "vanilla", "lsgan", "hinge")


def generator_adversarial(fake_logits: torch.Tensor, kind: str = "nonsaturating") -> torch.Tensor:
    """The generator's adversarial term on the critic's logits for generated images."""
    if kind in ("nonsaturating", "vanilla"):
        return F.softplus(-fake_logits).mean()  # -log sigmoid(D(G(z)))
    if kind == "lsgan":
        return (fake_logits - 1).pow(2).mean()
    if kind == "hinge":
        return -fake_logits.mean()
    raise ValueError(f"unknown adversarial loss {kind!r}")


def discriminator_adversarial(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "nonsaturating"
) -> torch.Tensor:
    """The critic's term: real patches towards real, generated (detached) ones towards fake."""
    if kind in ("nonsaturating", "vanilla"):
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    if kind == "lsgan":
        return (real_logits - 1).pow(2).mean() + fake_logits.pow(2).mean()
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    raise ValueError(f"unknown adversarial loss {kind!r}")


def feature_matching(real_features: list[torch.Tensor], fake_features: list[torch.Tensor]) -> torch.Tensor:
    """L1 between the critic's intermediate features of real and generated images (pix2pixHD)."""
    return sum(F.l1_loss(f, r.detach()) for r, f in zip(real_features, fake_features, strict=True)) / len(real_features)


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al., 2018): squared gradient norm of the critic at real images."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


class VGGFeatures(nn.Module):
    """Frozen ImageNet VGG16 up to relu4_3 on ImageNet-normalised input (weights provisioned offline)."""

    def __init__(self):
        super().__init__()
        from inpaintkit.backbones import IMAGENET_MEAN, IMAGENET_STD, pretrained_trunk

        self.trunk = pretrained_trunk("vgg16").eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.trunk((x - self.mean) / self.std, depth=4)


# Losses computed from (pred, target, mask); the GAN terms live in the adversarial training step.
PIXEL_LOSSES = {
    "mse": mse, "l1": l1, "hole_l1": hole_l1, "poisson": poisson, "kl": kl, "cross_entropy": cross_entropy,
    "edge": edge, "ssim": ssim, "tv": tv,
}  # fmt: skip
FEATURE_LOSSES = ("perceptual", "style")
GAN_LOSSES = ("adversarial", "feature_matching", "r1")
LOSS_NAMES = (*PIXEL_LOSSES, *FEATURE_LOSSES, *GAN_LOSSES)


def parse_recipe(recipe: dict) -> dict[str, tuple[float, dict]]:
    """``{name: weight | {weight: w, **options}}`` -> ``{name: (weight, options)}``, validated."""
    parsed = {}
    for name, value in recipe.items():
        if name not in LOSS_NAMES:
            raise InpaintError(f"unknown loss {name!r}; choose from {', '.join(LOSS_NAMES)}")
        options = dict(value) if isinstance(value, dict) else {"weight": value}
        weight = options.pop("weight", None)
        if not isinstance(weight, int | float) or isinstance(weight, bool) or weight < 0:
            raise InpaintError(f"loss {name!r}: weight must be a non-negative number, got {weight!r}")
        if options and name not in ("hole_l1", "r1"):
            raise InpaintError(f"loss {name!r} takes no options ({', '.join(options)})")
        parsed[name] = (float(weight), options)
    if not any(w > 0 for w, _ in parsed.values()):
        raise InpaintError("the loss recipe has no term with a positive weight")
    return parsed


def hole_box(mask: torch.Tensor, grow: int = 0) -> torch.Tensor:
    """``(B, 1, H, W)``: 1 inside each mask's hole bounding box grown by ``grow`` px, else 0."""

    def span(line: torch.Tensor) -> torch.Tensor:  # (B, 1, N) -> 1 from the first hole pixel to the last
        inside = line.cummax(-1).values * line.flip(-1).cummax(-1).values.flip(-1)
        return F.max_pool1d(inside, 2 * grow + 1, stride=1, padding=grow) if grow else inside

    hole = (mask > 0.5).float()
    return span(hole.amax(3))[..., :, None] * span(hole.amax(2))[..., None, :]


class Criterion(nn.Module):
    """The weighted sum of a recipe's pixel and feature terms; returns ``(total, {name: value})``.

    Every term is returned unweighted for logging, so runs with different weights stay comparable.
    With ``crop`` >= 0 the terms see only the hole's bounding box grown by ``crop`` px (the
    self-attention GAN's 4 px context ring): outside it the prediction is replaced by the target and
    each term is divided by the box's share of the image, which makes L1 and MSE exact means over the
    boxes (SSIM, edge and VGG terms close to them).
    """

    def __init__(self, recipe: dict, crop: int = -1):
        super().__init__()
        self.recipe = parse_recipe(recipe)
        self.crop = crop
        uses_vgg = any(self.recipe.get(n, (0,))[0] > 0 for n in FEATURE_LOSSES)
        self.vgg = VGGFeatures() if uses_vgg else None

    def weight(self, name: str) -> float:
        return self.recipe.get(name, (0.0, {}))[0]

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor):
        share = 1.0
        if self.crop >= 0:
            box = hole_box(mask, self.crop).to(pred)
            pred, share = box * pred + (1 - box) * target, box.mean().clamp_min(1e-6)
        terms = {}
        for name, (_, options) in self.recipe.items():
            if name in PIXEL_LOSSES:
                terms[name] = PIXEL_LOSSES[name](pred, target, mask, **options)
        if self.vgg is not None:
            with torch.autocast(device_type=pred.device.type, enabled=False):
                fp, ft = self.vgg(pred.float()), self.vgg(target.float())
            if "perceptual" in self.recipe:
                terms["perceptual"] = sum(F.l1_loss(a, b) for a, b in zip(fp, ft, strict=True)) / len(fp)
            if "style" in self.recipe:
                terms["style"] = sum(F.l1_loss(gram(a), gram(b)) for a, b in zip(fp, ft, strict=True))
        terms = {name: value / share for name, value in terms.items()}
        total = sum(self.weight(name) * value for name, value in terms.items())
        return total, terms


class AdversarialLoss:
    """The GAN terms of a recipe in one object: the generator's adversarial term (plus the critic's
    feature matching) and the critic's own loss (plus the R1 penalty on real images).

    The critic judges an image given a condition (the mask when inpainting, the input photo for
    image-to-image tasks). Each call returns ``(weighted total, {name: unweighted term})``.
    """

    def __init__(self, recipe: dict, kind: str = "nonsaturating"):
        if kind not in ADVERSARIAL_KINDS:
            raise InpaintError(f"unknown adversarial loss {kind!r}; choose from {', '.join(ADVERSARIAL_KINDS)}")
        parsed = parse_recipe(recipe)
        self.kind = kind
        self.weights = {name: parsed.get(name, (0.0, {}))[0] for name in GAN_LOSSES}

    def generator(self, discriminator: nn.Module, fake: torch.Tensor, real: torch.Tensor, condition: torch.Tensor):
        fake_logits, fake_features = discriminator(fake, condition)
        terms = {"adversarial": generator_adversarial(fake_logits, self.kind)}
        if self.weights["feature_matching"] > 0:
            with torch.no_grad():
                _, real_features = discriminator(real, condition)
            terms["feature_matching"] = feature_matching(real_features, fake_features)
        return sum(self.weights[name] * value for name, value in terms.items()), terms

    def discriminator(self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, condition: torch.Tensor):
        """The critic's loss on ``real`` and (detached) ``fake`` images."""
        real = real.detach().requires_grad_(self.weights["r1"] > 0)
        real_logits, _ = discriminator(real, condition)
        fake_logits, _ = discriminator(fake.detach(), condition)
        total = discriminator_adversarial(real_logits, fake_logits, self.kind)
        terms = {}
        if self.weights["r1"] > 0:
            terms["r1"] = r1_penalty(real_logits, real)
            total = total + self.weights["r1"] / 2 * terms["r1"]
        terms["discriminator"] = total
        return total, terms
