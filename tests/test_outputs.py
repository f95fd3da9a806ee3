"""Outputs never cost a user a file: inputs are never written, existing outputs are kept unless
--overwrite, reruns can finish a folder, and files appear whole with the user's permissions."""

import os
import stat

import numpy as np
import pytest
from PIL import Image

from inpaintkit.io import part_prefix, read_image, write_bytes

from .conftest import run_cli


def make_photo(path, seed=0, size=(40, 48)):
    rgb = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


def make_mask(path, size=(40, 48)):
    hole = np.zeros(size, bool)
    hole[10:20, 12:30] = True
    Image.fromarray(hole).save(path)
    return path


def one_line_error(result):
    lines = result.stderr.strip().splitlines()
    return result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:")


def test_eval_never_writes_over_a_photo(tmp_path):
    photo = make_photo(tmp_path / "data" / "photo.jpg")
    before = photo.read_bytes()
    result = run_cli("eval", "--model", "telea", "--data", tmp_path / "data", "--masks", "center", "--out", photo,
                     "--n", "1", "--size", "32")  # fmt: skip
    assert one_line_error(result) and ".json" in result.stderr and photo.read_bytes() == before
    report = tmp_path / "report.json"
    write_bytes(report, "{}")
    result = run_cli("eval", "--model", "telea", "--data", tmp_path / "data", "--masks", "center", "--out", report,
                     "--n", "1", "--size", "32")  # fmt: skip
    assert one_line_error(result) and "--overwrite" in result.stderr and report.read_text() == "{}"


def test_photos_sharing_a_name_get_their_own_results(tmp_path):
    make_photo(tmp_path / "in" / "a.jpg", 1)
    make_photo(tmp_path / "in" / "a.png", 2)
    make_mask(tmp_path / "mask.png")
    result = run_cli("inpaint", tmp_path / "in", "--mask", tmp_path / "mask.png", "--model", "telea",
                     "-o", tmp_path / "out")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a-jpg.png", "a-png.png"]
    jpg, png = read_image(tmp_path / "out" / "a-jpg.png"), read_image(tmp_path / "out" / "a-png.png")
    assert (jpg != png).any()


def test_an_output_folder_in_the_input_folder_is_refused(tmp_path):
    photo = make_photo(tmp_path / "in" / "a.png")
    before = photo.read_bytes()
    make_mask(tmp_path / "mask.png")
    for out in (tmp_path / "in", tmp_path / "in" / "filled"):
        result = run_cli("inpaint", tmp_path / "in", "--mask", tmp_path / "mask.png", "--model", "telea", "-o", out)
        assert one_line_error(result) and "inside the input folder" in result.stderr
    assert photo.read_bytes() == before and sorted(p.name for p in (tmp_path / "in").iterdir()) == ["a.png"]


def test_existing_outputs_are_kept_replaced_or_skipped(tmp_path):
    for i in range(3):
        make_photo(tmp_path / "in" / f"p{i}.png", i)
    make_mask(tmp_path / "mask.png")
    args = ("inpaint", tmp_path / "in", "--mask", tmp_path / "mask.png", "--model", "telea", "-o", tmp_path / "out")
    assert run_cli(*args).returncode == 0
    (tmp_path / "out" / "p1.png").unlink()
    kept = (tmp_path / "out" / "p0.png").stat().st_mtime_ns
    result = run_cli(*args)
    assert one_line_error(result) and "--skip-existing" in result.stderr
    assert not (tmp_path / "out" / "p1.png").exists()
    result = run_cli(*args, "--skip-existing")
    assert result.returncode == 0 and result.stdout.split() == [str(tmp_path / "out" / "p1.png")]
    assert (tmp_path / "out" / "p0.png").stat().st_mtime_ns == kept
    result = run_cli(*args, "--overwrite")
    assert result.returncode == 0 and len(result.stdout.split()) == 3
    assert one_line_error(run_cli(*args, "--overwrite", "--skip-existing"))


