import numpy as np
import pytest
import torch
from PIL import Image

from inpaintkit.errors import InpaintError, MaskSizeError
from inpaintkit.inference import mask_to_tensor, to_tensor, to_uint8
from inpaintkit.io import list_images, read_alpha_hole, read_image, read_mask, write_image

from .conftest import png_bytes


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp"])
def test_lossless_formats_round_trip(tmp_path, photo, suffix):
    path = write_image(tmp_path / f"a{suffix}", photo)
    np.testing.assert_array_equal(read_image(path), photo)


def test_jpeg_is_read_as_rgb(tmp_path, photo):
    path = write_image(tmp_path / "a.jpg", photo)
    out = read_image(path)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - photo).mean() < 6


def test_grayscale_palette_and_cmyk_become_rgb(tmp_path, photo):
    Image.fromarray(photo[:, :, 0]).save(tmp_path / "l.png")
    gray = read_image(tmp_path / "l.png")
    assert (
        gray.shape == photo.shape and (gray[:, :, 0] == photo[:, :, 0]).all() and (gray[:, :, 1] == gray[:, :, 2]).all()
    )
    Image.fromarray(photo).convert("P").save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").shape == photo.shape
    Image.fromarray(photo).convert("CMYK").save(tmp_path / "c.jpg")
    cmyk = read_image(tmp_path / "c.jpg")
    assert cmyk.shape == photo.shape and np.abs(cmyk.astype(int) - photo).mean() < 12


def test_sixteen_bit_grayscale_is_scaled(tmp_path):
    values = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "d.png")
    out = read_image(tmp_path / "d.png")
    assert out[0, :, 0].tolist() == [0, 128, 255]


