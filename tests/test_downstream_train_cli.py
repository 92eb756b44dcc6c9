"""`medseg train` as a command: outputs, several runs per process, one-line failures, SIGTERM and re-run."""

from __future__ import annotations

import json
import logging
import re
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from medseg.cli import main
from medseg.downstream import state

SIZE = 32
MEDSEG = [sys.executable, "-m", "medseg"]


@pytest.fixture(autouse=True)
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def args(data: Path, encoder: Path, out: Path, *extra: str, model: str = "unet") -> list[str]:
    return [
        "train",
        "--data",
        str(data),
        "--encoder",
        str(encoder),
        "--model",
        model,
        "--scores",
        str(out / "scores.parquet"),
        "--history",
        str(out / "history.parquet"),
        "--epochs",
        "1",
        "--batch",
        "8",
        "--threads",
        "1",
        *extra,
    ]


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("medseg: error:")]
    assert len(errors) == 1, err
    return errors[0]


def test_writes_scores_and_history_and_nothing_else(prepared, encoder_file, tmp_path):
    keys = Path("dataset=acdc") / "seed=0"
    out, history_dir = tmp_path / "downstream" / keys, tmp_path / "downstream_history" / keys
    outputs = ["--history", str(history_dir / "history.parquet"), "--save-model", str(tmp_path / "model.safetensors")]
    assert main(args(prepared / "acdc", encoder_file("unet"), out, *outputs)) == 0
    assert [p.name for p in out.iterdir()] == ["scores.parquet"]  # no temporary or resume file
    assert [p.name for p in history_dir.iterdir()] == ["history.parquet"]
    scores = pd.read_parquet(out / "scores.parquet")
    assert list(scores.columns) == ["metric", "class", "value"]
    assert set(scores["class"]) == {"background", "rv_cavity", "myocardium", "lv_cavity", "mean"}
    history = pd.read_parquet(history_dir / "history.parquet")
    assert list(history.columns) == ["train_epoch", "lr", "train_loss", "test_dice", "images_per_s", "seconds"]
    assert history.train_epoch.tolist() == [1] and history.images_per_s.iloc[0] > 0
    weights = load_file(tmp_path / "model.safetensors")
    assert any(key.startswith("decoder.") for key in weights)
    # The hive tree reads as one table, the keys coming from the path.
    table = pd.read_parquet(tmp_path / "downstream")
    assert set(table.dataset) == {"acdc"} and len(table) == len(scores)


def test_several_modes_and_seeds_in_one_process_equal_single_runs(prepared, encoder_file, tmp_path):
    data, encoder = prepared / "covidqu", encoder_file("unet")
    many = tmp_path / "many" / "mode={mode}" / "seed={seed}"
    assert main(args(data, encoder, many, "--mode", "full", "decoder", "--seed", "0", "1")) == 0
    for mode in ("full", "decoder"):
        for seed in ("0", "1"):
            assert (tmp_path / "many" / f"mode={mode}" / f"seed={seed}" / "scores.parquet").is_file()
    single = tmp_path / "single"
    assert main(args(data, encoder, single, "--mode", "decoder", "--seed", "1")) == 0
    pd.testing.assert_frame_equal(
        pd.read_parquet(single / "scores.parquet"),
        pd.read_parquet(tmp_path / "many" / "mode=decoder" / "seed=1" / "scores.parquet"),
    )


def test_several_datasets_in_one_process_equal_single_runs(prepared, encoder_file, tmp_path):
    encoder = encoder_file("unet")
    both = tmp_path / "both" / "dataset={dataset}"
    assert (
        main(
            [
                "train",
                "--data",
                str(prepared / "acdc"),
                str(prepared / "covidqu"),
                *args(prepared / "acdc", encoder, both)[3:],
            ]
        )
        == 0
    )
    assert (tmp_path / "both" / "dataset=acdc" / "scores.parquet").is_file()
    single = tmp_path / "single"
    assert main(args(prepared / "covidqu", encoder, single)) == 0
    pd.testing.assert_frame_equal(
        pd.read_parquet(single / "scores.parquet"),
        pd.read_parquet(tmp_path / "both" / "dataset=covidqu" / "scores.parquet"),
    )


