"""What the editor page runs besides its Gradio layout: one person's session (photo versions for
undo and redo across fills, selection points), how the hole is shown, and the page's scripts."""

from __future__ import annotations

import re

import numpy as np

from inpaintkit.io import read_mask

HISTORY = 50  # photo versions kept for undo and redo
HOLE_COLOUR, HOLE_OPACITY = "#ff00ff", 0.55  # how the hole is shown until a person picks another


class Session:
    """One person's photo versions (undo and redo across fills) and selection points, kept in
    ``gr.State``; files live in the app's folder."""

    def __init__(self, original: str, name: str):
        self.versions, self.index, self.name = [original], 0, name
        self.points: list[tuple[int, int, bool]] = []  # x, y, include

    @property
    def photo(self) -> str:
        return self.versions[self.index]

    def push(self, path: str) -> None:
        self.versions = (self.versions[: self.index + 1] + [path])[-HISTORY:]
        self.index, self.points = len(self.versions) - 1, []

    def step(self, delta: int) -> None:
        self.index = min(max(self.index + delta, 0), len(self.versions) - 1)
        self.points = []


def hole_from_editor(editor: dict | None, size: tuple[int, int]) -> np.ndarray:
    """The painted hole: every pixel a stroke touched, whatever its colour and opacity."""
    hole = np.zeros(size, bool)
    for layer in (editor or {}).get("layers") or []:
        if layer:
            hole |= read_mask(layer, size=size, resize=True)
    return hole


def overlay(rgb: np.ndarray, hole: np.ndarray, colour: str = HOLE_COLOUR, opacity: float = HOLE_OPACITY) -> np.ndarray:
    """The photo with its hole tinted by ``colour`` (``#rrggbb``) at ``opacity``, as the brush shows it."""
    tint = np.array([int(colour.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4)], np.float32)
    out = rgb.copy()
    out[hole] = (out[hole] * (1 - opacity) + tint * opacity).round().astype(np.uint8)
    return out


def rgb_colour(text: str | None) -> str:
    """``#rrggbb`` from what a colour picker sends (``#rgb``, ``#rrggbb``, ``rgb(...)``/``rgba(...)``)."""
    text = (text or HOLE_COLOUR).strip()
    if text.startswith("rgb"):
        parts = [float(v) for v in text[text.index("(") + 1 : text.index(")")].split(",")[:3]]
        return "#" + "".join(f"{round(min(max(v, 0), 255)):02x}" for v in parts)
    digits = text.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return "#" + digits[:6].lower() if re.fullmatch(r"[0-9a-fA-F]{6}([0-9a-fA-F]{2})?", digits) else HOLE_COLOUR


# Uploads over --max-upload-mb are refused in the page, before they are sent, with the limit named
# (the server refuses them too, with a 413 the page would otherwise not show).
SIZE_CHECK = """(limit) => document.addEventListener("change", (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || input.type !== "file") return;
  const big = [...input.files].find((file) => file.size > limit * 1048576);
  if (!big) return;
  event.stopImmediatePropagation();
  input.value = "";
  const text = `this photo is ${(big.size / 1048576).toFixed(1)} MB; the limit is ${limit} MB (--max-upload-mb)`;
  const notice = document.querySelector("#notice");  // absent only while the page is still rendering
  if (notice) notice.innerText = text;
  else alert(text);
}, true)"""

# Ctrl+Z / Ctrl+Shift+Z (Cmd on a Mac) undo and redo strokes in the painter, as in other editors;
# typing in a text field keeps its own undo.
KEYS = """() => document.addEventListener("keydown", (event) => {
  if (!(event.ctrlKey || event.metaKey) || event.key.toLowerCase() !== "z") return;
  if (event.target.closest && event.target.closest("input, textarea, [contenteditable]")) return;
  const button = document.querySelector(`#editor button[aria-label='${event.shiftKey ? "Redo" : "Undo"}']`);
  if (!button) return;
  event.preventDefault();
  if (!button.disabled) button.click();
})"""

# The editor is only where strokes are painted: the photo's pixels are read from the session's file.
# The page loads each photo into it as if dropped there, because a Gradio 6.31 ImageEditor given a
# new photo by the server after strokes never finishes loading it.
LOAD_PHOTO = """async (url) => {
  if (!url) return;
  const blob = await (await fetch(url)).blob();
  const input = document.querySelector("#editor input[type=file]");
  const files = new DataTransfer();
  files.items.add(new File([blob], "photo.png", { type: blob.type }));
  input.files = files.files;
  input.dispatchEvent(new Event("change", { bubbles: true }));
}"""
