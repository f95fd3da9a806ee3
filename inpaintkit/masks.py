"""Mask generators: pure functions of ``(height, width, rng)`` plus named presets and mixtures.

Every generator returns ``float32 (H, W)`` with 1 = hole and takes an explicit
``numpy.random.Generator``: the same seed gives the same bytes. A spec string names one preset or a
mixture by probability, e.g. ``"lama-thick:0.5,blocks:0.5"``; ``"folder=DIR"`` draws masks from files.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from inpaintkit.errors import InpaintError

MaskFn = Callable[[int, int, np.random.Generator], np.ndarray]


def center(height: int, width: int, rng: np.random.Generator, fraction: float = 0.5) -> np.ndarray:
    """A centred square whose side is ``fraction`` of the shorter image side (the context-encoder task)."""
    mask = np.zeros((height, width), np.float32)
    side = max(1, round(min(height, width) * fraction))
    top, left = (height - side) // 2, (width - side) // 2
    mask[top : top + side, left : left + side] = 1
    return mask


def blocks(
    height: int,
    width: int,
    rng: np.random.Generator,
    count: tuple[int, int] = (1, 9),
    sizes: Sequence[int] = (32, 64),
    shapes: Sequence[str] = ("square", "circle"),
) -> np.ndarray:
    """``count`` squares or circles of a side from ``sizes`` at random positions (landscape U-Net task)."""
    mask = np.zeros((height, width), np.float32)
    for _ in range(int(rng.integers(count[0], count[1] + 1))):
        side = min(int(rng.choice(sizes)), height, width)
        shape = str(rng.choice(shapes))
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        if shape == "square":
            mask[top : top + side, left : left + side] = 1
        else:
            cv2.circle(mask, (left + side // 2, top + side // 2), side // 2, 1.0, thickness=-1)
    return mask


def box(
    height: int, width: int, rng: np.random.Generator, side: tuple[int, int] = (32, 32), margin: int = 0
) -> np.ndarray:
    """One square with a side drawn from ``side`` (inclusive), at least ``margin`` px from the border."""
    mask = np.zeros((height, width), np.float32)
    limit = min(height, width) - 2 * margin
    s = min(int(rng.integers(side[0], side[1] + 1)), limit)
    top = int(rng.integers(margin, height - margin - s + 1))
    left = int(rng.integers(margin, width - margin - s + 1))
    mask[top : top + s, left : left + s] = 1
    return mask


def strokes(
    height: int,
    width: int,
    rng: np.random.Generator,
    count: tuple[int, int] = (1, 4),
    vertices: tuple[int, int] = (4, 12),
    brush: tuple[float, float] = (12 / 256, 40 / 256),
    brush_px: int = 0,
) -> np.ndarray:
    """Free-form brush strokes in the manner of DeepFill v2 (Yu et al., 2019): jittered polylines
    drawn with a round brush. ``brush`` is the width range as a fraction of the shorter side, unless
    ``brush_px`` fixes it in pixels."""
    mask = np.zeros((height, width), np.float32)
    mean_angle, angle_range = 2 * math.pi / 5, 2 * math.pi / 15
    radius = math.hypot(height, width) / 8
    short = min(height, width)
    for _ in range(int(rng.integers(count[0], count[1] + 1))):
        n = int(rng.integers(vertices[0], vertices[1] + 1))
        lo = mean_angle - rng.uniform(0, angle_range)
        hi = mean_angle + rng.uniform(0, angle_range)
        w = brush_px or max(1, int(rng.uniform(brush[0], brush[1]) * short))
        points = [(int(rng.integers(0, width)), int(rng.integers(0, height)))]
        for i in range(n):
            angle = rng.uniform(lo, hi)
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            r = float(np.clip(rng.normal(radius, radius / 2), 0, 2 * radius))
            x = int(np.clip(points[-1][0] + r * math.cos(angle), 0, width - 1))
            y = int(np.clip(points[-1][1] + r * math.sin(angle), 0, height - 1))
            points.append((x, y))
        for a, b in zip(points[:-1], points[1:], strict=True):
            cv2.line(mask, a, b, 1.0, w)
        for p in points:
            cv2.circle(mask, p, w // 2, 1.0, thickness=-1)
    if rng.random() < 0.5:
        mask = mask[:, ::-1]
    if rng.random() < 0.5:
        mask = mask[::-1, :]
    return np.ascontiguousarray(mask)


def lama_polylines(
    height: int,
    width: int,
    rng: np.random.Generator,
    times: tuple[int, int],
    max_width: int,
    max_len: int,
    max_angle: int = 4,
) -> np.ndarray:
    """LaMa's random irregular mask: polylines of 1-5 segments, length ``10 + randint(max_len)``,
    width ``5 + randint(max_width)``, angle ``0.01 + randint(max_angle)`` radians."""
    mask = np.zeros((height, width), np.float32)
    for i in range(int(rng.integers(times[0], times[1] + 1))):
        x, y = int(rng.integers(width)), int(rng.integers(height))
        for _ in range(1 + int(rng.integers(5))):
            angle = 0.01 + int(rng.integers(max_angle))
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            length = 10 + int(rng.integers(max_len))
            brush = 5 + int(rng.integers(max_width))
            end_x = int(np.clip(x + length * math.sin(angle), 0, width))
            end_y = int(np.clip(y + length * math.cos(angle), 0, height))
            cv2.line(mask, (x, y), (end_x, end_y), 1.0, brush)
            x, y = end_x, end_y
    return mask


def lama_boxes(
    height: int,
    width: int,
    rng: np.random.Generator,
    times: tuple[int, int],
    size: tuple[int, int],
    margin: int,
) -> np.ndarray:
    """LaMa's random rectangles: ``times`` boxes with sides in ``[size[0], size[1])``."""
    mask = np.zeros((height, width), np.float32)
    largest = max(size[0] + 1, min(size[1], height - 2 * margin, width - 2 * margin))
    for _ in range(int(rng.integers(times[0], times[1] + 1))):
        bw, bh = int(rng.integers(size[0], largest)), int(rng.integers(size[0], largest))
        left = int(rng.integers(margin, max(margin + 1, width - margin - bw + 1)))
        top = int(rng.integers(margin, max(margin + 1, height - margin - bh + 1)))
        mask[top : top + bh, left : left + bw] = 1
    return mask