def damaged_acdc(prepared: Path, tmp_path: Path, classes: list[str]) -> Path:
    data = Path(shutil.copytree(prepared / "acdc", tmp_path / "acdc"))
    meta = json.loads((data / "dataset.json").read_text())
    meta["classes"] = classes
    (data / "dataset.json").write_text(json.dumps(meta))
    return data


@pytest.mark.parametrize(
    "case, pattern",
    [
        ("other model", r"holds a swin_unet encoder \(width 0.25, window 4; medseg file\), but --model is unet"),
        ("other width", r"holds a unet encoder \(width 0.25; medseg file\), but --width is 0.5"),
        (
            "class names",
            r"dataset.json has 4 classes \['background', .*\], but 2 classes \['background', 'rv'\] were "
            r"expected \(--classes\)",
        ),
        ("class ids", r"masks.npy holds class id 3, but .*dataset.json lists 2 classes \(ids 0-1\)"),
        ("imagenet", r"is prepared ImageNet"),
        ("suffix", r"--scores .*scores.csv: expected a file name ending in .parquet"),
        ("placeholder", r"--history .* has no \{seed\}, but 2 values of --seed are trained"),
        ("dataset placeholder", r"--scores .* has no \{dataset\}, but 2 values of --data are trained"),
        ("folder as output", r"history.parquet is a folder; give the path of the file to write"),
        ("explicit resume", r"resume.pt belongs to a different run: .*; delete it to start this run over"),
    ],
)
def test_failures_are_one_line_with_status_2(prepared, encoder_file, tmp_path, capsys, case, pattern):
    data, encoder, out = prepared / "acdc", encoder_file("unet"), tmp_path / "out"
    extra: list[str] = []
    if case == "other model":
        encoder = encoder_file("swin_unet")
    elif case == "other width":
        extra = ["--width", "0.5"]
    elif case == "class names":
        extra = ["--classes", "background", "rv"]
    elif case == "class ids":
        data = damaged_acdc(prepared, tmp_path, ["background", "rv_cavity"])
    elif case == "imagenet":
        data = prepared / "imagenet"
    elif case == "placeholder":
        extra = ["--seed", "0", "1", "--scores", str(tmp_path / "{seed}" / "scores.parquet")]
    elif case == "dataset placeholder":
        extra = ["--data", str(prepared / "acdc"), str(prepared / "covidqu")]
    elif case == "folder as output":
        (out / "history.parquet").mkdir(parents=True)
    elif case == "explicit resume":
        state.save(tmp_path / "resume.pt", {"identity": {"model": "swin_unet"}})
        extra = ["--resume", str(tmp_path / "resume.pt")]
    command = args(data, encoder, out, *extra)
    if case == "suffix":
        command[command.index("--scores") + 1] = str(out / "scores.csv")
    assert main(command) == 2
    line = error_line(capsys)
    assert re.search(pattern, line), line
    written = [path.name for path in out.iterdir()] if out.exists() else []
    assert written == (["history.parquet"] if case == "folder as output" else []), written  # only what was there


def test_a_nan_loss_fails_with_status_2_naming_epoch_and_step(prepared, encoder_file, tmp_path, capsys, monkeypatch):
    from medseg.downstream import train

    monkeypatch.setattr(train, "dice_loss", lambda logits, target: logits.sum() * float("nan"))
    assert main(args(prepared / "acdc", encoder_file("unet"), tmp_path / "out")) == 2
    assert "non-finite training loss (nan) at epoch 1, step 1 of 4" in error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_a_stale_resume_file_at_the_default_place_is_ignored(prepared, encoder_file, tmp_path, caplog):
    out = tmp_path / "out"
    state.save(state.default_resume(out / "scores.parquet"), {"identity": {"model": "swin_unet"}})
    assert main(args(prepared / "covidqu", encoder_file("unet"), out)) == 0
    assert "ignoring the resume file" in caplog.text
    assert sorted(p.name for p in out.iterdir()) == ["history.parquet", "scores.parquet"]


