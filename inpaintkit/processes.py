"""Worker processes for the fills of a batch, which the command line turns on.

PyPatchMatch and the other classical fills are single-threaded, and PyPatchMatch keeps its random
seed in the native library, so threads would take turns on it. Worker processes, one per core,
fill the photos of a batch side by side; each has its own copy of the seed, so a fill there gives
the same bytes as in the calling process. They are spawned (a forked copy of a process running
torch's threads can hang), and a spawned process imports the program's main script again: a script
without ``if __name__ == "__main__":`` would run again in every worker. So they are used only
inside :func:`worker_processes`, which the ``inpaintkit`` program enters (:func:`inpaintkit.cli.run`)
and a guarded script may enter too. The workers import only :mod:`inpaintkit.fills`, not torch.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
_STATE = {"enabled": False, "pool": None}
_LOCK = threading.Lock()


@contextlib.contextmanager
def worker_processes():
    """Within it, batches of more than one photo are filled in :func:`fill_processes`. For the
    main script's own thread (the switch is global, not per thread)."""
    previous, _STATE["enabled"] = _STATE["enabled"], True
    try:
        yield
    finally:
        _STATE["enabled"] = previous


def fill_processes():
    """The worker processes (a ``ProcessPoolExecutor``), one per core, started on first use and
    kept for the next batch; ``None`` outside :func:`worker_processes` or on one core."""
    if not _STATE["enabled"] or CORES < 2:
        return None
    import multiprocessing  # here: the command line starts without it
    from concurrent.futures import ProcessPoolExecutor

    with _LOCK:
        if _STATE["pool"] is None or getattr(_STATE["pool"], "_broken", False):  # a worker died: new ones
            context = multiprocessing.get_context("spawn")
            _STATE["pool"] = ProcessPoolExecutor(CORES, mp_context=context, initializer=_ignore_interrupts)
            atexit.register(_STATE["pool"].shutdown)  # before the interpreter tears its modules down
        return _STATE["pool"]


def _ignore_interrupts() -> None:
    """Ctrl+C reaches the workers too: the calling process alone stops the run and says so."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
