"""The `medseg` command (`medseg.cli.run`) leaves without interpreter shutdown: output and status survive."""

from __future__ import annotations

import subprocess
import sys

MEDSEG = [sys.executable, "-m", "medseg"]


def test_printed_output_and_written_files_survive_the_quick_exit(tmp_path):
    result = subprocess.run(
        [*MEDSEG, "synth", "--out", str(tmp_path), "--preset", "tiny", "--only", "covidqu"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert any((tmp_path / "covidqu").rglob("*.png"))
    listing = subprocess.run(
        [*MEDSEG, "models", "--image-size", "64", "--width", "0.25", "--window-size", "4"],
        capture_output=True,
        text=True,
    )
    assert listing.returncode == 0 and "swin_unet" in listing.stdout, listing.stderr


def test_errors_keep_their_status_and_message(tmp_path):
    result = subprocess.run(
        [
            *MEDSEG,
            "online",
            "--mode",
            "full",
            "--checkpoints",
            "1",
            "--out",
            str(tmp_path / "c.json"),
            str(tmp_path / "missing.parquet"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("medseg: error:")
