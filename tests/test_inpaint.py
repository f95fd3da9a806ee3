import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import inpaintkit
from inpaintkit.errors import InpaintError
from inpaintkit.inference import InpaintOptions, feather_weights, inpaint_array
from inpaintkit.io import read_image
from inpaintkit.loading import load_model
from inpaintkit.masks import MaskGenerator
from inpaintkit.models import create_model, model_names
from inpaintkit.runner import pad_to_multiple

from .conftest import run_cli, shared

CLASSICAL = ["telea", "navier-stokes", "biharmonic", "mean-fill", "patchmatch"]


@pytest.fixture
def real_photo_and_mask(tmp_path):
    path = shared("bsds500", "test", "100007.jpg")
    rgb = read_image(path)
    hole = MaskGenerator("lama-thick").sample(0, *rgb.shape[:2], seed=5) > 0.5
    Image.fromarray(hole).save(tmp_path / "mask.png")
    return path, rgb, hole, tmp_path / "mask.png"


@pytest.mark.parametrize("method", CLASSICAL)
def test_classical_methods_on_a_real_photo(real_photo_and_mask, method):
    _, rgb, hole, _ = real_photo_and_mask
    out = inpaintkit.inpaint(rgb, hole, model=method)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~hole], rgb[~hole])
    changed = np.abs(out[hole].astype(int) - rgb[hole]).mean()
    assert changed > 1.0
    if method != "mean-fill":  # a real fill beats the mean colour inside the hole
        mean = inpaintkit.inpaint(rgb, hole, model="mean-fill")
        err = np.abs(out[hole].astype(int) - rgb[hole]).mean()
        assert err < np.abs(mean[hole].astype(int) - rgb[hole]).mean()


def test_empty_mask_returns_the_image():
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(inpaintkit.inpaint(rgb, np.zeros((20, 30), bool), "telea"), rgb)


def test_pad_to_multiple_handles_tiny_images():
    assert pad_to_multiple(torch.rand(1, 3, 5, 7), 8).shape == (1, 3, 8, 8)
    assert pad_to_multiple(torch.rand(1, 3, 1, 1), 8).shape == (1, 3, 8, 8)
    assert pad_to_multiple(torch.rand(1, 3, 5, 20), 8, 16).shape == (1, 3, 16, 24)
    x = torch.rand(1, 3, 16, 16)
    assert pad_to_multiple(x, 8) is x


def test_python_api_settings_and_arguments_are_checked():
    image, hole = np.zeros((16, 16, 3), np.uint8), np.ones((16, 16), bool)
    with pytest.raises(InpaintError, match="feather must be a whole number of 0 or more"):
        inpaintkit.inpaint(image, hole, model="telea", feather=-3)
    with pytest.raises(InpaintError, match="feather must be a whole number"):
        inpaintkit.inpaint(image, hole, model="telea", feather=2.5)
    with pytest.raises(InpaintError, match="model must be a name, a weights path or a loaded model"):
        inpaintkit.inpaint(image, hole, model=None)
    with pytest.raises(InpaintError, match="without trained weights"):
        inpaintkit.inpaint(image, hole, model="unet")
    with pytest.raises(InpaintError, match="H, W > 0"):
        inpaintkit.inpaint(np.zeros((0, 0, 3), np.uint8), np.ones((0, 0), bool), model="telea")
    # NumPy integers are whole numbers too
    out = inpaintkit.inpaint(image, hole, model="telea", feather=np.int64(3), max_side=np.int32(64))
    assert out.shape == image.shape


def test_a_feather_wider_than_the_hole_still_fills_its_middle():
    hole = np.zeros((40, 40), bool)
    hole[10:30, 18:23] = True  # 5 px wide: 3 px from its middle to the nearest known pixel
    for width in (4, 50, 10**6):
        w = feather_weights(hole, width)
        assert w[20, 20] == 1 and (w[~hole] == 0).all() and 0 < w[20, 18] < 1
    image = np.zeros((40, 40, 3), np.uint8)
    out = inpaint_array(create_model("mean-fill"), image + 200 * hole[..., None].astype(np.uint8), hole,
                        InpaintOptions(feather=10**6))  # fmt: skip
    assert (out[20, 20] == 0).all()  # the fill (the known pixels' black), not what the hole held