# LaMa's published evaluation mask settings (Suvorov et al., 2022; configs/data_gen/random_*_{256,512}.yaml):
# polylines (min times, max times, max width, max length) and boxes (min, max times, min size, max size, margin).
MAX_MASK_SIDE = 16384  # masks are drawn as float32 squares: 1 GiB at this side

_LAMA = {
    ("thin", 256): ((4, 50, 10, 40), None),
    ("medium", 256): ((4, 5, 50, 100), (1, 5, 10, 50, 0)),
    ("thick", 256): ((1, 5, 100, 200), (1, 3, 30, 150, 10)),
    ("thin", 512): ((4, 70, 20, 100), None),
    ("medium", 512): ((4, 10, 100, 200), (1, 5, 30, 150, 0)),
    ("thick", 512): ((1, 5, 250, 450), (1, 4, 30, 300, 10)),
    # LaMa's training mix ("wide" masks): strokes up to 100 px wide and 200 long, boxes 30-150 px.
    ("wide", 256): ((1, 5, 100, 200), (1, 4, 30, 150, 10)),
}
_LAMA_BOX_PROBABILITY = 0.3  # relative to the polylines' 1.0, as in LaMa's MixedMaskGenerator


def lama(height: int, width: int, rng: np.random.Generator, kind: str = "thick") -> np.ndarray:
    """A LaMa-style mask: polylines, or (probability 0.3/1.3 when the set has them) boxes.

    Parameters are the published ones at 256 and 512 px; other sizes scale the nearer set. Masks
    covering more than half the image are redrawn, as LaMa's test set does.
    """
    base = 512 if min(height, width) > 384 and (kind, 512) in _LAMA else 256
    lines, boxes = _LAMA[(kind, base)]
    k = min(height, width) / base
    for _ in range(100):
        if boxes is not None and rng.random() < _LAMA_BOX_PROBABILITY / (1 + _LAMA_BOX_PROBABILITY):
            lo, hi, smin, smax, margin = boxes
            mask = lama_boxes(
                height, width, rng, (lo, hi), (max(1, round(smin * k)), round(smax * k)), round(margin * k)
            )
        else:
            lo, hi, max_w, max_len = lines
            mask = lama_polylines(height, width, rng, (lo, hi), max(1, round(max_w * k)), round(max_len * k))
        if mask.mean() <= 0.5:
            return mask
    return mask


