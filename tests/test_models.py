import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from inpaintkit.errors import InpaintError
from inpaintkit.models import (
    Generator,
    count_parameters,
    create_discriminator,
    create_model,
    discriminator_names,
    load_weights,
    model_names,
    save_model,
)

from .conftest import run_cli

LEARNED = [
    n
    for n in model_names()
    if count_parameters(create_model(n, **({"pretrained": False} if n.endswith("alexnet") else {}))) > 0
]


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, **({"pretrained": False} if name == "context-encoder-alexnet" else {}))


def test_every_learned_family_is_registered():
    for name in ("encoder-decoder", "unet", "context-encoder", "context-encoder-alexnet", "pix2pix",
                 "attention-unet", "conv-autoencoder", "ffc", "ffc-lama"):  # fmt: skip
        assert name in LEARNED


@pytest.mark.parametrize("name", LEARNED)
def test_forward_backward_and_round_trip(name, tmp_path):
    model = build(name).train()
    m = model.size_multiple
    h, w = (m, 2 * m) if m >= 64 else (3 * m * max(1, 16 // m), 5 * m * max(1, 16 // m))  # non-square
    image, mask = torch.rand(2, 3, h, w), torch.zeros(2, 1, h, w)
    mask[:, :, h // 4 : h // 2, w // 4 : w // 2] = 1
    out = model(image, mask)
    assert out.shape == (2, 3, h, w) and torch.isfinite(out).all()
    assert 0 <= out.min() and out.max() <= 1
    out.mean().backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    dead = [n for n, p in trainable if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not dead, dead
    model.eval()
    path = save_model(model, tmp_path / "m.safetensors", {"note": "test"})
    again = load_weights(path)
    assert again.card["note"] == "test" and again.card["model"] == name
    with torch.no_grad():
        torch.testing.assert_close(again(image, mask), model(image, mask))


@pytest.mark.parametrize("name", ["unet", "ffc", "encoder-decoder"])
def test_odd_sizes_through_padding(name):
    from inpaintkit.runner import predict

    model = build(name).eval()
    image, mask = torch.rand(1, 3, 37, 51), torch.zeros(1, 1, 37, 51)
    mask[..., 10:20, 10:30] = 1
    out = predict(model, image, mask)
    assert out.shape == image.shape
    torch.testing.assert_close(out * (1 - mask), image * (1 - mask))


def test_channel_wise_fc_is_trained():
    model = build("context-encoder")
    fc = model.bottleneck
    assert isinstance(fc.weight, torch.nn.Parameter)
    assert any(p is fc.weight for p in model.parameters())
    before = fc.weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    image = torch.rand(2, 3, 128, 128)
    model(image, torch.ones(2, 1, 128, 128)).sub(image).pow(2).mean().backward()
    opt.step()
    assert not torch.equal(before, fc.weight)


def test_context_encoder_alexnet_starts_from_imagenet(imagenet_weights):
    from inpaintkit.backbones import pretrained_trunk

    model = create_model("context-encoder-alexnet")
    alexnet = pretrained_trunk("alexnet")
    torch.testing.assert_close(model.encoder[0].weight[:, :3], alexnet.features[0].weight)
    assert (model.encoder[0].weight[:, 3] == 0).all()  # the mask channel starts silent
    assert not any(p.requires_grad for p in model.encoder.parameters())
    tuned = create_model("context-encoder-alexnet", freeze_encoder=False)
    assert all(p.requires_grad for p in tuned.encoder.parameters())


def test_fourier_blocks_see_the_whole_image():
    from inpaintkit.models.layers import FFC

    torch.manual_seed(0)
    layer = FFC(32).eval()
    x = torch.randn(1, 32, 32, 32)
    x2 = x.clone()
    x2[..., 0, 0] += 10  # one pixel in the top-left corner
    diff = (layer(x2) - layer(x)).abs()
    assert diff[..., 16:, 16:].max() > 1e-3  # the far corner responds: a global receptive field
    conv = torch.nn.Conv2d(32, 32, 3, padding=1)
    assert (conv(x2) - conv(x))[..., 16:, 16:].abs().max() == 0  # unlike a plain convolution


def test_parameter_counts_match_the_references():
    assert 0.7e6 < count_parameters(build("encoder-decoder")) < 0.8e6
    assert 2.6e6 < count_parameters(build("unet")) < 2.8e6
    assert 26e6 < count_parameters(build("ffc-lama")) < 28e6  # LaMa-Fourier: 27M
    assert count_parameters(build("conv-autoencoder")) < 12_000
    assert 54e6 < count_parameters(build("pix2pix")) < 55e6


def test_pix2pix_dropout_in_three_inner_decoder_layers():
    model = build("pix2pix")
    with_dropout = [any(isinstance(m, torch.nn.Dropout) for m in layer) for layer in model.up]
    assert with_dropout == [False, True, True, True, False, False, False, False]


@pytest.mark.parametrize("name", discriminator_names())
def test_discriminators(name):
    d = create_discriminator(name)
    logits, features = d(torch.rand(2, 3, 128, 128), torch.zeros(2, 1, 128, 128))
    assert logits.shape[:2] == (2, 1) and len(features) >= 4
    if name == "patchgan-light":
        assert 10_000 < count_parameters(d) < 100_000
    sn = create_discriminator(name, spectral=True)
    assert any("weight_orig" in n for n, _ in sn.named_parameters())


def test_bad_weights_files_are_refused(tmp_path):
    model = build("unet")
    path = save_model(model, tmp_path / "ok.safetensors")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["head.weight"] = torch.zeros(1, 1, 1, 1)
    import json

    from inpaintkit.models import read_card

    save_file(state, str(tmp_path / "bad.safetensors"), metadata={"inpaintkit": json.dumps(read_card(path))})
    with pytest.raises(InpaintError, match="shape"):
        load_weights(tmp_path / "bad.safetensors")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(InpaintError, match="no inpaintkit card"):
        load_weights(tmp_path / "foreign.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(np.random.default_rng(0).bytes(64))
    with pytest.raises(InpaintError, match="not a valid safetensors"):
        load_weights(tmp_path / "junk.safetensors")


def test_unknown_model_arguments_are_clear():
    with pytest.raises(InpaintError, match="takes no argument"):
        create_model("unet", wdith=3)
    with pytest.raises(InpaintError, match="prefill must be"):
        create_model("ffc", prefill="bihar")  # a bad value is one line too, not a traceback


@pytest.mark.parametrize("prefill", ["telea", "biharmonic"])
def test_a_prefilled_ffc_starts_as_its_classical_fill_and_refuses_export(tmp_path, prefill):
    import numpy as np

    from inpaintkit.errors import InpaintError
    from inpaintkit.export import export_onnx
    from inpaintkit.inference import inpaint_array

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:96]
    image = np.stack([x * 2, y * 3, (x + y) * 2], axis=2).astype(np.uint8) + rng.integers(0, 20, (64, 96, 3)).astype(
        np.uint8
    )
    hole = np.zeros((64, 96), bool)
    hole[20:40, 30:70] = True
    untrained = create_model("ffc", prefill=prefill)
    ours = inpaint_array(untrained, image, hole).astype(int)
    reference = inpaint_array(create_model("telea") if prefill == "telea" else PrefillOnly(), image, hole).astype(int)
    assert np.abs(ours - reference).max() <= 1  # the zero output layer returns the classical fill
    with pytest.raises(InpaintError, match=f"{prefill} prefill"):
        export_onnx(untrained, tmp_path / "m.onnx")


class PrefillOnly(Generator):
    def forward(self, image, mask):
        from inpaintkit.models.layers import biharmonic_fill

        return biharmonic_fill(image * (1 - mask), mask)


def test_biharmonic_fill_solves_the_thin_plate_and_keeps_known_pixels():
    from skimage.restoration import inpaint_biharmonic

    from inpaintkit.models.layers import biharmonic_fill

    y, x = torch.meshgrid(torch.linspace(0, 1, 80), torch.linspace(0, 1, 120), indexing="ij")
    plane = torch.stack([0.2 + 0.5 * x, 0.9 - 0.6 * y, 0.3 * x + 0.4 * y])[None]
    mask = torch.zeros(1, 1, 80, 120)
    mask[..., 10:50, 30:110] = 1  # a wide hole
    mask[..., 60:, :20] = 1  # and one on a corner of the image
    filled = biharmonic_fill(plane * (1 - mask), mask)
    assert torch.equal(filled * (1 - mask), plane * (1 - mask))
    # A plane is biharmonic: the enclosed hole recovers it; the corner hole, held only on two sides
    # and damped by the membrane term, stays close.
    assert (filled - plane)[..., 10:50, 30:110].abs().max() < 0.01
    assert (filled - plane)[..., 60:, :20].abs().max() < 0.1

    mask[..., 60:, :20] = 0  # scikit-image extrapolates into corners differently
    rng = np.random.default_rng(1)
    smooth = torch.nn.functional.interpolate(torch.from_numpy(rng.random((1, 3, 6, 8))).float(), size=(80, 120),
                                             mode="bicubic", align_corners=False).clamp(0, 1)  # fmt: skip
    exact = inpaint_biharmonic((smooth * (1 - mask))[0].permute(1, 2, 0).numpy(), mask[0, 0].numpy().astype(bool),
                               channel_axis=-1)  # fmt: skip
    hole = mask[0, 0].numpy().astype(bool)
    truth = smooth[0].permute(1, 2, 0).numpy()

    def ours(*args):
        return biharmonic_fill(smooth * (1 - mask), mask, *args)[0].permute(1, 2, 0).numpy()

    # Run to convergence without the membrane term, the solver finds scikit-image's exact surface;
    # at its defaults it fills about as well.
    assert np.abs(ours(1000, 1000, 0.0) - exact)[hole].mean() < 0.002
    assert np.abs(ours() - truth)[hole].mean() < 1.1 * np.abs(exact - truth)[hole].mean()


def test_summary_lists_layers_with_shapes_and_the_registered_parameter_count():
    from inpaintkit.describe import summary
    from inpaintkit.models import count_parameters, create_model

    table = summary("ffc", size=64)
    assert f"Total params: {count_parameters(create_model('ffc')):,}" in table
    assert "FFCResBlock" in table and "[1, 256, 8, 8]" in table  # 1/8 of 64 px, 8 x width 32
    assert "Prefill" in table  # the classical fill shows as one step
    assert "Total params: 0" not in summary("default", size=64)  # the bundled weights' network


def test_diagrams_draw_the_architecture(tmp_path):
    from inpaintkit.describe import diagram

    dot = diagram("default", tmp_path / "default.dot", size=64).read_text()
    assert dot.startswith("strict digraph") or dot.startswith("digraph")
    assert "Prefill" in dot and dot.count("FFCResBlock") == 6 and dot.count("->") < 100  # readable
    result = run_cli("models", "unet", "--diagram", tmp_path / "unet.svg", "--size", "64")
    assert result.returncode == 0, result.stderr
    svg = (tmp_path / "unet.svg").read_text()
    assert "<svg" in svg and "Conv2d" in svg and "(1, 3, 64, 64)" in svg