def test_registry_lists_and_rejects_names():
    assert set(CLASSICAL) <= set(model_names())
    with pytest.raises(InpaintError, match="did you mean telea"):
        create_model("tela")
    with pytest.raises(InpaintError, match="did you mean default"):
        load_model("defualt")  # bundled weights are suggested too
    with pytest.raises(InpaintError, match="pickled"):
        load_model("weights.ckpt")


def test_cli_inpaint_real_photo(real_photo_and_mask, tmp_path):
    path, rgb, hole, mask = real_photo_and_mask
    result = run_cli("inpaint", path, "--mask", mask, "--model", "telea", "-o", tmp_path / "out.png")
    assert result.returncode == 0, result.stderr
    out = read_image(tmp_path / "out.png")
    np.testing.assert_array_equal(out[~hole], rgb[~hole])
    assert (out[hole] != rgb[hole]).any()


def _assert_one_line_error(result, *needles):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_cli_bad_inputs_give_one_line_and_no_output(real_photo_and_mask, tmp_path):
    path, _, _, mask = real_photo_and_mask
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(path.read_bytes()[:4000])
    text = tmp_path / "text.jpg"
    text.write_text("just text")
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(small)
    cases = [
        ((corrupt, "--mask", mask), "truncated"),
        ((text, "--mask", mask), "not an image"),
        ((path, "--mask", small), "--resize-mask"),
        ((tmp_path / "missing.jpg", "--mask", mask), "not found"),
        ((path, "--mask", mask, "--model", "nonsense"), "unknown model"),
    ]
    for i, (args, needle) in enumerate(cases):
        out = tmp_path / f"out{i}.png"
        result = run_cli("inpaint", *args, "-o", out)
        _assert_one_line_error(result, needle)
        assert not out.exists()


def test_cli_refuses_to_overwrite_the_input(real_photo_and_mask, tmp_path):
    path, _, _, mask = real_photo_and_mask
    copy = tmp_path / "photo.png"
    copy.write_bytes(path.read_bytes())
    before = copy.read_bytes()
    result = run_cli("inpaint", copy, "--mask", mask, "-o", copy)
    _assert_one_line_error(result, "overwrite")
    assert copy.read_bytes() == before


def test_cli_empty_mask_warns_and_copies(tmp_path, photo):
    Image.fromarray(photo).save(tmp_path / "p.png")
    Image.fromarray(np.zeros(photo.shape[:2], np.uint8)).save(tmp_path / "m.png")
    result = run_cli("inpaint", tmp_path / "p.png", "--mask", tmp_path / "m.png", "-o", tmp_path / "o.png")
    assert result.returncode == 0 and "warning:" in result.stderr and "empty" in result.stderr
    np.testing.assert_array_equal(read_image(tmp_path / "o.png"), photo)