def outpaint(
    height: int,
    width: int,
    rng: np.random.Generator,
    sides: Sequence[str] = ("left", "right", "top", "bottom"),
    fraction: tuple[float, float] = (0.1, 0.35),
) -> np.ndarray:
    """Bands along a random non-empty subset of ``sides``, each ``fraction`` of that dimension deep."""
    mask = np.zeros((height, width), np.float32)
    chosen = [s for s in sides if rng.random() < 0.5] or [str(rng.choice(list(sides)))]
    for side in chosen:
        depth = rng.uniform(*fraction)
        if side == "left":
            mask[:, : max(1, round(width * depth))] = 1
        elif side == "right":
            mask[:, width - max(1, round(width * depth)) :] = 1
        elif side == "top":
            mask[: max(1, round(height * depth)), :] = 1
        elif side == "bottom":
            mask[height - max(1, round(height * depth)) :, :] = 1
        else:
            raise ValueError(f"unknown side {side!r}")
    return mask


class FolderMasks:
    """Masks read from PNG files in a folder (sorted), resized with nearest neighbour to the image."""

    def __init__(self, folder: str | Path):
        from inpaintkit.io import list_images

        self.folder = Path(folder)
        self.files = list_images(self.folder, recursive=False)
        if not self.files:
            raise InpaintError(f"{self.folder}: no mask images in this folder")

    def load(self, index: int, height: int, width: int) -> np.ndarray:
        """Mask file ``index`` (modulo the count) at ``(height, width)``."""
        from inpaintkit.io import read_mask

        hole = read_mask(self.files[index % len(self.files)], size=(height, width), resize=True)
        return hole.astype(np.float32)

    def __call__(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        return self.load(int(rng.integers(len(self.files))), height, width)


PRESETS: dict[str, tuple[MaskFn, str]] = {
    "center": (center, "centred square, half the shorter side (context encoder)"),
    "blocks": (blocks, "1-9 squares or circles of 32 or 64 px (landscape U-Net)"),
    "box": (partial(box, side=(32, 32), margin=16), "one 32 px square at least 16 px from the border"),
    "strokes": (strokes, "free-form brush strokes (DeepFill v2 style)"),
    "lama-thin": (partial(lama, kind="thin"), "LaMa test masks: many narrow strokes"),
    "lama-medium": (partial(lama, kind="medium"), "LaMa test masks: medium strokes or small boxes"),
    "lama-thick": (partial(lama, kind="thick"), "LaMa test masks: wide strokes or large boxes"),
    "lama-wide": (partial(lama, kind="wide"), "LaMa training mix: wide strokes and boxes"),
    "outpaint": (outpaint, "bands along one or more image borders"),
}


# What each preset takes in a spec ("box:min=1,max=90"): parameter -> (kind, lowest, highest, meaning),
# and how the values become the generator's keywords (a parameter not given keeps the preset's value).
_PX = MAX_MASK_SIDE
PARAMETERS: dict[str, dict[str, tuple[type, float, float, str]]] = {
    "center": {"fraction": (float, 0.01, 1.0, "side as a fraction of the shorter image side")},
    "blocks": {"count": (int, 1, 1000, "how many blocks"), "size": (int, 1, _PX, "side of each block in px"),
               "shape": (str, 0, 0, "square, circle or any")},
    "box": {"min": (int, 1, _PX, "smallest side in px"), "max": (int, 1, _PX, "largest side in px"),
            "margin": (int, 0, _PX, "distance from the border in px")},
    "strokes": {"count": (int, 1, 100, "how many strokes"), "width": (int, 1, _PX, "brush width in px")},
    "outpaint": {"min": (float, 0.0, 1.0, "shallowest band, fraction of the side"),
                 "max": (float, 0.0, 1.0, "deepest band, fraction of the side")},
}  # fmt: skip
SHAPES = {"square": ("square",), "circle": ("circle",), "any": ("square", "circle")}


def _range(name: str, given: dict, low: float, high: float) -> tuple:
    """``(min, max)`` from the given bounds, the preset's own filling in the other."""
    low = given.get("min", min(low, given.get("max", low)))
    high = given.get("max", max(high, low))
    if low > high:
        raise InpaintError(f"mask preset {name}: min {low} is over max {high}")
    return low, high


def _keywords(name: str, given: dict) -> dict:
    """The generator's keyword arguments for a preset's parameters."""
    kw = {"count": (given["count"],) * 2} if "count" in given else {}
    if name == "center":
        return {"fraction": given["fraction"]} if "fraction" in given else {}
    if name == "blocks":
        kw |= {"sizes": (given["size"],)} if "size" in given else {}
        return kw | ({"shapes": SHAPES[given["shape"]]} if "shape" in given else {})
    if name == "box":
        return {"side": _range(name, given, 32, 32), "margin": given.get("margin", 16)}
    if name == "strokes":
        return kw | ({"brush_px": given["width"]} if "width" in given else {})
    return {"fraction": _range(name, given, 0.1, 0.35)}


def _parameter(name: str, key: str, raw: str):
    """One ``key=value`` of preset ``name``, converted and range-checked."""
    takes = PARAMETERS.get(name, {})
    if key not in takes:
        offered = f"it takes {', '.join(takes)}" if takes else "it takes no parameters"
        raise InpaintError(f"mask preset {name} has no parameter {key!r}; {offered}")
    kind, low, high, meaning = takes[key]
    if kind is str:
        if raw not in SHAPES:
            raise InpaintError(f"mask preset {name}: {key}={raw!r}; choose from {', '.join(SHAPES)}")
        return raw
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        whole = "a whole number" if kind is int else "a number"
        raise InpaintError(f"mask preset {name}: {key}={raw!r} must be {whole} from {low:g} to {high:g} ({meaning})")
    return value


class MaskGenerator:
    """A spec string turned into a callable ``(height, width, rng) -> float32 (H, W)``.

    ``"strokes"``, ``"lama-thick:0.5,blocks:0.5"`` (probabilities are normalised), ``"folder=DIR"``,
    and presets with parameters: ``"box:min=1,max=90"``, ``"blocks:count=5,size=40"``,
    ``"strokes:width=20,p=0.3,center:p=0.7"`` (``p`` is the probability in a mixture).
    """

    def __init__(self, spec: str):
        self.spec = spec.strip()
        parts: list[list] = []  # [name, weight, {parameter: value}]
        for part in filter(None, (p.strip() for p in self.spec.split(","))):
            if part.startswith("folder="):
                parts.append([part, 1.0, {}])
                continue
            name, _, rest = part.partition(":") if ":" in part else ("", "", part)
            if not name and "=" not in part:
                name, rest = part, ""
            if name:
                parts.append([name, 1.0, {}])
            elif not parts:
                raise InpaintError(f"mask spec {spec!r}: {part!r} comes before any preset")
            if rest and "=" not in rest:
                parts[-1][1] = self._weight(spec, rest)
            elif rest:
                key, _, raw = (v.strip() for v in rest.partition("="))
                if key == "p":
                    parts[-1][1] = self._weight(spec, raw)
                else:
                    parts[-1][2][key] = _parameter(parts[-1][0], key, raw)
        if not parts:
            raise InpaintError("mask spec is empty")
        self._fns = [self._build(name, given) for name, _, given in parts]
        total = sum(weight for _, weight, _ in parts)
        if total <= 0:
            raise InpaintError(f"mask spec {spec!r}: probabilities sum to zero")
        self.names = [name for name, _, _ in parts]
        self.probabilities = np.array([weight for _, weight, _ in parts]) / total

    @staticmethod
    def _weight(spec: str, raw: str) -> float:
        try:
            weight = float(raw)
        except ValueError:
            raise InpaintError(f"mask spec {spec!r}: probability {raw!r} is not a number") from None
        if not weight >= 0 or weight == float("inf"):
            raise InpaintError(f"mask spec {spec!r}: probability {raw!r} must be 0 or more")
        return weight

    @staticmethod
    def _build(name: str, given: dict) -> MaskFn:
        if name.startswith("folder="):
            return FolderMasks(name.removeprefix("folder="))
        if name not in PRESETS:
            raise InpaintError(f"unknown mask preset {name!r}; choose from {', '.join(PRESETS)} or folder=DIR")
        fn = PRESETS[name][0]
        if not given:
            return fn
        return partial(getattr(fn, "func", fn), **(getattr(fn, "keywords", {}) | _keywords(name, given)))

    def __call__(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        i = int(rng.choice(len(self._fns), p=self.probabilities)) if len(self._fns) > 1 else 0
        return self._fns[i](height, width, rng)

    def sample(self, index: int, height: int, width: int, seed: int) -> np.ndarray:
        """Mask number ``index`` of the set seeded by ``seed``: independent of how many are drawn."""
        return self(height, width, np.random.default_rng([seed, index]))


def bounding_box(hole: np.ndarray, margin: int = 0) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of the hole pixels of ``bool (H, W)``, grown by ``margin`` px
    and clipped to the image (the hole must not be empty)."""
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    h, w = hole.shape
    return (
        max(0, int(rows[0]) - margin), min(h, int(rows[-1]) + 1 + margin),
        max(0, int(cols[0]) - margin), min(w, int(cols[-1]) + 1 + margin),
    )  # fmt: skip


def hole_ratio(mask: np.ndarray) -> float:
    return float(np.asarray(mask, dtype=np.float64).mean())
