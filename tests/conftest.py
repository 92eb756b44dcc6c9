"""Shared fixtures: tiny synthetic raw data (made once per session) and its prepared form."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from medseg.data.acdc import prepare_acdc
from medseg.data.covidqu import prepare_covidqu
from medseg.data.idrid import prepare_idrid
from medseg.data.imagenet import prepare_imagenet
from medseg.synth import synthesize

# The paper's IDRiD geometry scaled by 1/14: still 7 x 17 training windows and 5 x 10 test tiles.
IDRID_GEOMETRY = {"size": (80, 160), "window": 32, "stride": 8, "tile": 16}
SIZE = 32


@pytest.fixture(scope="session")
def raw(tmp_path_factory) -> Path:
    """Tiny synthetic raw releases; treat as read-only (copy with `raw_copy` to damage one)."""
    out = tmp_path_factory.mktemp("raw")
    synthesize(out, "tiny")
    return out


@pytest.fixture
def raw_copy(raw, tmp_path):
    """Return a function copying one raw dataset into this test's tmp folder."""

    def copy(name: str) -> Path:
        return Path(shutil.copytree(raw / name, tmp_path / "raw" / name))

    return copy


@pytest.fixture(scope="session")
def prepared(raw, tmp_path_factory) -> Path:
    """All four tiny datasets prepared into one results/data-like folder."""
    out = tmp_path_factory.mktemp("data")
    prepare_acdc(raw / "acdc", out / "acdc", size=SIZE)
    prepare_covidqu(raw / "covidqu", out / "covidqu", size=SIZE)
    prepare_idrid(raw / "idrid", out / "idrid", **IDRID_GEOMETRY)
    prepare_imagenet(raw / "imagenet", out / "imagenet")
    return out
