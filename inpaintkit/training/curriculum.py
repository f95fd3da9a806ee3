"""On-demand learning as a mask strategy: it replaces each training batch's masks and learns from
the PSNR the model reached on them which hole sizes to draw next."""

from __future__ import annotations

import numpy as np
import torch

from inpaintkit.masks import box


class Curriculum:
    """On-demand learning (Gao and Grauman, 2017): square holes at N difficulty levels; after each
    step the share of the next batches given to a level is proportional to 1 / (its latest PSNR),
    so the levels the model fills worst get the most samples. At least one sample per level keeps
    every level measured."""

    def __init__(self, levels: list[list[int]], batch_size: int, seed: int):
        self.levels = [tuple(lv) for lv in levels]
        self.batch_size = batch_size
        self.seed = seed
        self.psnr: list[float | None] = [None] * len(levels)

    def counts(self) -> list[int]:
        n, b = len(self.levels), self.batch_size
        known = [p for p in self.psnr if p is not None]
        fill = float(np.mean(known)) if known else 1.0
        inv = np.array([1.0 / max(p if p is not None else fill, 1e-3) for p in self.psnr])
        if b < n:
            return [1 if i < b else 0 for i in range(n)]
        share = 1 + inv / inv.sum() * (b - n)  # one each, the rest by difficulty
        counts = np.floor(share).astype(int)
        for i in np.argsort(-(share - counts))[: b - counts.sum()]:  # largest remainders
            counts[i] += 1
        return counts.tolist()

    def masks(self, size: int, step: int) -> tuple[torch.Tensor, list[int]]:
        rng = np.random.default_rng([self.seed, step])
        levels = [i for i, c in enumerate(self.counts()) for _ in range(c)]
        holes = [box(size, size, rng, side=self.levels[i]) for i in levels]
        return torch.from_numpy(np.stack(holes))[:, None], levels

    def update(self, levels: list[int], psnr: torch.Tensor) -> None:
        for i in set(levels):
            self.psnr[i] = float(psnr[[j for j, lv in enumerate(levels) if lv == i]].mean())

    def state_dict(self) -> dict:
        return {"psnr": list(self.psnr)}

    def load_state_dict(self, state: dict) -> None:
        self.psnr = list(state["psnr"])
