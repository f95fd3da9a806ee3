"""The inpainting contract (inpaintkit.runner): no model sees a hole pixel on any path, every path
pads the same way, and models declare what callers need instead of being probed."""

import numpy as np
import pytest
import torch

import inpaintkit.evaluation
from inpaintkit.inference import apply_array, inpaint_array
from inpaintkit.io import read_image, write_image
from inpaintkit.losses import Criterion
from inpaintkit.models import Generator, build_untrained, count_parameters, list_models, load_weights, save_model
from inpaintkit.tasks import Task
from inpaintkit.training import InpaintModule
from inpaintkit.training.optim import OptimizerRecipe, SchedulerRecipe

from .conftest import run_cli


def bright_in_hole(size: int = 64, seed: int = 0):
    """A photo, its hole, and the same photo with a bright pattern painted inside the hole only."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    photo = np.stack([x * 3, y * 2, (x + y) * 2], axis=2).astype(np.uint8) + rng.integers(0, 30, (size, size, 3))
    photo = photo.astype(np.uint8)
    hole = np.zeros((size, size), bool)
    hole[size // 4 : size // 2, size // 3 : 3 * size // 4] = True
    bright = photo.copy()
    bright[hole] = np.where((x + y)[hole, None] % 4 < 2, 255, 200).astype(np.uint8)
    return photo, bright, hole


class Spy(Generator):
    """Records the largest value it was shown inside the hole."""

    size_multiple = 8

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 3, 3, padding=1)
        self.seen_in_hole: list[float] = []

    def forward(self, image, mask):
        self.seen_in_hole.append(float((image * mask).abs().max()))
        return torch.sigmoid(self.conv(torch.cat([image, mask], 1)))


@pytest.mark.parametrize("model", [m for m in list_models()], ids=lambda m: m.name)
def test_no_registered_model_sees_the_hole(model):
    photo, bright, hole = bright_in_hole(64)
    torch.manual_seed(0)
    net = build_untrained(model.name, {"use_mask": False} if model.name == "conv-autoencoder" else {}).eval()
    np.testing.assert_array_equal(inpaint_array(net, photo, hole), inpaint_array(net, bright, hole))


def test_no_hole_pixel_reaches_a_model_in_training(monkeypatch):
    photo, bright, hole = bright_in_hole(32)
    spy = Spy()
    module = InpaintModule(
        spy, Criterion({"l1": 1.0}), Task("inpaint"), OptimizerRecipe(), SchedulerRecipe(), recipe={}
    )
    image = torch.from_numpy(bright).permute(2, 0, 1).float()[None] / 255
    mask = torch.from_numpy(hole).float()[None, None]
    batch = [image, image, mask]
    with pytest.warns(UserWarning):  # self.log outside a trainer
        module.training_step(batch, 0)
    monkeypatch.setattr(type(module), "trainer", property(lambda self: type("T", (), {"is_global_zero": False})()))
    with pytest.warns(UserWarning):
        module.validation_step(batch, 0)
    assert len(spy.seen_in_hole) == 2 and max(spy.seen_in_hole) == 0


def test_no_hole_pixel_reaches_a_model_in_the_bench(monkeypatch, tmp_path):
    photo, bright, hole = bright_in_hole(64)
    write_image(tmp_path / "data" / "bright.png", bright)
    spy = Spy().eval()
    monkeypatch.setattr(inpaintkit.evaluation, "load_model", lambda name: spy)
    monkeypatch.setattr(inpaintkit.evaluation, "protocol_bins", lambda spec, seed: [("hole", lambda i, h, w: hole)])
    none = inpaintkit.evaluation.FeatureMetrics(learned=False)
    result, _ = inpaintkit.evaluation.run_bench(["spy"], tmp_path / "data", "hole", size=64, progress=False,
                                                features=none)  # fmt: skip
    assert len(result.per_image) == 1 and spy.seen_in_hole == [0.0]


def test_task_bench_and_apply_agree_on_an_odd_sized_photo(tmp_path):
    torch.manual_seed(0)
    model = build_untrained("unet", {"width": 4, "out_channels": 1})
    assert model.size_multiple == 8
    weights = save_model(model, tmp_path / "edges.safetensors", {"task": "sobel"})
    photo, _, _ = bright_in_hole(37)
    write_image(tmp_path / "data" / "odd.png", photo)
    _, grid = inpaintkit.evaluation.run_task_bench([str(weights)], tmp_path / "data", "sobel", size=37, progress=False)
    result = run_cli("apply", "--model", weights, tmp_path / "data" / "odd.png", "-o", tmp_path / "applied.png")
    assert result.returncode == 0, result.stderr
    applied = read_image(tmp_path / "applied.png")
    assert applied.shape == (37, 37, 3)
    np.testing.assert_array_equal(grid[0][2], applied)  # input, target, then the model's output
    np.testing.assert_array_equal(apply_array(load_weights(weights), photo), applied[:, :, 0])


def test_declared_parameter_counts_are_the_built_ones():
    for info in list_models():
        assert count_parameters(build_untrained(info.name, {})) == info.parameters, info.name
        assert info.learned == (info.parameters > 0) and info.description


def test_listing_models_builds_no_network(monkeypatch):
    from typer.testing import CliRunner

    from inpaintkit.cli import app

    def refuse(*args, **kwargs):
        raise AssertionError("a network was built")

    monkeypatch.setattr(torch.nn.Module, "__init__", refuse)
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert "pix2pix" in result.output and "54,415,555" in result.output


def test_a_model_built_from_its_class_saves_and_reloads(tmp_path):
    from inpaintkit.models.ffc import FFCGenerator
    from inpaintkit.models.unet import UNet

    for model in (UNet(width=4), FFCGenerator(width=8, blocks=1, prefill="push-pull")):
        model.eval()
        again = load_weights(save_model(model, tmp_path / "m.safetensors"))
        assert type(again) is type(model) and again.config["kwargs"] == model.config["kwargs"]
        image, mask = torch.rand(1, 3, 32, 40), torch.zeros(1, 1, 32, 40)
        with torch.no_grad():
            torch.testing.assert_close(again(image, mask), model(image, mask))
