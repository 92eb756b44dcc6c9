"""Shared fixtures: tiny synthetic raw data (made once per session), its prepared form, tiny encoder
files, and a runner that interrupts a command with SIGTERM."""

from __future__ import annotations

import functools
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from medseg.data.acdc import prepare_acdc
from medseg.data.covidqu import prepare_covidqu
from medseg.data.idrid import prepare_idrid
from medseg.data.imagenet import prepare_imagenet
from medseg.models import build_encoder
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


@pytest.fixture(scope="session")
def encoder_file(tmp_path_factory) -> Callable[..., Path]:
    """Return a function giving the file of a tiny encoder (width 0.25, Swin window 4, seed 7) of
    `model` at `size`, written on first use and shared by the whole session; treat it as read-only."""
    folder = tmp_path_factory.mktemp("encoders")

    @functools.cache
    def encoder(model: str, size: int = SIZE) -> Path:
        path = folder / f"{model}_{size}.safetensors"
        build_encoder(model, size, 0.25, 4, seed=7).save(path)
        return path

    return encoder


def run_until_ready_then_sigterm(
    command: list[str], ready: Callable[[str], object], log: Path, wait_s: float = 300
) -> tuple[int, str]:
    """Start `command` with its stderr in `log`, send it SIGTERM as soon as `ready(stderr so far)`
    holds, and return its exit status and whole stderr; fail when it ends (or `wait_s` passes) first."""
    with log.open("w") as stderr:
        process = subprocess.Popen(command, stderr=stderr)
    try:
        deadline = time.monotonic() + wait_s
        while not ready(log.read_text(errors="replace")):
            assert process.poll() is None, f"the process ended before it could be interrupted:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"not ready after {wait_s} s:\n{log.read_text()}"
            time.sleep(0.005)
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=120)
    finally:
        if process.poll() is None:  # a failed check above: leave no process behind
            process.kill()
            process.wait()
    return returncode, log.read_text(errors="replace")


@pytest.fixture
def sigterm(tmp_path_factory) -> Callable[[list[str], Callable[[str], object]], tuple[int, str]]:
    """Return `run_until_ready_then_sigterm` keeping the log outside the test's tmp_path."""
    folder = tmp_path_factory.mktemp("sigterm")
    return functools.partial(run_until_ready_then_sigterm, log=folder / "stderr.log")
