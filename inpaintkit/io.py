"""Reading and writing images and masks: every format quirk and every clear error lives here.

Arrays at this boundary are ``uint8`` RGB ``(H, W, 3)`` for images and ``bool`` ``(H, W)`` for masks
(True = hole). Tensors for models are made in :mod:`inpaintkit.inference`.
"""

from __future__ import annotations

import glob
import hashlib
import os
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from inpaintkit.errors import InpaintError, MaskSizeError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
# A 100-megapixel camera is real; anything past this is far more likely a decompression bomb.
DEFAULT_MAX_PIXELS = 120_000_000
APP_MAX_PIXELS = 40_000_000  # the app's default: larger uploads are refused from their header
_PIL_LIMIT_LOCK = threading.Lock()
_WRITE_OPTIONS = {
    ".png": ("PNG", {"compress_level": 4}),
    ".jpg": ("JPEG", {"quality": 95, "subsampling": 0}),
    ".jpeg": ("JPEG", {"quality": 95, "subsampling": 0}),
    ".webp": ("WEBP", {"lossless": True}),
    ".bmp": ("BMP", {}),
    ".tif": ("TIFF", {"compression": "tiff_lzw"}),
    ".tiff": ("TIFF", {"compression": "tiff_lzw"}),
}


def _amount(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels" if pixels >= 100_000 else f"{pixels:,} pixel{'s' * (pixels != 1)}"


def check_pixels(what: str, width: int, height: int, max_pixels: int) -> None:
    """The one pixel limit (decompression bombs, borders that would not fit in memory): ``what`` is
    ``width`` x ``height``; over ``max_pixels`` it is an :class:`InpaintError` naming both."""
    if width * height > max_pixels:
        raise InpaintError(
            f"{what} is {width}x{height} ({_amount(width * height)}), over the limit of {_amount(max_pixels)}; "
            "raise it with --max-pixels if the file is trusted"
        )


def _open(path: str | os.PathLike, max_pixels: int) -> Image.Image:
    """Open, validate and fully decode an image; EXIF orientation applied; first frame only."""
    path = Path(path)
    if not path.exists():
        raise InpaintError(f"{path}: file not found")
    if path.is_dir():
        raise InpaintError(f"{path}: is a folder, not an image file")
    if path.stat().st_size == 0:
        raise InpaintError(f"{path}: file is empty")
    try:
        # Pillow's own bomb guard is global state; raise it only while we open, and check ours instead.
        with _PIL_LIMIT_LOCK:
            saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                img = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except UnidentifiedImageError:
        raise InpaintError(f"{path}: not an image (unrecognised format)") from None
    except OSError as exc:
        raise InpaintError(f"{path}: cannot read image ({exc})") from None
    width, height = img.size
    if width == 0 or height == 0:
        raise InpaintError(f"{path}: image has zero size ({width}x{height})")
    check_pixels(f"{path}: image", width, height, max_pixels)
    if getattr(img, "n_frames", 1) > 1:
        warnings.warn(f"{path}: has {img.n_frames} frames; using the first", stacklevel=3)
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError) as exc:
        raise InpaintError(f"{path}: truncated or corrupt image ({exc})") from None
    return img


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """Any Pillow mode to ``uint8`` RGB ``(H, W, 3)``; transparency is composited on white."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # 16-bit (and 32-bit integer) grayscale: scale the 0..65535 range to 0..255.
        arr = np.asarray(img, dtype=np.float64)
        scale = 1.0 if img.mode == "F" and arr.max(initial=0) <= 1.0 else 65535.0
        arr = np.clip(np.round(arr / scale * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        img = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def read_image(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read any supported image as ``uint8`` RGB ``(H, W, 3)``.

    Grayscale, palette, CMYK and 16-bit images are converted; alpha is composited on white
    (use :func:`read_alpha_hole` to treat transparency as the hole instead).
    """
    return _to_rgb_array(_open(path, max_pixels))


@dataclass(frozen=True)
class Keep:
    """What a photo carries besides its 8-bit RGB pixels, written back where the output's format
    can carry it: the ICC colour profile, EXIF (orientation already applied, so reset to 1), the
    original RGBA pixels of a photo with transparency, and the 16-bit pixels of a 16-bit photo."""

    icc: bytes | None = None
    exif: bytes | None = None
    rgba: np.ndarray | None = None  # uint8 (H, W, 4)
    deep: np.ndarray | None = None  # uint16 (H, W, 3) or (H, W)


def read_photo(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, Keep]:
    """:func:`read_image`'s RGB array and what :func:`write_photo` should keep of the file."""
    img = _open(path, max_pixels)
    exif = img.getexif()
    rgba = None
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.uint8)
    icc = img.info.get("icc_profile") or None
    if icc is not None and icc[16:20] != b"RGB ":  # a CMYK or grey profile does not describe RGB pixels
        icc = None
    deep = _deep_pixels(path) if rgba is None else None
    return _to_rgb_array(img), Keep(icc, exif.tobytes() if len(exif) else None, rgba, deep)