def test_a_rerun_clears_what_a_killed_run_left(tmp_path):
    photo = make_photo(tmp_path / "p.png")
    make_mask(tmp_path / "mask.png")
    for name in ("out.png", "o" * 251 + ".png"):  # a name of 255 characters, the longest most systems allow
        stale = tmp_path / (part_prefix(tmp_path / name) + "k1ll3d.part")
        stale.write_bytes(b"half a png")
        result = run_cli("inpaint", photo, "--mask", tmp_path / "mask.png", "--model", "telea", "-o", tmp_path / name)
        assert result.returncode == 0, result.stderr
        assert not stale.exists() and not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".*.part"))
        assert read_image(tmp_path / name).shape == read_image(photo).shape


def test_outputs_follow_the_umask(tmp_path):
    photo = make_photo(tmp_path / "p.png")
    make_mask(tmp_path / "mask.png")
    old = os.umask(0o027)
    try:
        result = run_cli("inpaint", photo, "--mask", tmp_path / "mask.png", "--model", "telea",
                         "-o", tmp_path / "out.png", fresh=True)  # fmt: skip
    finally:
        os.umask(old)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "out.png").stat().st_mode) == 0o640


def test_a_symlink_loop_is_one_line(tmp_path):
    photo = make_photo(tmp_path / "p.png")
    make_mask(tmp_path / "mask.png")
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    result = run_cli("inpaint", photo, "--mask", tmp_path / "mask.png", "--model", "telea", "-o", tmp_path / "loop.png")
    assert one_line_error(result), result.stderr


def test_results_keep_profile_exif_transparency_and_16_bits(tmp_path):
    """A filled photo keeps what its file carried, where the output format can hold it."""
    import cv2
    from PIL import ImageCms

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    hole = np.zeros((40, 60), bool)
    hole[10:20, 20:40] = True
    Image.fromarray(hole).save(tmp_path / "mask.png")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    Image.fromarray(rgb).save(tmp_path / "phone.jpg", icc_profile=icc, exif=exif.tobytes(), quality=95)
    rgba = np.dstack([rgb, rng.integers(0, 256, (40, 60), dtype=np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "layer.png")
    deep = rng.integers(0, 65536, (40, 60, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "scan.png"), deep[..., ::-1])
    for name, out in (("phone.jpg", "phone-out.jpg"), ("layer.png", "layer-out.png"), ("scan.png", "scan-out.png")):
        result = run_cli("inpaint", tmp_path / name, "--mask", tmp_path / "mask.png", "--model", "telea",
                         "-o", tmp_path / out)  # fmt: skip
        assert result.returncode == 0, result.stderr
    phone = Image.open(tmp_path / "phone-out.jpg")
    assert phone.info["icc_profile"] == icc and phone.getexif()[0x010F] == "TestCam"
    layer = np.asarray(Image.open(tmp_path / "layer-out.png"))
    np.testing.assert_array_equal(layer[~hole], rgba[~hole])  # colour under transparency too
    assert (layer[hole, 3] == 255).all()  # the fill is opaque
    scan = cv2.imread(str(tmp_path / "scan-out.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert scan.dtype == np.uint16
    np.testing.assert_array_equal(scan[~hole], deep[~hole])
    assert (scan[hole] % 257 == 0).all()  # the 8-bit fill, scaled to 16 bits


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    from inpaintkit import io as image_io
    from inpaintkit.errors import InpaintError

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    (tmp_path / "old.json").write_text("{}")
    monkeypatch.setattr(image_io.os, "fsync", full)
    for name in ("new.json", "old.json"):
        with pytest.raises(InpaintError, match=f"{name}: cannot write \\(No space left on device\\)"):
            write_bytes(tmp_path / name, "[1, 2]")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"] and (tmp_path / "old.json").read_text() == "{}"
