"""`medseg pretrain` as processes: killed with SIGTERM and re-run; two data-parallel processes (gloo)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from medseg.cli import main
from medseg.pretrain import loop
from medseg.pretrain.distributed import Context, sequential_weights
from medseg.pretrain.settings import Job, Settings

MEDSEG = [sys.executable, "-m", "medseg"]
SIZE = ["--image-size", "32", "--width", "0.25"]


def train_here(data: Path, start: Path, out: Path, epoch: int, planned: int, batch: int, micro_batch: int) -> Path:
    """The same job as `command` in this process (the reference runs: saves a process start)."""
    settings = Settings("unet", "simple", 32, 0.25, 7, 0, planned, batch, 0.002, 8, 1, micro_batch, threads=1)
    threads = torch.get_num_threads()
    try:
        loop.run(Job(settings, epoch, start, data, out, out / "history.parquet"), Context())
    finally:
        torch.set_num_threads(threads)
    return out


def command(data: Path, start: Path, out: Path, epoch: int, *extra: str) -> list[str]:
    return [
        *MEDSEG,
        "pretrain",
        "--model",
        "unet",
        "--scheme",
        "simple",
        "--epoch",
        str(epoch),
        *SIZE,
        "--start",
        str(start),
        "--data",
        str(data),
        "--out",
        str(out),
        "--history",
        str(out / "history.parquet"),
        "--base-lr",
        "0.002",
        "--base-lr-batch",
        "8",
        "--warmup-epochs",
        "1",
        "--workers",
        "0",
        "--threads",
        "1",
        *extra,
    ]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scratch") / "encoder.safetensors"
    assert main(["init", "--model", "unet", *SIZE, "--out", str(path)]) == 0
    return path


def test_killed_mid_segment_and_rerun_gives_the_uninterrupted_weights(tmp_path, prepared, scratch, sigterm):
    data = prepared / "imagenet"
    # batch 4 on 24 images: 6 updates per epoch, 5 epochs
    recipe = ["--planned-epochs", "5", "--batch", "4", "--micro-batch", "4"]
    reference = train_here(data, scratch, tmp_path / "reference", 5, 5, 4, 4)
    out = tmp_path / "killed"
    # killed while epoch 2 trains
    returncode, log = sigterm(command(data, scratch, out, 5, *recipe), lambda log: "epoch 1/5" in log)
    assert returncode == 75, log
    assert "stopped by SIGTERM at epoch" in log and "run the same command again" in log
    assert (out / "resume.pt").is_file() and not (out / "state.pt").exists()
    rerun = subprocess.run(command(data, scratch, out, 5, *recipe), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming from" in rerun.stderr and not (out / "resume.pt").exists()
    expected, got = load_file(reference / "encoder.safetensors"), load_file(out / "encoder.safetensors")
    assert all(torch.equal(expected[key], got[key]) for key in expected)


def test_two_gloo_processes_train_like_one_process_accumulating(tmp_path, prepared, scratch):
    data = prepared / "imagenet"
    recipe = ["--planned-epochs", "2", "--batch", "8", "--micro-batch", "4"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    ddp = subprocess.run(
        command(data, scratch, tmp_path / "ddp", 1, *recipe, "--processes", "2"),
        capture_output=True,
        text=True,
        env=env,
    )
    assert ddp.returncode == 0, ddp.stderr
    assert "2 x 4 micro-batches" not in ddp.stderr and "1 x 4 micro-batches x 2 process(es)" in ddp.stderr
    train_here(data, scratch, tmp_path / "single", 1, 2, 8, 4)
    # The same micro-batches, augmentations and BatchNorm batches; only the order of float sums differs.
    a = torch.load(tmp_path / "ddp" / "state.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "single" / "state.pt", weights_only=True)["model"]
    params = [key for key in a if a[key].is_floating_point() and "running" not in key]
    worst = max((a[key] - b[key]).abs().max().item() for key in params)
    assert worst < 1e-4
    # BatchNorm statistics: the one-process run's sequential updates, combined in float64. Measured:
    # at most 1.8e-7 of a tensor's largest value here (3.7e-7 for the ResNet50 after 3 epochs), i.e.
    # float32 rounding; before the processes' statistics were combined, each kept its own.
    tracked = [key for key in a if key.endswith("num_batches_tracked")]
    assert tracked and all(a[key].item() == b[key].item() == 6 for key in tracked)  # 3 updates x 2 micro-batches
    for key in (key for key in a if "running_" in key):
        assert (a[key] - b[key]).abs().max() <= 1e-6 * b[key].abs().max(), key
    val = [pd.read_parquet(tmp_path / name / "history.parquet")["val_loss"] for name in ("ddp", "single")]
    assert val[0].tolist() == pytest.approx(val[1].tolist(), rel=1e-5)


def test_sequential_weights_equal_hand_computed_moving_averages():
    # momentum 0.1: r2 = 0.9 (0.9 r + 0.1 b0) + 0.1 b1 = 0.81 r + 0.9 (0.1 b0) + 1 (0.1 b1)
    carry, weights = sequential_weights([0.1, 0.1])
    assert carry == pytest.approx(0.81) and weights == pytest.approx([0.9, 1.0])
    carry, weights = sequential_weights([0.1] * 3)
    assert carry == pytest.approx(0.729) and weights == pytest.approx([0.81, 0.9, 1.0])
    # cumulative average (momentum None) from 0 batches: factors 1, 1/2, 1/3 give the mean of b0, b1, b2
    carry, weights = sequential_weights([1, 1 / 2, 1 / 3])
    assert carry == 0 and weights == pytest.approx([1 / 3] * 3)
    # momentum 0: nothing changes
    assert sequential_weights([0.0, 0.0]) == (1.0, [0.0, 0.0])