def test_sigterm_then_rerun_gives_the_uninterrupted_result(prepared, encoder_file, tmp_path, sigterm):
    data, encoder = prepared / "acdc", encoder_file("unet")
    recipe = ["--epochs", "5", "--batch", "4", "--eval-every", "2"]
    reference = tmp_path / "reference"
    assert main(args(data, encoder, reference, *recipe, "--save-model", str(reference / "model.safetensors"))) == 0
    out = tmp_path / "killed"
    command = [*MEDSEG, *args(data, encoder, out, *recipe, "--save-model", str(out / "model.safetensors"))]
    returncode, log = sigterm(command, lambda log: "epoch 1/5" in log)  # killed while epoch 2 trains
    assert returncode == 75, log  # EX_TEMPFAIL: try again
    assert "stopped by SIGTERM at epoch" in log and "run the same command again" in log
    assert (out / ".scores.resume.pt").is_file() and not (out / "scores.parquet").exists()
    assert main(args(data, encoder, out, *recipe, "--save-model", str(out / "model.safetensors"))) == 0
    assert not (out / ".scores.resume.pt").exists()
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "scores.parquet"), pd.read_parquet(reference / "scores.parquet")
    )
    expected, got = load_file(reference / "model.safetensors"), load_file(out / "model.safetensors")
    assert expected.keys() == got.keys() and all(torch.equal(expected[key], got[key]) for key in expected)
    columns = ["train_epoch", "lr", "train_loss", "test_dice"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "history.parquet")[columns], pd.read_parquet(reference / "history.parquet")[columns]
    )


def test_a_huge_learning_rate_fails_with_one_line_and_writes_nothing(prepared, encoder_file, tmp_path, capsys):
    # lr 1e9, two steps: the second update makes a BatchNorm variance infinite while the loss is
    # still finite; unchecked, the test-set scoring met NaN logits and crashed in bincount.
    out = tmp_path / "out"
    assert main(args(prepared / "acdc", encoder_file("unet"), out, "--lr", "1e9", "--batch", "16")) == 2
    line = error_line(capsys)
    assert re.search(r"non-finite weights \(.*running_var\) after the update at epoch 1, step 2 of 2", line), line
    assert not out.exists()


@pytest.mark.parametrize("option", ["--scores", "--history", "--save-model", "--resume"])
def test_an_unwritable_output_is_refused_before_training(prepared, encoder_file, tmp_path, capsys, caplog, option):
    # /proc takes no new files, not even from root: the place is refused before the first batch.
    name = "scores.parquet" if option == "--scores" else "history.parquet" if option == "--history" else "x.pt"
    command = args(prepared / "acdc", encoder_file("unet"), tmp_path / "out", option, f"/proc/medseg-test/{name}")
    caplog.set_level(logging.INFO)
    assert main(command) == 2
    assert re.search(r"cannot write in /proc \(the nearest existing folder of /proc/medseg-test\)", error_line(capsys))
    assert "training unet" not in caplog.text
    assert not (tmp_path / "out").exists()


def trained_runs(log: str) -> list[str]:
    """The (mode, seed) of every run that trained, from the log."""
    return re.findall(r"training unet \((\w+, seed \d)\)", log)


