import math

import pytest
import torch

from inpaintkit import losses
from inpaintkit.errors import InpaintError


@pytest.fixture
def pair():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 32, 32) * 0.8 + 0.1
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1  # a quarter of the image
    return target, mask


def test_mse_and_l1_of_a_constant_offset(pair):
    target, _ = pair
    pred = target + 0.1
    assert losses.mse(pred, target).item() == pytest.approx(0.01, rel=1e-4)
    assert losses.l1(pred, target).item() == pytest.approx(0.1, rel=1e-4)


def test_hole_l1_weights_inside_and_outside(pair):
    target, mask = pair
    pred = target + 0.1 * mask  # wrong only inside the hole
    assert losses.hole_l1(pred, target, mask, hole=6, valid=1).item() == pytest.approx(6 * 0.1 * 0.25, rel=1e-4)
    assert losses.hole_l1(pred, target, mask, hole=0, valid=1).item() == pytest.approx(0.0, abs=1e-7)
    pred = target + 0.1 * (1 - mask)  # wrong only outside
    assert losses.hole_l1(pred, target, mask, hole=6, valid=1).item() == pytest.approx(0.1 * 0.75, rel=1e-4)


def test_poisson_kl_and_cross_entropy_are_minimal_at_the_target(pair):
    target, _ = pair
    other = (target + 0.2).clamp(0, 1)
    assert losses.poisson(target, target) < losses.poisson(other, target)
    assert losses.kl(target, target).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.kl(other, target) > 1e-4
    expected = (target - target * torch.log(target)).mean()  # rate - y log(rate)
    assert losses.poisson(target, target).item() == pytest.approx(expected.item(), rel=1e-3)
    binary = (target > 0.5).float()
    assert losses.cross_entropy(binary, binary).item() < 1e-4
    assert losses.cross_entropy(torch.full_like(binary, 0.5), binary).item() == pytest.approx(math.log(2), rel=1e-4)


def test_sobel_of_a_step_edge():
    image = torch.zeros(1, 3, 8, 8)
    image[..., 4:] = 1.0  # vertical step between columns 3 and 4
    mag = losses.sobel(image)[0, 0]
    assert mag[:, 3].tolist() == pytest.approx([4.0] * 8, rel=1e-4)  # 1 + 2 + 1
    assert mag[:, 4].tolist() == pytest.approx([4.0] * 8, rel=1e-4)
    assert mag[:, :3].abs().max() < 1e-5 and mag[:, 5:].abs().max() < 1e-5
    assert losses.edge(image, image).item() < 1e-5
    assert losses.edge(torch.zeros_like(image), image).item() == pytest.approx(4 * 2 / 8, rel=1e-3)


def test_ssim_and_tv(pair):
    target, _ = pair
    assert losses.ssim(target, target).item() == pytest.approx(0.0, abs=1e-5)
    assert losses.ssim(torch.rand_like(target), target) > 0.5
    assert losses.tv(torch.full((1, 1, 4, 4), 0.3)).item() == 0
    checker = (torch.arange(4)[None, :] + torch.arange(4)[:, None]) % 2
    assert losses.tv(checker.float()[None, None]).item() == pytest.approx(2.0)


@pytest.mark.parametrize(
    "kind, g_zero, d_zero",
    [("nonsaturating", math.log(2), 2 * math.log(2)), ("lsgan", 1.0, 1.0), ("hinge", 0.0, 2.0)],
)
def test_adversarial_terms_at_zero_logits(kind, g_zero, d_zero):
    zero = torch.zeros(4, 1, 6, 6)
    assert losses.generator_adversarial(zero, kind).item() == pytest.approx(g_zero, rel=1e-5)
    assert losses.discriminator_adversarial(zero, zero, kind).item() == pytest.approx(d_zero, rel=1e-5)
    confident = torch.full_like(zero, 5.0)  # the critic says "real" with conviction
    assert losses.generator_adversarial(confident, kind) < losses.generator_adversarial(-confident, kind)
    assert losses.discriminator_adversarial(confident, -confident, kind) < losses.discriminator_adversarial(
        -confident, confident, kind
    )


