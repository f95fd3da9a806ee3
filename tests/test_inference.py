import numpy as np
import pytest
import torch
from PIL import Image

from inpaintkit.errors import InpaintError
from inpaintkit.export import OnnxModel, export_onnx, with_backend
from inpaintkit.inference import (
    InpaintOptions,
    choose_strategy,
    feather_weights,
    hole_windows,
    inpaint_array,
    select_device,
)
from inpaintkit.io import read_image
from inpaintkit.models import Generator, create_model

from .conftest import run_cli, shared


@pytest.fixture(scope="module")
def big_photo():
    """A real high-resolution photo: a BSDS image upscaled 6x (2886 x 1926, 5.6 megapixels)."""
    rgb = read_image(shared("bsds500", "test", "100007.jpg"))
    return np.asarray(Image.fromarray(rgb).resize((rgb.shape[1] * 6, rgb.shape[0] * 6), Image.Resampling.BICUBIC))


class Recorder(Generator):
    """A tiny network that records the input sizes it is asked to fill."""

    size_multiple = 8

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 3, 3, padding=1)
        self.sizes = []

    def forward(self, image, mask):
        self.sizes.append(tuple(image.shape[-2:]))
        return torch.sigmoid(self.conv(torch.cat([image, mask], 1)))


def small_hole(shape, top, left, side):
    hole = np.zeros(shape[:2], bool)
    hole[top : top + side, left : left + side] = True
    return hole


@pytest.mark.parametrize("strategy", ["original", "resize", "crop", "auto"])
def test_strategies_keep_known_pixels_and_bound_the_model_input(big_photo, strategy):
    hole = small_hole(big_photo.shape, 900, 1200, 120)
    hole[100:140, 100:300] = True  # a second, distant hole
    model = Recorder().eval()
    out = inpaint_array(model, big_photo, hole, InpaintOptions(strategy=strategy, max_side=512))
    np.testing.assert_array_equal(out[~hole], big_photo[~hole])
    assert (out[hole] != big_photo[hole]).any()
    if strategy != "original":
        assert max(max(s) for s in model.sizes) <= 512 + 7  # at most max_side, plus padding to 8
    if strategy in ("crop", "auto"):
        assert len(model.sizes) == 2 and max(s[0] * s[1] for s in model.sizes) < 0.05 * hole.size


def test_auto_strategy_choice():
    assert choose_strategy(np.zeros((500, 800), bool), 1024) == "original"
    assert choose_strategy(small_hole((3000, 4000), 100, 100, 50), 1024) == "crop"
    wide = np.zeros((3000, 4000), bool)
    wide[:, 1000:3000] = True
    assert choose_strategy(wide, 1024) == "resize"


def test_hole_windows_merge_overlaps():
    hole = small_hole((400, 400), 100, 100, 20) | small_hole((400, 400), 130, 130, 20)
    assert len(hole_windows(hole)) == 1
    far = small_hole((400, 400), 10, 10, 5) | small_hole((400, 400), 380, 380, 5)
    assert len(hole_windows(far, min_margin=16)) == 2


def test_feather_only_touches_the_hole():
    hole = small_hole((40, 40), 10, 10, 20)
    w = feather_weights(hole, 4)
    assert (w[~hole] == 0).all() and w[20, 20] == 1 and 0 < w[10, 15] < 1
    image = np.full((40, 40, 3), 100, np.uint8)
    model = create_model("mean-fill")
    out = inpaint_array(model, image, hole, InpaintOptions(feather=4))
    np.testing.assert_array_equal(out[~hole], image[~hole])


def test_unknown_strategy():
    with pytest.raises(InpaintError, match="unknown strategy"):
        inpaint_array(create_model("telea"), np.zeros((8, 8, 3), np.uint8), np.ones((8, 8), bool), InpaintOptions("x"))


@pytest.mark.parametrize("name, kwargs", [("ffc", {"prefill": "none", "blocks": 2}), ("unet", {"width": 16})])
def test_onnx_matches_torch_on_real_photos(name, kwargs, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, **kwargs).eval()
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    onnx_model = OnnxModel(path)
    assert onnx_model.size_multiple == model.size_multiple
    for file in sorted(shared("bsds500", "test").glob("*.jpg"))[:2]:
        rgb = read_image(file)  # 481x321 or 321x481: padded to multiples of 8 inside
        hole = small_hole(rgb.shape, 100, 100, 80)
        from inpaintkit.inference import mask_to_tensor, to_tensor

        image, mask = to_tensor(rgb), mask_to_tensor(hole)
        from inpaintkit.runner import pad_to_multiple

        x, m = pad_to_multiple(image * (1 - mask), 8), pad_to_multiple(mask, 8)
        with torch.no_grad():
            reference = model(x, m)
        assert (onnx_model(x, m) - reference).abs().max().item() < 1e-4
        a = inpaint_array(model, rgb, hole)
        b = inpaint_array(onnx_model, rgb, hole)
        assert np.abs(a.astype(int) - b).max() <= 1  # one 8-bit step at most, from rounding


