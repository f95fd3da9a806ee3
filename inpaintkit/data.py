"""Image folders as training data: ``prepare`` (tiles, splits), a seeded dataset, a DataModule."""

from __future__ import annotations

import json
import math
import os
import signal
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import lightning as L
import numpy as np
import torch
from PIL import Image

from inpaintkit.errors import InpaintError
from inpaintkit.io import list_images, read_image, write_bytes, write_image
from inpaintkit.masks import MaskGenerator
from inpaintkit.progress import progress
from inpaintkit.tasks import Task

MAX_TILE = 4096  # the largest training square, for prepare and for a recipe's size

PREPARE_MODES = ("tile", "resize", "center-crop")


def resize_short_side(image: np.ndarray, size: int) -> np.ndarray:
    """Bicubic resize so the shorter side is ``size`` (aspect kept)."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    if new == (w, h):
        return image
    return np.asarray(Image.fromarray(image).resize(new, Image.Resampling.BICUBIC))


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return image[top : top + size, left : left + size]


def fit_square(image: np.ndarray, size: int) -> np.ndarray:
    """The one way images are prepared for evaluation: resize short side to ``size``, centre crop."""
    return center_crop(resize_short_side(image, size), size)


def cut_tiles(image: np.ndarray, size: int) -> list[np.ndarray]:
    """Non-overlapping ``size``-square tiles covering the image, the grid centred; a small image
    (shorter side under ``size``) is first resized up so it gives one tile."""
    if min(image.shape[:2]) < size:
        image = resize_short_side(image, size)
    h, w = image.shape[:2]
    rows, cols = h // size, w // size
    top, left = (h - rows * size) // 2, (w - cols * size) // 2
    return [
        image[top + r * size : top + (r + 1) * size, left + c * size : left + (c + 1) * size]
        for r in range(rows)
        for c in range(cols)
    ]


def _prepare_one(job: tuple[Path, Path, str, int]) -> tuple[str, int, str | None]:
    src, dst_stem, mode, size = job
    try:
        image = read_image(src)
    except InpaintError as exc:
        return str(src), 0, str(exc)
    if mode == "tile":
        tiles = cut_tiles(image, size)
    elif mode == "resize":
        tiles = [np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))]
    else:
        tiles = [fit_square(image, size)]
    for i, tile in enumerate(tiles):
        name = f"{dst_stem.name}.png" if len(tiles) == 1 else f"{dst_stem.name}_{i:03d}.png"
        write_image(dst_stem.parent / name, np.ascontiguousarray(tile))
    return str(src), len(tiles), None


def prepare(
    src: str | Path,
    dst: str | Path,
    size: int = 256,
    mode: str = "tile",
    split: tuple[float, ...] = (0.8, 0.1, 0.1),
    seed: int = 0,
    workers: int = 1,
) -> dict:
    """Turn a folder of photos of any size into ``dst/{train,val,test}`` squares of ``size``.

    The split is by source photo (tiles of one photo never straddle splits), shuffled by ``seed``.
    Unreadable files are counted and listed in ``dst/prepare.json``, not fatal.
    """
    if mode not in PREPARE_MODES:
        raise InpaintError(f"unknown --mode {mode!r}; choose from {', '.join(PREPARE_MODES)}")
    if len(split) != 3 or not all(0 <= s < math.inf for s in split) or sum(split) <= 0:
        raise InpaintError("--split needs three non-negative fractions, e.g. 0.8,0.1,0.1")
    if not 8 <= size <= MAX_TILE:
        raise InpaintError(f"--size must be 8 to {MAX_TILE} px, got {size}")
    src, dst = Path(src), Path(dst)
    if (dst / "prepare.json").exists() or any((dst / split_name).exists() for split_name in ("train", "val", "test")):
        raise InpaintError(f"{dst}: already holds a prepared set; choose a new folder (or remove that one)")
    if dst.resolve().is_relative_to(src.resolve()):
        raise InpaintError(f"{dst}: is inside {src}; a rerun would cut the tiles again; choose a folder outside it")
    files = list_images(src)
    if not files:
        raise InpaintError(f"{src}: no images found")
    order = np.random.default_rng(seed).permutation(len(files))
    fractions = np.array(split, dtype=np.float64) / sum(split)
    bounds = np.round(np.cumsum(fractions) * len(files)).astype(int)
    jobs = []
    for rank, idx in enumerate(order):
        name = ("train", "val", "test")[int(np.searchsorted(bounds, rank, side="right"))]
        rel = files[idx].relative_to(src).with_suffix("")
        stem = "__".join(rel.parts)
        jobs.append((files[idx], dst / name / stem, mode, size))
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(progress(pool.map(_prepare_one, jobs, chunksize=8), "prepare", "photo", len(jobs)))
    else:
        results = [_prepare_one(job) for job in progress(jobs, "prepare", "photo")]
    counts = {name: 0 for name in ("train", "val", "test")}
    for (_, n, _), job in zip(results, jobs, strict=True):
        counts[job[1].parent.name] += n
    failed = [{"file": f, "error": e} for f, _, e in results if e is not None]
    report = {
        "source": str(src),
        "size": size,
        "mode": mode,
        "split": list(split),
        "seed": seed,
        "photos": len(files),
        "tiles": counts,
        "unreadable": len(failed),
        "unreadable_files": failed,
    }
    dst.mkdir(parents=True, exist_ok=True)
    write_bytes(dst / "prepare.json", json.dumps(report, indent=2) + "\n")
    return report


def augment(image: torch.Tensor, rng: np.random.Generator, jitter: float = 0.1) -> torch.Tensor:
    """Horizontal flip (p 0.5), a random multiple of 90 degrees (p 0.25 each non-zero turn, square
    images only) and mild brightness / contrast / saturation jitter. ``image``: ``(3, H, W)`` in [0, 1]."""
    if rng.random() < 0.5:
        image = image.flip(-1)
    turns = int(rng.choice(4, p=[0.25, 0.25, 0.25, 0.25])) if image.shape[-1] == image.shape[-2] else 0
    if turns:
        image = torch.rot90(image, turns, dims=(-2, -1))
    if jitter > 0:
        b, c, s = (1 + rng.uniform(-jitter, jitter, size=3)).tolist()
        image = image * b
        mean = image.mean()
        image = (image - mean) * c + mean
        gray = image.mean(dim=0, keepdim=True)
        image = (image - gray) * s + gray
    return image.clamp(0, 1).contiguous()


class InpaintDataset(torch.utils.data.Dataset):
    """Photos under ``root`` (recursive) as ``(input, target, mask)`` float32 triples made by a task
    (for inpainting: ``(image (3, S, S), image, mask (1, S, S))``).

    Each photo is resized (short side) and cropped to ``size``: a random crop when ``train``,
    the centre crop otherwise. The mask and augmentation of sample ``i`` in epoch ``e`` come from
    ``numpy.random.default_rng([seed, e, i])``, so workers and resumed runs draw the same data.
    Unreadable photos are skipped (the next one is used) and counted in ``self.skipped``. ``holdout``
    leaves out the first photos of each folder (sorted by name), which a bench with ``--n`` keeps for
    the test.
    """

    def __init__(
        self,
        root: str | Path | list,
        size: int,
        masks: str | MaskGenerator,
        train: bool = True,
        seed: int = 0,
        files: list[Path] | None = None,
        task: Task | None = None,
        holdout: int = 0,
    ):
        self.task = task or Task()
        roots = [Path(r) for r in (root if isinstance(root, list | tuple) else [root])]
        self.root = roots[0]
        self.files = files if files is not None else [f for r in roots for f in list_images(r)[holdout:]]
        if not self.files:
            raise InpaintError(f"{', '.join(map(str, roots))}: no images found")
        self.size = size
        self.masks = masks if isinstance(masks, MaskGenerator) else MaskGenerator(masks)
        self.train = train
        self.seed = seed
        self.epoch = 0
        self.skipped: set[str] = set()

    def __len__(self) -> int:
        return len(self.files)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch if self.train else 0, index])

    def load(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        """Photo ``index`` as ``(3, size, size)``, skipping unreadable files."""
        for attempt in range(len(self.files)):
            path = self.files[(index + attempt) % len(self.files)]
            try:
                image = resize_short_side(read_image(path), self.size)
                break
            except InpaintError as exc:
                if str(path) not in self.skipped:
                    self.skipped.add(str(path))
                    warnings.warn(f"skipping unreadable training image: {exc}", stacklevel=2)
        else:
            raise InpaintError(f"{self.root}: no readable images")
        h, w = image.shape[:2]
        if self.train:
            top, left = int(rng.integers(0, h - self.size + 1)), int(rng.integers(0, w - self.size + 1))
        else:
            top, left = (h - self.size) // 2, (w - self.size) // 2
        crop = np.array(image[top : top + self.size, left : left + self.size])
        tensor = torch.from_numpy(crop).permute(2, 0, 1).float().div_(255.0)
        return augment(tensor, rng) if self.train else tensor

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = self.rng(index)
        image = self.load(index, rng)
        mask = torch.from_numpy(self.masks(self.size, self.size, rng))[None]
        return self.task.make(image, mask, rng)


def _own_process_group(worker_id: int) -> None:
    """Move a loader worker out of the trainer's process group. A SIGTERM to the whole group
    (``timeout``, a batch scheduler, ``kill -- -PID``) then reaches only the trainer, which stops
    gracefully and exports the best model, instead of killing its workers mid-batch. The worker
    starts with SIGTERM blocked (see ``_Loader``); one sent to the group before it left is
    taken here and dropped, since the trainer received it too."""
    if not hasattr(os, "setpgrp"):
        return
    os.setpgrp()
    if signal.SIGTERM in signal.sigpending():
        signal.sigwait({signal.SIGTERM})
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


class _Loader(torch.utils.data.DataLoader):
    """Starts its workers with SIGTERM blocked, closing the window between a worker's fork and
    ``_own_process_group`` in which a group-wide SIGTERM would kill it (PyTorch's worker handler
    exits on a SIGTERM from anyone but the trainer)."""

    def _get_iterator(self):
        if self.num_workers == 0 or not hasattr(signal, "pthread_sigmask"):
            return super()._get_iterator()
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            return super()._get_iterator()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class InpaintDataModule(L.LightningDataModule):
    """Train and validation folders of photos with masks from a spec."""

    def __init__(
        self,
        train_dir: str | Path | list,
        val_dir: str | Path | None,
        size: int = 256,
        masks: str = "lama-wide",
        val_masks: str | None = None,
        batch_size: int = 16,
        workers: int = 2,
        seed: int = 0,
        val_count: int | None = None,
        task: Task | None = None,
        holdout: int = 0,
    ):
        super().__init__()
        self.train_set = InpaintDataset(train_dir, size, masks, train=True, seed=seed, task=task, holdout=holdout)
        val_files = None
        if val_dir is not None:
            val_files = list_images(val_dir)
            if val_count is not None and val_count < len(val_files):
                pick = np.random.default_rng(seed).choice(len(val_files), val_count, replace=False)
                val_files = [val_files[i] for i in sorted(pick)]
        self.val_set = (
            InpaintDataset(val_dir, size, val_masks or masks, train=False, seed=seed + 1, files=val_files, task=task)
            if val_dir is not None
            else None
        )
        if len(self.train_set) < batch_size:
            raise InpaintError(f"{train_dir}: {len(self.train_set)} images is fewer than the batch size {batch_size}")
        for dataset in (self.train_set, self.val_set):
            if dataset is not None:  # none readable: one line now, not a loader worker's traceback later
                dataset.load(0, dataset.rng(0))
        self.batch_size = batch_size
        self.workers = workers

    def _loader(self, dataset, shuffle: bool) -> torch.utils.data.DataLoader:
        return _Loader(
            dataset,
            batch_size=self.batch_size,
            sampler=EpochShuffle(len(dataset), dataset.seed) if shuffle else None,
            drop_last=shuffle,
            num_workers=self.workers,
            persistent_workers=False,  # workers re-read the dataset's epoch each epoch
            pin_memory=torch.cuda.is_available(),
            worker_init_fn=_own_process_group,
        )

    def train_dataloader(self):
        return self._loader(self.train_set, True)

    def val_dataloader(self):
        return self._loader(self.val_set, False) if self.val_set is not None else []


class EpochShuffle(torch.utils.data.Sampler):
    """A random order that depends only on ``(seed, epoch)``; Lightning calls ``set_epoch`` before
    each epoch, so a resumed run draws the same batches as one that was never stopped."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=generator).tolist())