def _deep_pixels(path: str | os.PathLike) -> np.ndarray | None:
    """The 16-bit pixels of a 16-bit PNG without an EXIF rotation (Pillow reads 16-bit colour as
    8-bit), else None."""
    with open(path, "rb") as handle:
        header = handle.read(26)
    if len(header) < 26 or not header.startswith(b"\x89PNG\r\n\x1a\n") or header[24] != 16:  # IHDR's bit depth
        return None
    with Image.open(path) as img:  # the header only
        if img.getexif().get(0x0112, 1) != 1:
            return None
    import cv2

    deep = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # as stored: no EXIF rotation
    if deep is None or deep.dtype != np.uint16 or not (deep.ndim == 2 or deep.shape[2] == 3):
        return None
    return deep if deep.ndim == 2 else np.ascontiguousarray(deep[..., ::-1])  # BGR -> RGB


def write_photo(path: str | os.PathLike, rgb: np.ndarray, keep: Keep, hole: np.ndarray, *, inputs: tuple = ()) -> Path:
    """Write an inpainted ``rgb`` with what ``keep`` holds of the original: its 16-bit pixels outside
    ``hole`` (PNG), its transparency outside the hole (PNG, WebP, TIFF; the fill is opaque),
    its ICC profile and EXIF (where the format has them)."""
    suffix = Path(path).suffix.lower()
    if keep.deep is not None and suffix == ".png" and keep.deep.shape[:2] == rgb.shape[:2]:
        deep = keep.deep.copy()
        fill = rgb.astype(np.uint16) * 257
        deep[hole] = fill[hole] if deep.ndim == 3 else _luma16(fill)[hole]
        return _write_deep(Path(path), deep, inputs)
    image = rgb
    if keep.rgba is not None and suffix in (".png", ".webp", ".tif", ".tiff"):
        image = keep.rgba.copy()
        image[hole, :3], image[hole, 3] = rgb[hole], 255
    return write_image(path, image, inputs=inputs, icc=keep.icc, exif=keep.exif)


def _luma16(rgb16: np.ndarray) -> np.ndarray:
    return np.round(rgb16 @ np.array([0.299, 0.587, 0.114])).clip(0, 65535).astype(np.uint16)


def _write_deep(path: Path, deep: np.ndarray, inputs: tuple) -> Path:
    import cv2

    refuse_inputs(path, inputs)
    pixels = deep if deep.ndim == 2 else np.ascontiguousarray(deep[..., ::-1])
    ok, encoded = cv2.imencode(path.suffix.lower(), pixels)
    if not ok:
        raise InpaintError(f"{path}: cannot encode a 16-bit image")
    return write_bytes(path, encoded.tobytes())


