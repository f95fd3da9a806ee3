"""Progress bars for long commands (bench, eval, prepare, folder inpaint and apply): a count, the
rate and the time left, on stderr. Shown when stderr is a terminal; ``INPAINTKIT_PROGRESS=1`` shows
them anywhere (a log file, a notebook) and ``0`` hides them."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable


def progress(items: Iterable, desc: str, unit: str = "img", total: int | None = None, show: bool | None = None):
    """``items`` wrapped in a tqdm bar; ``show`` False hides it whatever the environment says."""
    from tqdm import tqdm

    forced = os.environ.get("INPAINTKIT_PROGRESS", "")
    if show is None:
        show = forced == "1" or (forced != "0" and sys.stderr.isatty())
    return tqdm(items, desc=desc, unit=unit, total=total, disable=not show, file=sys.stderr, dynamic_ncols=True)


def say(line: str, err: bool = False) -> None:
    """Print a line without breaking a progress bar that is showing."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr if err else sys.stdout)