def test_rgba_composites_on_white_or_gives_the_hole(tmp_path, photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    rgba[10:20, 10:20, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    rgb = read_image(tmp_path / "a.png")
    assert (rgb[10:20, 10:20] == 255).all()
    np.testing.assert_array_equal(rgb[30:, 30:], photo[30:, 30:])
    hole = read_alpha_hole(tmp_path / "a.png")
    assert hole.sum() == 100 and hole[10:20, 10:20].all()
    Image.fromarray(photo).save(tmp_path / "b.png")
    with pytest.raises(InpaintError, match="no alpha"):
        read_alpha_hole(tmp_path / "b.png")


def test_exif_orientation_is_applied(tmp_path, photo):
    img = Image.fromarray(photo)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "r.jpg", exif=exif, quality=98)
    out = read_image(tmp_path / "r.jpg")
    assert out.shape == (photo.shape[1], photo.shape[0], 3)


def test_first_frame_of_animation_with_warning(tmp_path, photo):
    frames = [Image.fromarray(photo), Image.fromarray(255 - photo)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    with pytest.warns(UserWarning, match="frames"):
        out = read_image(tmp_path / "a.gif")
    assert out.shape == photo.shape


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"hello, not an image", "not an image"),
        (png_bytes(0, 10), "not an image|zero size"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(InpaintError, match=message):
        read_image(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InpaintError, match="not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(InpaintError, match="folder"):
        read_image(tmp_path)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files(tmp_path, photo, fmt):
    big = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    path = tmp_path / f"t.{fmt.lower()}"
    Image.fromarray(big).save(path, format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InpaintError, match="truncated|corrupt|cannot read"):
        read_image(path)


def test_decompression_bomb_is_refused_and_limit_can_be_raised(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(30000, 30000))
    with pytest.raises(InpaintError, match="megapixels"):
        read_image(path)
    with pytest.raises(InpaintError, match="truncated|corrupt|cannot read"):
        read_image(path, max_pixels=10**9)  # past the guard, the data itself is bogus


def test_mask_conventions(tmp_path):
    m = np.zeros((8, 8), np.uint8)
    m[2:4, 2:4] = 255
    m[5, 5] = 100  # below half range: compression noise or a soft edge, not hole
    Image.fromarray(m).save(tmp_path / "m.png")
    hole = read_mask(tmp_path / "m.png")
    assert hole.dtype == bool and hole.sum() == 4
    assert (read_mask(tmp_path / "m.png", invert=True) == ~hole).all()
    Image.fromarray(np.dstack([m, m, m])).save(tmp_path / "rgb.png")
    assert read_mask(tmp_path / "rgb.png").sum() == 4
    Image.fromarray(m > 0).save(tmp_path / "bits.png")
    assert read_mask(tmp_path / "bits.png").sum() == 5
    Image.fromarray((m > 0).astype(np.uint8)).save(tmp_path / "labels.png")  # a 0/1 label mask
    assert read_mask(tmp_path / "labels.png").sum() == 5
    Image.fromarray(m.astype(np.uint16) * 257).save(tmp_path / "deep.png")
    assert read_mask(tmp_path / "deep.png").sum() == 4


def test_jpeg_and_png_masks_follow_one_rule(tmp_path):
    """The same hole saved as PNG and as JPEG (whose compression scatters small values around the
    edges and in flat areas) reads as the same hole, give or take the JPEG's smeared edge."""
    m = np.zeros((64, 64), np.uint8)
    m[16:40, 20:44] = 255
    noisy = m.copy()
    noisy[50:60, 5:15] = 40  # grey smudges, as a resaved or scanned mask carries
    for name, quality in (("m.png", None), ("m.jpg", 60), ("m.webp", 50)):
        Image.fromarray(noisy).save(tmp_path / name, **({"quality": quality} if quality else {}))
    png, jpg, webp = (read_mask(tmp_path / n) for n in ("m.png", "m.jpg", "m.webp"))
    assert (png == (m > 0)).all()
    for lossy in (jpg, webp):
        assert not lossy[48:62, 3:17].any()  # the smudge is not hole in any format
        assert (lossy != png).sum() <= 2 * 24 * 4  # at most a pixel's change along the square's edge


def test_mask_from_alpha_only(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)  # black everywhere; the painted stroke is only in alpha
    rgba[1:3, 1:7, 3] = 200
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert read_mask(tmp_path / "a.png").sum() == 12


def test_mask_size_mismatch_and_resize(tmp_path):
    m = np.zeros((8, 8), np.uint8)
    m[:4] = 255
    Image.fromarray(m).save(tmp_path / "m.png")
    with pytest.raises(MaskSizeError, match="mask is 8x8 but the image is 16x16$"):
        read_mask(tmp_path / "m.png", size=(16, 16))  # each front end says how to fix it (CLI: --resize-mask)
    hole = read_mask(tmp_path / "m.png", size=(16, 16), resize=True)
    assert hole.shape == (16, 16) and hole[:8].all() and not hole[8:].any()


def test_write_is_atomic_and_guards_inputs(tmp_path, photo, monkeypatch):
    target = tmp_path / "deep" / "er" / "out.png"
    write_image(target, photo)
    before = target.read_bytes()

    def explode(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", explode)
    with pytest.raises(InpaintError, match="No space"):
        write_image(target, 255 - photo)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["out.png"]  # no partial file left
    with pytest.raises(InpaintError, match="overwrite an input"):
        write_image(target, photo, inputs=(target,))
    with pytest.raises(InpaintError, match="unsupported output format"):
        write_image(tmp_path / "x.gifx", photo)


def test_tensor_round_trip_is_exact(photo):
    t = to_tensor(photo)
    assert t.shape == (1, 3, 48, 64) and t.dtype == torch.float32 and 0 <= t.min() and t.max() <= 1
    np.testing.assert_array_equal(to_uint8(t), photo)
    assert mask_to_tensor(np.ones((4, 5), bool)).shape == (1, 1, 4, 5)


def test_list_images(tmp_path, photo):
    write_image(tmp_path / "b" / "x.png", photo)
    write_image(tmp_path / "a.jpg", photo)
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "x.png"]
