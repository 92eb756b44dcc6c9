"""Deterministic synthetic raw data in the on-disk layouts of the real dataset releases.

`synthesize(out)` writes `out/acdc`, `out/covidqu`, `out/idrid` and `out/imagenet`, so the
real data preparers run unchanged on a laptop demo and in tests. The same preset and seed give
the same file names and pixels every time: each dataset draws from its own generator
`numpy.random.default_rng([seed, k])` (k its position in `DATASETS`), so writing one dataset
alone gives the same files as writing all four. Each dataset folder is written atomically.

Importing this package is cheap; numpy, nibabel and PIL load when `synthesize` runs.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from medseg.atomic import atomic_dir
from medseg.errors import MedsegError
from medseg.synth.presets import DEMO, TINY, Preset

log = logging.getLogger(__name__)

PRESETS: dict[str, Preset] = {"demo": DEMO, "tiny": TINY}
DATASETS = ("acdc", "covidqu", "idrid", "imagenet")
"""Dataset names; each is also the module `medseg.synth.<name>` with its `write` function."""


def synthesize(out: Path, preset: str = "demo", only: Sequence[str] | None = None, seed: int = 0) -> None:
    """Write the datasets named in `only` (default: all) under `out`, one folder each."""
    import numpy as np

    if preset not in PRESETS:
        raise MedsegError(f"unknown synthetic data preset {preset!r}; choose one of {sorted(PRESETS)}")
    unknown = sorted(set(only or ()) - set(DATASETS))
    if unknown:
        raise MedsegError(f"unknown synthetic datasets {unknown}; choose from {list(DATASETS)}")
    if seed < 0:
        raise MedsegError(f"the seed must be a non-negative integer, got {seed}")
    for k, name in enumerate(DATASETS):
        if only and name not in only:
            continue
        start = time.perf_counter()
        writer = importlib.import_module(f"medseg.synth.{name}")
        with atomic_dir(Path(out) / name) as folder:
            writer.write(folder, PRESETS[preset], np.random.default_rng([seed, k]))
            sizes = [p.stat().st_size for p in folder.rglob("*") if p.is_file()]
        log.info(
            "synth %s (%s, seed %d): %d files, %.1f MB in %.2f s -> %s",
            name,
            preset,
            seed,
            len(sizes),
            sum(sizes) / 1e6,
            time.perf_counter() - start,
            Path(out) / name,
        )
