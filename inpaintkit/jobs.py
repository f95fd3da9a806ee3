"""Files in, files out: which photo goes with which mask and which output, for ``inpaint`` and
``apply``, and the one function each uses to turn one photo into one written result."""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from inpaintkit.errors import InpaintError
from inpaintkit.inference import InpaintOptions, apply_array, inpaint_array
from inpaintkit.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    Existing,
    list_images,
    read_alpha_hole,
    read_image,
    read_mask,
    read_photo,
    refuse_inputs,
    write_image,
    write_photo,
)


@dataclass(frozen=True)
class Job:
    photo: Path
    target: Path


@dataclass(frozen=True)
class HoleSource:
    """Where each photo's hole comes from: a mask file, a folder of masks matched by file name,
    and/or the photo's own transparency."""

    mask: Path | None = None
    invert: bool = False  # masks mark what to keep
    resize: bool = False  # a mask of another size is resized (nearest neighbour) instead of refused
    alpha: bool = False  # transparent pixels of the photo are (also) the hole
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self):
        if self.mask is None and not self.alpha:
            raise InpaintError("no hole given: pass --mask MASK (or --alpha-hole to use the photo's transparency)")
        if self.mask is not None and not self.mask.exists():
            raise InpaintError(f"{self.mask}: file not found")

    def mask_for(self, photo: Path) -> Path | None:
        if self.mask is None or not self.mask.is_dir():
            return self.mask
        for suffix in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES):
            candidate = self.mask / f"{photo.stem}{suffix}"
            if candidate.is_file():
                return candidate
        raise InpaintError(f"{photo}: no mask with the same name in {self.mask}")

    def read(self, photo: Path, size: tuple[int, int]):
        """``(hole bool (H, W), the files it was read from)`` for ``photo`` of ``size``."""
        mask_path = self.mask_for(photo)
        hole = None
        if mask_path is not None:
            hole = read_mask(mask_path, size=size, resize=self.resize, invert=self.invert, max_pixels=self.max_pixels)
        if self.alpha:
            alpha = read_alpha_hole(photo, max_pixels=self.max_pixels)
            hole = alpha if hole is None else hole | alpha
        return hole, (photo,) + ((mask_path,) if mask_path is not None else ())


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise InpaintError(f"{path}: cannot resolve the path (a symlink loop?)") from None


def plan(source: Path, output: Path | None, suffix: str = "-inpainted", existing: Existing = Existing()) -> list[Job]:
    """One job per photo: ``source`` is a photo (output defaults to ``<stem><suffix>.png`` beside it)
    or a folder (outputs mirror it as PNGs under ``output``, default ``<folder><suffix>``). Photos
    that would share an output name (``a.jpg`` and ``a.png``) keep their format in it
    (``a-jpg.png``, ``a-png.png``). An output folder inside the input folder is refused: a rerun
    would fill the results again. Existing outputs follow ``existing``."""
    if not source.exists():
        raise InpaintError(f"{source}: file not found")
    if not source.is_dir():
        target = output or source.with_name(f"{source.stem}{suffix}.png")
        refuse_inputs(target, (source,))
        return [Job(source, target)] if target not in existing.check([target]) else []
    photos = list_images(source)
    if not photos:
        raise InpaintError(f"{source}: no images found")
    out_dir = output or source.with_name(source.name + suffix)
    if out_dir.exists() and not out_dir.is_dir():
        raise InpaintError(f"{out_dir}: exists and is not a folder")
    if _resolved(out_dir).is_relative_to(_resolved(source)):
        raise InpaintError(
            f"{out_dir}: the output folder is inside the input folder {source}; a rerun would fill the results "
            "again; choose a folder outside it"
        )
    names = [p.relative_to(source).with_suffix(".png") for p in photos]
    shared = {n for n, count in Counter(names).items() if count > 1}
    targets = [
        out_dir / (n.with_name(f"{n.stem}-{p.suffix.lstrip('.')}.png") if n in shared else n)
        for p, n in zip(photos, names, strict=True)
    ]
    skip = existing.check(targets)
    return [Job(p, t) for p, t in zip(photos, targets, strict=True) if t not in skip]


def inpaint_file(model, job: Job, holes: HoleSource, options: InpaintOptions) -> Path:
    """Fill ``job.photo``'s hole and write the result; an empty mask writes the photo unchanged."""
    rgb, keep = read_photo(job.photo, max_pixels=holes.max_pixels)
    hole, inputs = holes.read(job.photo, rgb.shape[:2])
    if not hole.any():
        warnings.warn(f"{job.photo}: the mask is empty; the image is written unchanged", stacklevel=2)
    return write_photo(job.target, inpaint_array(model, rgb, hole, options), keep, hole, inputs=inputs)


def apply_file(model, job: Job) -> Path:
    """Run an image-to-image model on ``job.photo`` and write its output."""
    return write_image(job.target, apply_array(model, read_image(job.photo)), inputs=(job.photo,))
