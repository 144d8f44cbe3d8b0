"""A small drawn fruit set for the image audit gate: ``DIR/<label>/<file>.jpg``."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def fruit_set(root: Path, per_class: int = 8, seed: int = 0) -> Path:
    """``per_class`` drawn bananas and cucumbers (96 px JPEGs), none of them a problem."""
    from aiwarden.images.synthetic import KINDS, fruit_jpeg

    rng = np.random.default_rng(seed)
    for kind in KINDS:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            (root / kind / f"{kind}_{n:02d}.jpg").write_bytes(fruit_jpeg(kind, rng, size=96))
    return root


def truncate(path: Path) -> None:
    """Cut a JPEG in half: the file ends before the image does."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