def test_backend_selection(tmp_path):
    model = create_model("conv-autoencoder").eval()
    assert with_backend(model, "torch") is model
    assert with_backend(model, "auto", cache=tmp_path) is model  # nothing exported yet: torch
    assert isinstance(with_backend(model, "onnx", cache=tmp_path), OnnxModel)
    assert len(list(tmp_path.glob("*.onnx"))) == 1
    assert isinstance(with_backend(model, "auto", cache=tmp_path), OnnxModel)  # the cached export
    assert with_backend(create_model("telea"), "auto") is not None
    with pytest.raises(InpaintError, match="classical"):
        with_backend(create_model("telea"), "onnx")


def test_cli_export_and_onnx_inpaint(tmp_path):
    from inpaintkit.models import save_model

    torch.manual_seed(0)
    weights = save_model(create_model("unet", width=8), tmp_path / "m.safetensors")
    result = run_cli("export", "--model", weights, "-o", tmp_path / "m.onnx")
    assert result.returncode == 0, result.stderr[-2000:]
    photo = shared("bsds500", "test", "100007.jpg")
    hole = small_hole((321, 481), 100, 100, 60)
    Image.fromarray(hole).save(tmp_path / "mask.png")
    outs = []
    for backend in ("torch", "onnx"):
        out = tmp_path / f"{backend}.png"
        result = run_cli("inpaint", photo, "--mask", tmp_path / "mask.png", "--model", weights,
                         "--backend", backend, "-o", out)  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        outs.append(read_image(out).astype(int))
    assert np.abs(outs[0] - outs[1]).max() <= 1
    result = run_cli("export", "--model", "telea", "-o", tmp_path / "t.onnx")
    assert result.returncode == 2 and "cannot be exported" in result.stderr


@pytest.mark.parametrize("name", ["ffc", "unet", "encoder-decoder"])
def test_serving_folds_batchnorm_without_changing_the_output(name):
    torch.manual_seed(0)
    model = create_model(name)
    with torch.no_grad():  # non-trivial statistics and affine parameters, as after training
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.2, 0.2)
    model.eval()
    size = max(64, model.size_multiple)
    image, mask = torch.rand(2, 3, size, size), (torch.rand(2, 1, size, size) > 0.6).float()
    with torch.no_grad():
        before = model(image, mask)
        served = select_device(model, "cpu")
        after = served(image, mask)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in served.modules())
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-4)


def test_batchnorm_is_not_folded_in_training_mode():
    from inpaintkit.models.layers import fold_batchnorm

    with pytest.raises(ValueError, match="eval"):
        fold_batchnorm(create_model("unet").train())


def test_a_served_model_in_bfloat16_convolves_in_bfloat16_and_fills_like_float32(monkeypatch):
    """The bundled default on a real photo: with ``autocast_dtype`` set (as serving sets it where
    the device has bfloat16 units; set here so any CPU runs it) its convolutions pass bfloat16
    along, while its texture blur keeps float32, and the fill stays within a few 8-bit levels."""
    import inpaintkit.models.textured as textured
    from inpaintkit.loading import load_model

    rgb = read_image(shared("bsds500", "test", "100007.jpg"))[:128, :160]
    hole = small_hole(rgb.shape, 30, 40, 60)
    model = select_device(load_model("default"), "cpu")
    model.autocast_dtype = None
    reference = inpaint_array(model, rgb, hole).astype(int)

    conv_inputs, blurred, blur = set(), [], textured.gaussian_blur
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_pre_hook(lambda module, args: conv_inputs.add(args[0].dtype))
    monkeypatch.setattr(
        textured,
        "gaussian_blur",
        lambda x, sigma: blurred.append((x.dtype, torch.is_autocast_enabled("cpu"))) or blur(x, sigma),
    )
    model.autocast_dtype = torch.bfloat16
    fill = inpaint_array(model, rgb, hole).astype(int)
    assert torch.bfloat16 in conv_inputs
    assert blurred and set(blurred) == {(torch.float32, False)}
    assert (fill[~hole] == rgb[~hole]).all()
    diff = np.abs(fill - reference)[hole]
    assert 0 < diff.max() <= 4 and diff.mean() < 0.5, (diff.max(), diff.mean())


def test_full_float32_turns_tf32_off_on_cuda_only_and_restores_it():
    """The bench's numbers on a GPU are the CPU's only with TF32 off; the process's settings return after."""
    from inpaintkit.inference import full_float32

    def settings():
        return torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision

    before = settings()
    with full_float32("cpu"):
        assert settings() == before
    with pytest.raises(RuntimeError), full_float32("cuda"):
        assert settings() == ("ieee", "ieee")
        raise RuntimeError("a bench that fails")
    assert settings() == before


def test_bfloat16_counts_as_native_on_x86_only_with_avx512_bf16_or_amx(monkeypatch):
    """oneDNN's own check admits any AVX512 CPU, where bfloat16 is emulated and slower than float32:
    serving and the bench's bf16-mixed need the instructions themselves."""
    import platform

    from inpaintkit.inference import native_bfloat16

    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    for avx512_bf16, amx, expected in [(False, False, False), (True, False, True), (False, True, True)]:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert native_bfloat16("cpu") is expected, (avx512_bf16, amx)
    assert native_bfloat16("mps") is False
