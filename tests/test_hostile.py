"""Files and recipes from strangers: checked field by field before anything is built or allocated."""

import json
import resource
import zipfile

import pytest
import torch
from safetensors.torch import save_file

from inpaintkit.errors import InpaintError
from inpaintkit.loading import load_model
from inpaintkit.models import create_model, load_weights, save_model
from inpaintkit.training import TrainConfig, load_config

from .conftest import run_cli


def card_file(tmp_path, card, tensors=None):
    path = tmp_path / "hostile.safetensors"
    save_file(tensors or {"x": torch.zeros(2)}, str(path), metadata={"inpaintkit": card})
    return path


@pytest.mark.parametrize(
    "card, message",
    [
        ({"model": "ffc", "kwargs": {"width": 500}}, "parameters, over"),
        ({"model": "unet", "kwargs": {"width": 1e6}}, "model 'unet'"),
        ({"model": "unet", "kwargs": {"width": -5}}, "negative dimension"),
        ({"model": "unet", "kwargs": {"width": {"a": [1]}}}, "must be a number"),
        ({"model": ["unet"], "kwargs": {}}, "no known model"),
        ({"model": "unet", "kwargs": {"width": 500}}, "do not match"),
    ],
)
def test_hostile_cards_are_refused_before_allocating(tmp_path, card, message):
    path = card_file(tmp_path, json.dumps(card))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(InpaintError, match=message):
        load_weights(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KB: no 2 GB model was built


def test_a_deeply_nested_card_is_one_line(tmp_path):
    path = card_file(tmp_path, "[" * 100_000 + "]" * 100_000)
    with pytest.raises(InpaintError, match="not valid JSON"):
        load_weights(path)
    result = run_cli("inpaint", path, "--mask", path, "--model", path)  # the CLI says the same in one line
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_a_recipe_with_exponential_aliases_is_refused(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 30)]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\nname: bomb\n")
    with pytest.raises(InpaintError, match="aliases"):
        load_config(tmp_path / "bomb.yaml")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"lr": float("nan")}, "learning rates must be positive numbers: lr = nan"),
        ({"workers": -1}, "workers must be 0 or more"),
        ({"precision": "banana"}, "unknown precision"),
        ({"size": 100_000}, "size 100000 is over"),
        ({"max_steps": 0}, "max_steps must be -1"),
        ({"devices": 99, "accelerator": "cpu"}, "this machine has"),
    ],
)
def test_bad_recipe_values_are_one_line(overrides, message):
    config = TrainConfig(data=".", val_data=None, **overrides)
    with pytest.raises(InpaintError, match=message):
        config.validate()


def test_a_model_too_large_for_the_budget_is_refused_before_building():
    with pytest.raises(InpaintError, match="parameters, over"):
        create_model("ffc-lama", width=2048)


def test_a_compressed_checkpoint_is_refused(tmp_path):
    bomb = tmp_path / "bomb.ckpt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data/0", b"\0" * 50_000_000)
    with pytest.raises(InpaintError, match="unpacks to 50 MB"):
        load_model(bomb, trust_pickle=True)


def test_weights_saved_from_a_sane_model_still_load(tmp_path):
    model = create_model("unet", width=4).eval()
    again = load_weights(save_model(model, tmp_path / "ok.safetensors"))
    assert again.config == model.config


def test_the_app_decodes_inside_its_limit_and_refuses_large_photos_from_the_header(tmp_path):
    """``Inpainter.run`` decodes, fills and encodes on its fill threads: with one slot, never two
    photos at once; a photo over ``max_pixels`` is refused before its pixels are decoded."""
    import threading
    import time

    import numpy as np
    from PIL import Image

    from inpaintkit.api import Inpainter
    from inpaintkit.io import Keep, read_image

    inpainter = Inpainter(concurrency=1, max_pixels=10_000)
    holding, most = [0], [0]  # requests between decoding their photo and encoding their result
    lock = threading.Lock()

    def read():
        with lock:
            holding[0] += 1
            most[0] = max(most[0], holding[0])
        image, hole = np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), bool)
        hole[2:4, 2:4] = True
        return image, hole, Keep()

    def deliver(hole, result, keep, seconds):
        time.sleep(0.05)  # encoding the result
        with lock:
            holding[0] -= 1

    threads = [threading.Thread(target=inpainter.run, args=(read, "telea", "original", deliver)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and holding[0] == 0
    Image.new("RGB", (200, 100)).save(tmp_path / "big.png")
    from PIL import ImageFile

    opened = []
    real_load = ImageFile.ImageFile.load  # what decodes a PNG's pixels

    def spying_load(self):
        opened.append(self.size)
        return real_load(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ImageFile.ImageFile, "load", spying_load)
        with pytest.raises(InpaintError, match="over the limit"):
            inpainter.run(
                lambda: (read_image(tmp_path / "big.png", max_pixels=inpainter.max_pixels), None, Keep()),
                "telea",
                "original",
                deliver,
            )
    assert opened == []  # refused from the header