def test_feature_matching_and_r1():
    feats = [torch.rand(2, 4, 8, 8), torch.rand(2, 8, 4, 4)]
    assert losses.feature_matching(feats, feats).item() == 0
    shifted = [f + 0.5 for f in feats]
    assert losses.feature_matching(feats, shifted).item() == pytest.approx(0.5, rel=1e-5)
    x = torch.rand(3, 2, 4, 4, requires_grad=True)
    logits = (x**2).sum(dim=(1, 2, 3))  # gradient 2x
    expected = (2 * x).pow(2).flatten(1).sum(1).mean()
    assert losses.r1_penalty(logits, x).item() == pytest.approx(expected.item(), rel=1e-5)


def test_perceptual_and_style_use_imagenet_vgg(pair, imagenet_weights):
    target, mask = pair
    crit = losses.Criterion({"perceptual": 1.0, "style": 1.0})
    total, terms = crit(target, target, mask)
    assert terms["perceptual"].item() == 0 and terms["style"].item() == 0
    blurred = torch.nn.functional.avg_pool2d(target, 3, 1, 1)
    total, terms = crit(blurred, target, mask)
    assert terms["perceptual"] > 0 and terms["style"] > 0
    assert total.item() == pytest.approx((terms["perceptual"] + terms["style"]).item(), rel=1e-5)


def test_criterion_weights_and_reports_every_term(pair):
    target, mask = pair
    crit = losses.Criterion({"l1": 100, "edge": 25, "hole_l1": {"weight": 2, "hole": 6, "valid": 0}})
    pred = target + 0.1
    total, terms = crit(pred, target, mask)
    assert set(terms) == {"l1", "edge", "hole_l1"}
    expected = 100 * terms["l1"] + 25 * terms["edge"] + 2 * terms["hole_l1"]
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)
    assert terms["l1"].item() == pytest.approx(0.1, rel=1e-4)  # terms are reported unweighted


@pytest.mark.parametrize(
    "recipe, message",
    [
        ({"l2": 1}, "unknown loss"),
        ({"l1": -1}, "non-negative"),
        ({"l1": "a lot"}, "non-negative"),
        ({"l1": {"weight": 1, "hole": 3}}, "takes no options"),
        ({"l1": 0}, "no term with a positive weight"),
    ],
)
def test_bad_recipes(recipe, message):
    with pytest.raises(InpaintError, match=message):
        losses.parse_recipe(recipe)


def test_the_loss_can_see_only_the_hole_box_and_its_ring():
    from inpaintkit.losses import Criterion, hole_box

    torch.manual_seed(0)
    target, pred = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[0, :, 4:8, 10:14] = 1
    mask[0, :, 12, 20] = 1  # a second hole: the box spans both
    mask[1, :, 20:30, 2:6] = 1
    box = hole_box(mask, 2)
    assert box[0, 0].nonzero().min(0).values.tolist() == [2, 8] and box[0, 0].nonzero().max(0).values.tolist() == [
        14,
        22,
    ]
    assert box[1, 0].sum() == 14 * 8  # rows 18-31, columns 0-7 (clipped at the border)
    crop = Criterion({"l1": 1.0, "mse": 1.0}, crop=2)
    _, terms = crop(pred, target, mask)
    inside = box.expand_as(pred).bool()
    assert torch.isclose(terms["l1"], (pred - target)[inside].abs().mean())
    assert torch.isclose(terms["mse"], (pred - target)[inside].square().mean())
    whole = Criterion({"l1": 1.0})(pred, target, mask)[1]["l1"]
    assert torch.isclose(whole, (pred - target).abs().mean()) and not torch.isclose(whole, terms["l1"])
    outside = pred.clone()
    outside[~inside] = 0  # what happens away from the boxes does not count
    assert torch.isclose(crop(outside, target, mask)[1]["l1"], terms["l1"])