def read_alpha_hole(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The hole defined by an image's transparency: ``bool (H, W)``, True where alpha < 255."""
    img = _open(path, max_pixels)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode not in ("RGBA", "LA", "PA", "La", "RGBa"):
        raise InpaintError(f"{path}: has no alpha channel to use as the hole")
    return np.asarray(img.convert("RGBA"))[:, :, 3] < 255


def read_mask(
    path: str | os.PathLike,
    *,
    size: tuple[int, int] | None = None,
    resize: bool = False,
    invert: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read a mask of any mode as ``bool (H, W)``, True = hole.

    One rule for every format and depth: a pixel is hole when it is brighter than half the mask's
    brightest pixel (0/255, 0/1 label and 16-bit masks alike), so the faint values compression
    scatters around a JPEG or WebP mask's edges never grow the hole. A mask with
    transparency (a painted layer) uses alpha > 0 as the hole. ``size`` is the image's
    ``(height, width)``: a different mask size is a :class:`MaskSizeError` unless ``resize``
    (nearest neighbour). ``invert`` flips the convention (for masks where white = keep).
    """
    img = _open(path, max_pixels)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA") and np.asarray(img.getchannel("A")).min() < 255:
        hole = np.asarray(img.getchannel("A")) > 0
    else:
        if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
            values = np.asarray(img, dtype=np.float64)
        else:
            values = np.asarray(img.convert("RGB")).max(axis=2)
        hole = values > values.max(initial=0) / 2
    if size is not None and hole.shape != tuple(size):
        if not resize:
            raise MaskSizeError(f"{path}: mask is {hole.shape[1]}x{hole.shape[0]} but the image is {size[1]}x{size[0]}")
        resized = Image.fromarray(hole).resize((size[1], size[0]), Image.Resampling.NEAREST)
        hole = np.asarray(resized, dtype=bool)
    return ~hole if invert else hole


@dataclass(frozen=True)
class Existing:
    """The rule for outputs that already exist, for every command: refuse (so nothing is lost by
    accident), replace them (``--overwrite``), or leave them and write the rest (``--skip-existing``,
    to finish an interrupted folder)."""

    overwrite: bool = False
    skip: bool = False
    skippable: bool = False  # whether the command offers --skip-existing

    def __post_init__(self):
        if self.overwrite and self.skip:
            raise InpaintError("--overwrite and --skip-existing contradict each other; choose one")

    def check(self, outputs: list[Path]) -> set[Path]:
        """The outputs to leave alone (``skip``); raises if one exists and neither flag is set, or if
        a file stands where one of their folders would be (refused now, not after the work)."""
        for folder in {p.parent for p in outputs}:
            if file := next((f for f in (folder, *folder.parents) if f.exists() and not f.is_dir()), None):
                raise InpaintError(f"{file}: exists and is not a folder")
        done = [p for p in outputs if os.path.lexists(p)]  # a dangling or looping link is there too
        if not done or self.overwrite:
            return set()
        if self.skip:
            return set(done)
        more = f" (and {len(done) - 1} more)" if len(done) > 1 else ""
        hint = "--overwrite to replace" + (", or --skip-existing to write the rest" if self.skippable else "")
        raise InpaintError(f"{done[0]}{more} already exists; pass {hint}")


# The process's umask, read once at import (reading it means setting it, which is not thread-safe).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def part_prefix(path: Path) -> str:
    """How the temporary files of a write of ``path`` begin: the name's start and a digest of all of
    it, so a temporary file of the longest legal name still has a legal name."""
    return f".{path.name[:64]}.{hashlib.sha1(path.name.encode()).hexdigest()[:8]}."


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """The one way files are written: into a temporary file beside ``path``, synced, then renamed
    over it. A kill, a full disk or an exception leaves the old file (or none), never half of one;
    the temporary file is removed on failure, and one a killed run left behind is removed by the
    next write of the same path (one writer per path at a time). The file gets the permissions the
    user's umask gives new files. Parent folders are created. A folder that cannot be made or
    written, and an ``OSError`` while writing (a full disk), are an :class:`InpaintError`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        prefix = part_prefix(path)
        for stale in path.parent.glob(glob.escape(prefix) + "*.part"):
            stale.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_UMASK)
    except OSError as exc:
        raise InpaintError(f"{path}: cannot write there ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InpaintError(f"{path}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes | str) -> Path:
    """``data`` (text is written as UTF-8) written atomically to ``path`` (see :func:`atomic_write`)."""
    with atomic_write(path) as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
    return Path(path)


def write_csv(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Rows of dicts as CSV (columns in order of first appearance), written atomically."""
    import csv
    import io

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
    writer.writeheader()
    writer.writerows(rows)
    return write_bytes(path, text.getvalue())


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop, which is no input
        return False


def refuse_inputs(path: str | os.PathLike, inputs: tuple[str | os.PathLike, ...]) -> None:
    """An output never replaces an input, whatever path (or symlink) names it."""
    for source in inputs:
        if _same_file(Path(path), Path(source)):
            raise InpaintError(f"{path}: output would overwrite an input file; choose another output path")


def output_format(path: Path) -> tuple[str, dict]:
    """Pillow's format name and save options for an image written to ``path`` (by its suffix)."""
    if path.is_dir():
        raise InpaintError(f"{path}: is a folder; name an output file such as {path / 'result.png'}")
    suffix = path.suffix.lower()
    if suffix not in _WRITE_OPTIONS:
        raise InpaintError(
            f"{path}: unsupported output format {suffix or '(none)'}; use one of {', '.join(_WRITE_OPTIONS)}"
        )
    return _WRITE_OPTIONS[suffix]


def write_image(
    path: str | os.PathLike,
    image: np.ndarray,
    *,
    inputs: tuple[str | os.PathLike, ...] = (),
    icc: bytes | None = None,
    exif: bytes | None = None,
) -> Path:
    """Write ``uint8`` RGB ``(H, W, 3)``, RGBA ``(H, W, 4)`` (formats with transparency) or a
    ``bool``/``uint8`` ``(H, W)`` array atomically, with an ICC profile and EXIF where the format
    has them.

    The file appears complete or not at all (temporary file in the same folder, then rename).
    Parent folders are created. Refuses to write over any of ``inputs``.
    """
    path = Path(path)
    fmt, options = output_format(path)
    refuse_inputs(path, inputs)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.dtype != np.uint8:
        raise TypeError(f"write_image expects uint8 or bool, got {image.dtype}")
    picture = Image.fromarray(image)
    extra = {"icc_profile": icc} if icc and fmt != "BMP" else {}
    if exif and fmt != "BMP" and not (fmt == "JPEG" and len(exif) > 65533):  # JPEG's APP1 segment limit
        extra["exif"] = exif
    with atomic_write(path) as handle:
        picture.save(handle, format=fmt, **options, **extra)
    return path


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` (by suffix), sorted for reproducibility."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InpaintError(f"{folder}: folder not found")
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