def test_cli_folder_with_matching_masks_and_alpha_hole(tmp_path, photo, monkeypatch):
    rng = np.random.default_rng(1)
    (tmp_path / "in").mkdir()
    (tmp_path / "masks").mkdir()
    for name in ("a", "b"):
        Image.fromarray(photo).save(tmp_path / "in" / f"{name}.jpg", quality=95)
        m = (rng.random(photo.shape[:2]) < 0.1).astype(np.uint8) * 255
        Image.fromarray(m).save(tmp_path / "masks" / f"{name}.png")
    monkeypatch.setenv("INPAINTKIT_PROGRESS", "1")  # a bar, as in a terminal
    result = run_cli("inpaint", tmp_path / "in", "--mask", tmp_path / "masks", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert "inpaint: 100%" in result.stderr and "2/2 [" in result.stderr  # the count, time taken and left
    assert result.stdout.split() == [str(tmp_path / "out" / n) for n in ("a.png", "b.png")]  # clean lines
    monkeypatch.delenv("INPAINTKIT_PROGRESS")
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    rgba[5:15, 5:15, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    result = run_cli("inpaint", tmp_path / "t.png", "--alpha-hole", "-o", tmp_path / "t-out.png")
    assert result.returncode == 0, result.stderr
    out = read_image(tmp_path / "t-out.png")
    assert (out[5:15, 5:15] != 255).any() and (out[20:, 20:] == photo[20:, 20:]).all()


def test_cli_models_lists_classical_methods():
    result = run_cli("models")
    assert result.returncode == 0
    for name in CLASSICAL:
        assert name in result.stdout


def test_patchmatch_is_seeded_and_safe_across_threads(real_photo_and_mask):
    from concurrent.futures import ThreadPoolExecutor

    from inpaintkit.models import create_model

    _, rgb, _, _ = real_photo_and_mask
    rgb, hole = rgb[:160, :200], np.zeros((160, 200), bool)
    hole[50:110, 60:150] = True

    def fill(model):
        return inpaintkit.inpaint(rgb, hole, model=model)

    first = fill(create_model("patchmatch"))
    np.testing.assert_array_equal(fill(create_model("patchmatch")), first)  # same seed, same bytes
    other_seed = fill(create_model("patchmatch", seed=1))
    wider = fill(create_model("patchmatch", patch_size=5))
    assert (other_seed != first).any() and (wider != first).any()
    models = [create_model("patchmatch", seed=i % 2) for i in range(6)]
    with ThreadPoolExecutor(3) as pool:  # the library's seed is global: fills must not mix seeds
        results = list(pool.map(fill, models))
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result, first if i % 2 == 0 else other_seed)
    with pytest.raises(InpaintError, match="patch_size"):
        create_model("patchmatch", patch_size=0)


@pytest.mark.parametrize("name", ["patchmatch", "patchmatch seed 5", "biharmonic", "telea", "default"])
def test_a_batch_is_filled_in_worker_processes_with_the_bytes_of_one_at_a_time(real_photo_and_mask, monkeypatch, name):
    """Under worker_processes (the command line's), a batch's classical fills and the default's
    PatchMatch run in spawned worker processes, each with its own copy of the native seed: the
    same result as in this process. Outside it, batches stay in this process."""
    from inpaintkit import processes
    from inpaintkit.inference import to_tensor

    _, rgb, _, _ = real_photo_and_mask
    photos = [rgb[:96, :128], rgb[100:196, 200:328], rgb[200:296, 300:428]]
    mask = torch.zeros(3, 1, 96, 128)
    mask[0, :, 20:60, 30:90] = 1
    mask[2, :, 40:90, 10:50] = 1  # the second photo has no hole: it is returned as it is
    image = torch.cat([to_tensor(photo) for photo in photos]) * (1 - mask)
    monkeypatch.setattr(processes, "CORES", 2)  # worker processes even on a one-core machine
    with processes.worker_processes():
        workers, jobs = processes.fill_processes(), []
    for method in ("submit", "map"):  # count what is sent to the processes
        sent = getattr(workers, method)
        monkeypatch.setattr(workers, method, lambda fn, *args, sent=sent: jobs.append(fn) or sent(fn, *args))
    model = create_model("patchmatch", seed=5) if name.endswith("seed 5") else load_model(name).eval()
    with torch.no_grad():
        in_process = model(image, mask)
        with processes.worker_processes():
            one_at_a_time = torch.cat([model(image[i : i + 1], mask[i : i + 1]) for i in range(3)])
            assert not jobs  # neither outside worker_processes nor for one photo
            batched = model(image, mask)
    assert jobs
    # classical fills are byte-identical; the default's network may differ by a float32 ulp with the
    # batch size, while a byte of PatchMatch's fill would move it by about 1e-3
    torch.testing.assert_close(batched, one_at_a_time, rtol=0, atol=1e-6)
    assert torch.equal(batched, in_process)


def test_a_script_without_a_main_guard_fills_batches_in_its_own_process(tmp_path):
    """Spawned workers import the main script again; a library call must not start them."""
    script = tmp_path / "script.py"
    script.write_text(
        "import torch\nfrom inpaintkit.loading import load_model\n"
        "x, m = torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 32, 32)\nm[:, :, 8:20, 8:20] = 1\n"
        "print('filled', tuple(load_model('patchmatch')(x * (1 - m), m).shape))\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("filled") == 1
