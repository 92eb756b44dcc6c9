"""`medseg prepare` never deletes or changes what it did not write, and cleans up after a kill."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medseg.cli import main
from medseg.data.acdc import prepare_acdc
from medseg.data.covidqu import prepare_covidqu
from medseg.data.imagenet import prepare_imagenet
from medseg.data.store import read_meta
from medseg.errors import DataError


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> content hash of every file under `folder` (folders as '<dir>')."""
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
        for p in sorted(folder.rglob("*"))
    }


def test_folder_with_a_foreign_file_survives(raw, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match=f"{out / 'notes.txt'}, which `medseg prepare acdc` did not write"):
        prepare_acdc(raw / "acdc", out, size=16)
    assert snapshot(out) == {"notes.txt": hashlib.sha1(b"mine").hexdigest()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_foreign_file_inside_an_earlier_output_survives(raw, tmp_path):
    out = tmp_path / "out"
    prepare_acdc(raw / "acdc", out, size=16)
    (out / "train" / "my_labels.csv").write_text("x")
    before = snapshot(out)
    with pytest.raises(DataError, match="my_labels.csv"):
        prepare_acdc(raw / "acdc", out, size=16)
    assert snapshot(out) == before


def test_out_above_raw_leaves_raw_untouched(raw_copy, tmp_path):
    acdc = raw_copy("acdc")  # tmp_path/raw/acdc
    before = snapshot(tmp_path / "raw")
    for out in (tmp_path / "raw", tmp_path):
        with pytest.raises(DataError, match=f"--out {out} contains --raw {acdc}"):
            prepare_acdc(acdc, out, size=16)
    assert snapshot(tmp_path / "raw") == before


def test_out_inside_raw_is_refused(raw_copy, tmp_path):
    covid = raw_copy("covidqu")
    before = snapshot(covid)
    for out in (covid, covid / "prepared"):
        with pytest.raises(DataError, match="is inside --raw"):
            prepare_covidqu(covid, out, size=16)
    assert snapshot(covid) == before


def test_out_dot_is_refused_without_leftovers(raw, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["prepare", "acdc", "--raw", str(raw / "acdc"), "--out", "."]) == 2
    assert "current folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [work] and list(work.iterdir()) == []


def test_earlier_output_and_empty_folder_are_replaced(raw, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    prepare_acdc(raw / "acdc", out, size=16)  # an empty folder may be used
    prepare_acdc(raw / "acdc", out, size=8)  # an earlier output of the same command is replaced
    assert read_meta(out)["size"] == [8, 8]
    # Snakemake deletes a job's output files (not their folders) before re-running it
    for path in out.rglob("*"):
        if path.is_file():
            path.unlink()
    prepare_acdc(raw / "acdc", out, size=16)
    assert read_meta(out)["size"] == [16, 16]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_of_another_dataset_type_is_refused(raw, tmp_path):
    out = tmp_path / "out"
    prepare_acdc(raw / "acdc", out, size=16)
    before = snapshot(out)
    with pytest.raises(DataError, match="holds a prepared acdc dataset"):
        prepare_covidqu(raw / "covidqu", out, size=16)
    with pytest.raises(DataError, match="did not write"):  # its acdc files are not ImageNet's
        prepare_imagenet(raw / "imagenet", out)
    assert snapshot(out) == before


def test_out_that_is_a_file_is_refused(raw, tmp_path):
    (tmp_path / "out").write_text("keep")
    with pytest.raises(DataError, match="is a file"):
        prepare_acdc(raw / "acdc", tmp_path / "out", size=16)
    assert (tmp_path / "out").read_text() == "keep"


def test_killed_run_leftovers_are_cleaned_by_the_next_run(tmp_path, sigterm):
    """SIGTERM mid-prepare leaves a temporary folder; the next run of the command removes it."""
    raw = tmp_path / "raw"
    (raw / "images").mkdir(parents=True)
    (raw / "masks").mkdir()
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (384, 384, 3), dtype=np.uint8)
    names = [f"{k:03d}.png" for k in range(40)]
    for k, name in enumerate(names):  # large noisy PNGs make preparation slow enough to interrupt
        Image.fromarray(np.roll(noise, k, axis=0)).save(raw / "images" / name, compress_level=0)
        Image.fromarray((noise[..., 0] > 128).astype(np.uint8)).save(raw / "masks" / name)
    (raw / "splits.csv").write_text(
        "image,split\n" + "".join(f"{n},{'test' if k % 5 == 0 else 'train'}\n" for k, n in enumerate(names))
    )
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "medseg",
        "prepare",
        "folder",
        "--raw",
        str(raw),
        "--out",
        str(out),
        "--classes",
        "background",
        "lesion",
        "--size",
        "64",
    ]
    returncode, log = sigterm(command, lambda _: list(tmp_path.glob(".out.tmp-*")))  # once it writes
    assert returncode == -signal.SIGTERM, log
    assert list(tmp_path.glob(".out.tmp-*")) and not out.exists()
    subprocess.run(command, check=True, stderr=subprocess.DEVNULL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "raw"]
    assert read_meta(out)["splits"] == {"train": 32, "test": 8}
