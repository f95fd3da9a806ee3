"""Edits that make a hole: canvas extension (outpainting) and click-to-select an object.

Both return ``bool (H, W)`` holes (True = fill) and are shared by the CLI, the Python API and the
app. Selection is classical (OpenCV's GrabCut), so nothing is downloaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from inpaintkit.errors import InpaintError

SIDES = ("left", "top", "right", "bottom")
MAX_EXTEND = 8192  # pixels added on one side at most


@dataclass(frozen=True)
class Extension:
    """Pixels added on each side of a photo, or a width-to-height ``aspect`` to reach by adding
    equally to two opposite sides; the added border is the hole."""

    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0
    aspect: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Extension:
        """``left=128,right=128`` (sides in any order), ``all=64`` or ``aspect=16:9``."""
        bad = f"extend {text!r}: write side=pixels, e.g. left=128,right=128, all=64 or aspect=16:9"
        values: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            side, _, amount = (v.strip() for v in part.partition("="))
            ratio = re.fullmatch(r"(\d{1,5}):(\d{1,5})", amount)
            if side.lower() == "aspect" and ratio and int(ratio[1]) and int(ratio[2]) and len(text.split(",")) == 1:
                return cls(aspect=int(ratio[1]) / int(ratio[2]))
            if side.lower() not in (*SIDES, "all") or not amount.isdecimal() or len(amount) > 6:
                raise InpaintError(bad)
            values[side.lower()] = int(amount)
        if not values:
            raise InpaintError(bad)
        everywhere = values.pop("all", 0)
        return cls(**{side: values.get(side, everywhere) for side in SIDES}).fit(1, 1)

    @property
    def sides(self) -> tuple[int, int, int, int]:
        return self.left, self.top, self.right, self.bottom

    def fit(self, height: int, width: int) -> Extension:
        """The sides for a ``height`` x ``width`` photo (checked: each in 0..MAX_EXTEND, one above 0)."""
        ext = self
        if self.aspect and width / height < self.aspect:  # too narrow: add columns
            extra = round(height * self.aspect) - width
            ext = Extension(left=extra // 2, right=extra - extra // 2)
        elif self.aspect:
            extra = round(width / self.aspect) - height
            ext = Extension(top=extra // 2, bottom=extra - extra // 2)
        if any(not 0 <= v <= MAX_EXTEND for v in ext.sides):
            raise InpaintError(f"extend each side by 0 to {MAX_EXTEND} pixels, got {ext.sides}")
        if not any(ext.sides):
            already = " (the photo has that aspect already)" if self.aspect else ""
            raise InpaintError(f"extend at least one side by at least one pixel{already}")
        return ext

    def apply(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(bigger image, hole)``: the photo in the middle, its edge pixels repeated into the border
        (hidden from the model; the runner never shows it hole pixels)."""
        ext = self.fit(*image.shape[:2])
        pad = ((ext.top, ext.bottom), (ext.left, ext.right)) + ((0, 0),) * (image.ndim - 2)
        bigger = np.pad(image, pad, mode="edge")
        hole = np.ones(bigger.shape[:2], bool)
        hole[ext.top : ext.top + image.shape[0], ext.left : ext.left + image.shape[1]] = False
        return bigger, hole


def parse_points(text: str) -> list[tuple[int, int]]:
    """``120,80`` or ``120,80;300,40``: pixel coordinates ``x,y`` of the photo."""
    points = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        match = re.fullmatch(r"(\d{1,6})\s*,\s*(\d{1,6})", part)
        if not match:
            raise InpaintError(f"point {part!r}: write x,y in pixels, several separated by ';'")
        points.append((int(match[1]), int(match[2])))
    return points


def select_object(
    image: np.ndarray,
    include: list[tuple[int, int]],
    exclude: list[tuple[int, int]] = (),
    dilate: int = 8,
    work_pixels: int = 512 * 512,
) -> np.ndarray:
    """The object under the ``include`` points (``x, y`` in pixels), without what is under
    ``exclude``, as a hole grown by ``dilate`` px: GrabCut (Rother et al., 2004) started from the
    labels below. Runs on a copy of at most ``work_pixels``; only the regions connected to an
    included point are kept."""
    import cv2

    h, w = image.shape[:2]
    if not include:
        raise InpaintError("click at least one point on the object to select")
    for x, y in (*include, *exclude):
        if not (0 <= x < w and 0 <= y < h):
            raise InpaintError(f"point {x},{y} is outside the {w}x{h} photo")
    if not 0 <= dilate <= 512:
        raise InpaintError(f"dilate by 0 to 512 pixels, got {dilate}")
    scale = min(1.0, (work_pixels / (h * w)) ** 0.5)
    sw, sh = max(8, round(w * scale)), max(8, round(h * scale))
    small = cv2.resize(np.ascontiguousarray(image[..., :3]), (sw, sh), interpolation=cv2.INTER_AREA)
    # Certain background outside a window around the included points (their bounding box grown by
    # a fifth of the photo), so a click never selects half the scene; probably background inside it,
    # probably foreground in a disc around each included point, certain at the points themselves.
    labels = np.full((sh, sw), cv2.GC_BGD, np.uint8)
    xs, ys = [round(x * sw / w) for x, _ in include], [round(y * sh / h) for _, y in include]
    grow_x, grow_y = max(8, sw // 5), max(8, sh // 5)
    rows, cols = (
        slice(max(0, min(ys) - grow_y), max(ys) + grow_y + 1),
        slice(max(0, min(xs) - grow_x), max(xs) + grow_x + 1),
    )
    labels[rows, cols] = cv2.GC_PR_BGD
    radius = max(2, round(min(sh, sw) * 0.01))
    seeds = [((x, y), cv2.GC_FGD) for x, y in zip(xs, ys, strict=True)]
    seeds += [((round(x * sw / w), round(y * sh / h)), cv2.GC_BGD) for x, y in exclude]
    for center, _ in seeds[: len(include)]:
        cv2.circle(labels, center, max(3 * radius, min(sh, sw) // 16), int(cv2.GC_PR_FGD), -1)
    for center, label in seeds:
        cv2.circle(labels, center, radius, int(label), -1)
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(small, labels, None, background, foreground, 5, cv2.GC_INIT_WITH_MASK)
    chosen = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    _, parts = cv2.connectedComponents(chosen, connectivity=8)
    keep = {parts[c[1], c[0]] for c, label in seeds if label == cv2.GC_FGD} - {0}
    chosen = np.isin(parts, list(keep)).astype(np.uint8)
    hole = cv2.resize(chosen, (w, h), interpolation=cv2.INTER_LINEAR) > 0
    if dilate:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1, 2 * dilate + 1))
        hole = cv2.dilate(hole.astype(np.uint8), disc) > 0
    return hole