def test_a_multi_run_job_interrupted_in_its_third_run_trains_only_that_run_again(
    prepared, encoder_file, tmp_path, caplog, sigterm
):
    data, encoder = prepared / "acdc", encoder_file("unet")
    runs = ["--seed", "0", "1", "2", "--epochs", "2", "--eval-every", "1"]
    assert main(args(data, encoder, tmp_path / "reference" / "seed={seed}", *runs)) == 0
    job = tmp_path / "job"
    command = [*MEDSEG, *args(data, encoder, job / "seed={seed}", *runs)]
    returncode, log = sigterm(command, lambda log: "training unet (full, seed 2)" in log)  # during the third run
    assert returncode == 75, log
    assert trained_runs(log) == ["full, seed 0", "full, seed 1", "full, seed 2"]
    for seed in (0, 1):
        assert (job / f"seed={seed}" / ".scores.finished.pt").is_file()
    assert (job / "seed=2" / ".scores.resume.pt").is_file()
    for output in job.glob("*/*.parquet"):  # Snakemake deletes the outputs of a job that did not finish
        output.unlink()
    caplog.set_level(logging.INFO)
    assert main(args(data, encoder, job / "seed={seed}", *runs)) == 0
    assert trained_runs(caplog.text) == ["full, seed 2"]
    assert "resuming from" in caplog.text and caplog.text.count("finished in an earlier call") == 2
    columns = ["train_epoch", "lr", "train_loss", "test_dice"]
    for seed in (0, 1, 2):
        folder, reference = job / f"seed={seed}", tmp_path / "reference" / f"seed={seed}"
        assert sorted(p.name for p in folder.iterdir()) == ["history.parquet", "scores.parquet"]  # records removed
        pd.testing.assert_frame_equal(
            pd.read_parquet(folder / "scores.parquet"), pd.read_parquet(reference / "scores.parquet")
        )
        pd.testing.assert_frame_equal(
            pd.read_parquet(folder / "history.parquet")[columns],
            pd.read_parquet(reference / "history.parquet")[columns],
        )


def test_finished_run_records_restore_the_model_and_other_settings_train_again(
    prepared, encoder_file, tmp_path, caplog, monkeypatch
):
    from medseg.downstream import train
    from medseg.errors import Interrupted

    real_epoch = train.Trainer._train_epoch

    def interrupted_in_seed_1(self, epoch):
        if self.run.seed == 1:
            raise Interrupted("simulated interruption")
        real_epoch(self, epoch)

    data, encoder, out = prepared / "covidqu", encoder_file("unet"), tmp_path / "seed={seed}"
    command = args(data, encoder, out, "--seed", "0", "1", "--save-model", str(out / "model.safetensors"))
    monkeypatch.setattr(train.Trainer, "_train_epoch", interrupted_in_seed_1)
    assert main(command) == 75
    first = load_file(tmp_path / "seed=0" / "model.safetensors")
    for output in tmp_path.glob("*/*.*"):  # the declared outputs, as Snakemake deletes them; not the hidden files
        if not output.name.startswith("."):
            output.unlink()
    monkeypatch.setattr(train.Trainer, "_train_epoch", real_epoch)
    caplog.set_level(logging.INFO)
    assert main(command) == 0
    assert trained_runs(caplog.text) == ["full, seed 1"]
    restored = load_file(tmp_path / "seed=0" / "model.safetensors")
    assert first.keys() == restored.keys() and all(torch.equal(first[key], restored[key]) for key in first)
    assert sorted(p.name for p in (tmp_path / "seed=0").iterdir()) == [
        "history.parquet",
        "model.safetensors",
        "scores.parquet",
    ]
    # A record of other settings (here the learning rate) is not this run's result: trained again.
    monkeypatch.setattr(train.Trainer, "_train_epoch", interrupted_in_seed_1)
    assert main(command) == 75
    monkeypatch.setattr(train.Trainer, "_train_epoch", real_epoch)
    caplog.clear()
    assert main([*command, "--lr", "0.01"]) == 0
    assert trained_runs(caplog.text) == ["full, seed 0", "full, seed 1"]
    assert re.search(
        r"ignoring the finished-run record .*seed=0/.scores.finished.pt of a different run: .*lr", caplog.text
    )
