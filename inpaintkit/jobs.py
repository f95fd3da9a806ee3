"""Files in, files out: which photo goes with which mask and which output, for ``inpaint`` and
``apply``, and the one function each uses to turn one photo into one written result."""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inpaintkit.editing import Extension, select_object
from inpaintkit.errors import InpaintError
from inpaintkit.inference import InpaintOptions, apply_array, inpaint_array
from inpaintkit.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    Existing,
    Keep,
    check_pixels,
    list_images,
    output_format,
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
    """Where each photo's hole comes from: a mask file, a folder of masks matched by file name, the
    photo's own transparency, an object selected by points, and/or a border added around it."""

    mask: Path | None = None
    invert: bool = False  # masks mark what to keep
    resize: bool = False  # a mask of another size is resized (nearest neighbour) instead of refused
    alpha: bool = False  # transparent pixels of the photo are (also) the hole
    max_pixels: int = DEFAULT_MAX_PIXELS
    select: tuple[tuple[int, int], ...] = ()  # x, y of points on an object to remove (editing.select_object)
    exclude: tuple[tuple[int, int], ...] = ()  # points the selected object must not include
    dilate: int = 8  # px the selected object's hole is grown by
    extend: Extension | None = None  # a border added around the photo, filled as a hole

    def __post_init__(self):
        if self.exclude and not self.select:
            raise InpaintError("points to exclude refine a selection: give points on the object to select too")
        if self.mask is None and not (self.alpha or self.select or self.extend):
            raise InpaintError(
                "no hole given: pass --mask MASK, --select x,y (an object), --extend side=px (a border) or "
                "--alpha-hole (the photo's transparency)"
            )
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

    def read(self, photo: Path, rgb: np.ndarray, keep: Keep = Keep(), hole: np.ndarray | None = None):
        """``(rgb, hole, keep, the files read)`` for ``photo`` read as ``rgb`` and ``keep``: the hole
        from every source (added to ``hole``, one painted by hand), and with ``extend`` the photo
        with its border (what ``keep`` holds of pixels then no longer fits and is dropped; the
        profile and EXIF stay)."""
        mask_path = self.mask_for(photo)
        hole = np.zeros(rgb.shape[:2], bool) if hole is None else hole.copy()
        if mask_path is not None:
            limit = self.max_pixels  # a mask of another size raises MaskSizeError, which each front end explains
            hole |= read_mask(mask_path, size=hole.shape, resize=self.resize, invert=self.invert, max_pixels=limit)
        if self.alpha:
            hole |= read_alpha_hole(photo, max_pixels=self.max_pixels)
        if self.select:
            hole |= select_object(rgb, list(self.select), list(self.exclude), self.dilate)
        if self.extend is not None:
            ext = self.extend.fit(*rgb.shape[:2])
            width, height = rgb.shape[1] + ext.left + ext.right, rgb.shape[0] + ext.top + ext.bottom
            check_pixels(f"{photo}: with its border the photo", width, height, self.max_pixels)
            rgb, border = self.extend.apply(rgb)
            hole = np.pad(hole, ((ext.top, ext.bottom), (ext.left, ext.right))) | border
            keep = Keep(keep.icc, keep.exif)
        return rgb, hole, keep, (photo,) + ((mask_path,) if mask_path is not None else ())


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
        output_format(target)  # before any fill: a bad name would waste it
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
    rgb, hole, keep, inputs = holes.read(job.photo, *read_photo(job.photo, max_pixels=holes.max_pixels))
    if not hole.any():
        warnings.warn(f"{job.photo}: the mask is empty; the image is written unchanged", stacklevel=2)
    elif hole.all():
        warnings.warn(f"{job.photo}: the mask covers the whole photo; with nothing to copy from, the fill is flat",
                      stacklevel=2)  # fmt: skip
    return write_photo(job.target, inpaint_array(model, rgb, hole, options), keep, hole, inputs=inputs)


def apply_file(model, job: Job) -> Path:
    """Run an image-to-image model on ``job.photo`` and write its output."""
    return write_image(job.target, apply_array(model, read_image(job.photo)), inputs=(job.photo,))
