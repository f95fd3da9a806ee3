import numpy as np
import pytest
import torch

from inpaintkit.errors import InpaintError
from inpaintkit.tasks import SOBEL_SCALE, Task, apply_kernel, random_kernel, sobel_magnitude

from .conftest import run_cli, shared


def test_sobel_of_a_step_edge():
    image = torch.zeros(3, 8, 8)
    image[:, :, 4:] = 1.0  # a vertical step, white on the right
    mag = sobel_magnitude(image)
    assert mag.shape == (1, 8, 8)
    expected = 4 * SOBEL_SCALE  # 1 + 2 + 1, scaled into [0, 1]
    assert mag[0, :, 3].tolist() == pytest.approx([expected] * 8, rel=1e-5)
    assert mag[0, :, 4].tolist() == pytest.approx([expected] * 8, rel=1e-5)
    assert mag[0, :, :3].abs().max() == 0 and mag[0, :, 5:].abs().max() == 0
    blurred = sobel_magnitude(image, blur=1.0)
    assert blurred[0, :, 2].max() > 0  # the blur spreads the edge


def test_a_delta_through_the_fixed_kernel_gives_the_kernel():
    kernel = random_kernel(seed=3)
    assert torch.equal(kernel, random_kernel(seed=3)) and not torch.equal(kernel, random_kernel(seed=4))
    delta = torch.zeros(3, 11, 11)
    delta[:, 5, 5] = 1.0
    out = apply_kernel(delta, kernel)
    window = out[0, 3:8, 3:8]
    # Convolution flips the kernel (conv2d is correlation: the delta's response is the kernel
    # mirrored); negative taps are clipped at 0.
    torch.testing.assert_close(window, kernel.flip(0, 1).clamp(0, 1))
    given = Task("filter", kernel=[[0, 0, 0], [0, 1, 0], [0, 0, 0]])
    image = torch.rand(3, 6, 6)
    torch.testing.assert_close(given.target_of(image), image)


def test_denoise_adds_noise_of_the_given_sigma():
    task = Task("denoise", sigma=[0.1, 0.1])
    image = torch.full((3, 64, 64), 0.5)
    noisy, target, mask = task.make(image, torch.zeros(1, 64, 64), np.random.default_rng(0))
    assert torch.equal(target, image) and mask.sum() == 0
    assert (noisy - image).std().item() == pytest.approx(0.1, rel=0.05)


def test_task_shapes_and_errors():
    image, mask = torch.rand(3, 16, 16), torch.ones(1, 16, 16)
    for name in ("inpaint", "outpaint"):
        source, target, m = Task(name).make(image, mask, np.random.default_rng(0))
        assert torch.equal(m, mask) and Task(name).composite
    source, target, m = Task("sobel").make(image, mask, np.random.default_rng(0))
    assert target.shape == (1, 16, 16) and m.sum() == 0 and Task("sobel").out_channels == 1
    with pytest.raises(InpaintError, match="unknown task"):
        Task("deblur")
    with pytest.raises(InpaintError, match="odd side"):
        Task("filter", kernel=[[1, 0], [0, 1]])


def test_sobel_bench_against_the_exact_filter(tmp_path):
    from inpaintkit.models import create_model, save_model

    data = shared("bsds500", "test")
    torch.manual_seed(0)
    model = create_model("conv-autoencoder", use_mask=False, out_channels=1)
    weights = save_model(model, tmp_path / "sobel.safetensors", {"recipe": {"task": "sobel", "task_args": {}}})
    result = run_cli(
        "bench", "--task", "sobel", "--methods", weights, "--data", data, "--n", "2", "--out", tmp_path / "B"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    md = (tmp_path / "B" / "results.md").read_text()
    assert "PSNR" in md and "sobel" in md and "exact target" in md


def test_bundled_sobel_model_reproduces_the_filter_on_real_photos(tmp_path):
    """The shipped small Sobel weights, through the CLI, on held-out BSDS500 test photos: the
    output matches the exact filter to the quality the issue asks (at least 30.1 dB, SSIM 0.946)."""
    from PIL import Image

    from inpaintkit.data import fit_square
    from inpaintkit.inference import to_tensor
    from inpaintkit.io import read_image
    from inpaintkit.loading import load_model
    from inpaintkit.metrics import psnr, ssim

    model = load_model("sobel")
    assert sum(p.numel() for p in model.parameters()) <= 1_000_000
    photos = sorted(shared("bsds500", "test").glob("*.jpg"))[:6]
    images = torch.cat([to_tensor(fit_square(read_image(p), 128)) for p in photos])
    with torch.no_grad():
        pred = model(images, torch.zeros_like(images[:, :1]))
    target = sobel_magnitude(images)
    assert psnr(pred, target).mean() >= 30.1 and ssim(pred, target).mean() >= 0.946
    out = tmp_path / "edges"
    result = run_cli("apply", "--model", "sobel", photos[0], "-o", out / "edge.png")
    assert result.returncode == 0, result.stderr[-2000:]
    edges = np.asarray(Image.open(out / "edge.png"))
    assert edges.ndim == 2 and edges.std() > 0
    # As an inpainter it would fill holes with edge magnitudes: refused in one line, nothing written.
    Image.fromarray(np.ones(read_image(photos[0]).shape[:2], bool)).save(tmp_path / "m.png")
    result = run_cli("inpaint", photos[0], "--mask", tmp_path / "m.png", "--model", "sobel", "-o", tmp_path / "x.png")
    assert result.returncode != 0 and "inpaintkit apply" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("name, at_least", [("filter", 38.0), ("denoise", 24.0)])
def test_bundled_filter_and_denoise_models_on_real_photos(name, at_least):
    """The shipped filter and denoise U-Nets on held-out BSDS500 test photos at 128 px, against the
    exact filter or the clean photo (README: 40.02 and 24.60 dB on all 200), and offered by the app."""
    from inpaintkit.api import Inpainter
    from inpaintkit.data import fit_square
    from inpaintkit.inference import to_tensor
    from inpaintkit.io import read_image
    from inpaintkit.loading import load_model
    from inpaintkit.metrics import psnr

    model = load_model(name)
    assert model.task == name and sum(p.numel() for p in model.parameters()) <= 1_000_000
    task = Task(name)  # kernel seed 0, sigma 25/255: what the recipes in configs/ train
    rng = np.random.default_rng(0)
    pairs = []
    for path in sorted(shared("bsds500", "test").glob("*.jpg"))[:6]:
        image = to_tensor(fit_square(read_image(path), 128))[0]
        source, target, _ = task.make(image, torch.zeros_like(image[:1]), rng)
        pairs.append((source, target))
    sources, targets = torch.stack([s for s, _ in pairs]), torch.stack([t for _, t in pairs])
    with torch.no_grad():
        pred = model(sources, torch.zeros_like(sources[:, :1])).clamp(0, 1)
    assert psnr(pred, targets).mean() >= at_least
    if name == "denoise":
        assert psnr(pred, targets).mean() > psnr(sources.clamp(0, 1), targets).mean() + 3  # it removes noise
    assert name in Inpainter().image_tasks
