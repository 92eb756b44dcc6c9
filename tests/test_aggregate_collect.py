"""Collecting the hive trees: typed keys, progress, the grid check and every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from medseg.aggregate.collect import COLLECTED, ONLINE_COLUMNS, TREES, Grid, collect
from medseg.cli import main
from medseg.errors import MedsegError

GRID = Grid(datasets=("acdc",), models=("unet",), checkpoints=(1, 2), seeds=(0, 1))
GRID_OPTIONS = ["--datasets", "acdc", "--models", "unet", "--checkpoints", "1", "2", "--seeds", "0", "1"]


def scores_file(root: Path, scheme: str, epoch: int, mode: str, seed: int, dice: float) -> Path:
    path = root / f"downstream/dataset=acdc/model=unet/scheme={scheme}/epoch={epoch}/mode={mode}/seed={seed}"
    path.mkdir(parents=True, exist_ok=True)
    rows = [("dice", "mean", dice), ("dice", "lv", dice), ("hd95", "mean", 3.0)]
    pd.DataFrame(rows, columns=["metric", "class", "value"]).to_parquet(path / "scores.parquet", index=False)
    return path / "scores.parquet"


def pretraining_file(root: Path, scheme: str, epoch: int) -> Path:
    path = root / f"pretrain_history/model=unet/scheme={scheme}/epoch={epoch}"
    path.mkdir(parents=True, exist_ok=True)
    columns = TREES["pretraining"].columns
    row = {column: 0.5 for column in columns} | {"train_epoch": epoch, "seconds": 10.0 * epoch}
    pd.DataFrame([row], columns=list(columns)).to_parquet(path / "history.parquet", index=False)
    return path / "history.parquet"


def choice_file(root: Path, scheme: str, mode: str) -> Path:
    path = root / f"online/dataset=acdc/model=unet/scheme={scheme}/mode={mode}/choice.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "dataset": "acdc",
        "model": "unet",
        "scheme": scheme,
        "mode": mode,
        "variant": {"distance": "cosine", "margin": 0.5, "level": "second_to_last", "pooled": mode == "decoder"},
        "chosen_epoch": 1,
        "trail": [{"epoch": 1, "robustness": 0.5}, {"epoch": 2, "robustness": 0.4}],
        "pretrained_epochs": 2,
        "planned_epochs": 2,
        "saved_epochs": 0,
        "downstream": {"runs": [], "mean_dice": 0.75},
    }
    path.write_text(json.dumps(record))
    return path


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A grid half done: scratch and simple epoch 1 trained in full mode, seed 0 and 1; one pretraining segment."""
    root = tmp_path / "results"
    for scheme, epoch in (("scratch", 0), ("simple", 1)):
        for seed in (0, 1):
            scores_file(root, scheme, epoch, "full", seed, 0.5 + 0.1 * seed)
    pretraining_file(root, "simple", 1)
    choice_file(root, "simple", "full")
    # What a running grid leaves around: a resume file and the temporary file of a write in progress.
    run = root / "downstream/dataset=acdc/model=unet/scheme=simple/epoch=1/mode=full/seed=0"
    (run / ".scores.resume.pt").write_bytes(b"resume")
    (run / ".scores.parquet.tmp-1234").write_bytes(b"half")
    return root


def test_keys_become_typed_columns_and_progress_counts_files(results):
    tables = collect(results, GRID)
    assert list(tables) == list(COLLECTED)
    scores = tables["scores"]
    assert list(scores.columns) == ["dataset", "model", "scheme", "epoch", "mode", "seed", "metric", "class", "value"]
    assert str(scores["epoch"].dtype) == "int64" and str(scores["seed"].dtype) == "int64"
    assert str(scores["scheme"].dtype) == "string"
    assert len(scores) == 4 * 3
    mean = scores[(scores["metric"] == "dice") & (scores["class"] == "mean")]
    assert mean.set_index(["epoch", "seed"])["value"].to_dict() == pytest.approx(
        {(0, 0): 0.5, (0, 1): 0.6, (1, 0): 0.5, (1, 1): 0.6}
    )
    assert tables["pretraining"][["epoch", "train_epoch", "seconds"]].values.tolist() == [[1, 1, 10.0]]
    online = tables["online"]
    assert list(online.columns) == ONLINE_COLUMNS
    assert online.iloc[0][["trail", "chosen_epoch", "mean_dice"]].tolist() == ["1 2", 1, 0.75]
    assert tables["robustness"].empty and list(tables["robustness"].columns)[:4] == [
        "dataset",
        "model",
        "scheme",
        "epoch",
    ]
    progress = tables["progress"].set_index("stage")
    # 1 dataset x (scratch + 2 schemes x 2 checkpoints) = 5 encoder files; x 2 modes x 2 seeds = 20 runs
    assert progress.loc["scores"].tolist() == [20, 4]
    assert progress.loc["robustness"].tolist() == [5, 0]
    assert progress.loc["pretraining"].tolist() == [4, 1]
    assert progress.loc["online"].tolist() == [4, 1]


def test_the_file_columns_are_what_the_stages_write():
    from medseg.downstream.train import HISTORY_COLUMNS as DOWNSTREAM_HISTORY
    from medseg.pretrain.loop import HISTORY_COLUMNS as PRETRAINING_HISTORY
    from medseg.robustness.score import COLUMNS as ROBUSTNESS

    assert TREES["robustness"].columns == tuple(ROBUSTNESS)
    assert TREES["pretraining"].columns == tuple(PRETRAINING_HISTORY)
    assert TREES["downstream_history"].columns == tuple(DOWNSTREAM_HISTORY)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda root: scores_file(root, "simple", 2, "full", 7, 0.5), "seed=7 is not in the configured grid"),
        (lambda root: scores_file(root, "simple", 5, "full", 0, 0.5), "epoch=5 is not in the configured grid"),
        (lambda root: scores_file(root, "scratch", 1, "full", 0, 0.5), "scheme=scratch with epoch=1"),
        (
            lambda root: (root / "downstream/dataset=acdc/notes.parquet").write_bytes(b"x"),
            "a stray file",
        ),
        (
            lambda root: (
                root / "downstream/dataset=acdc/model=unet/scheme=simple/epoch=1/mode=full/seed=1/scores.parquet"
            ).write_bytes(b"PAR1 not really"),
            "not a readable Parquet file",
        ),
        (
            lambda root: pd.DataFrame({"metric": ["dice"], "value": [1.0]}).to_parquet(
                root / "downstream/dataset=acdc/model=unet/scheme=simple/epoch=1/mode=full/seed=1/scores.parquet"
            ),
            "expected metric, class, value",
        ),
        (lambda root: scores_file(root, "simple", "01", "full", 0, 0.5), "epoch=01 is not a whole number"),
        (
            lambda root: pd.DataFrame(
                [("dice", "mean", 0.5), ("dice", "mean", 0.6)], columns=["metric", "class", "value"]
            ).to_parquet(
                root / "downstream/dataset=acdc/model=unet/scheme=simple/epoch=1/mode=full/seed=1/scores.parquet"
            ),
            "the row metric=dice, class=mean is there twice",
        ),
        (
            lambda root: (root / "online/dataset=acdc/model=unet/scheme=simple/mode=full/choice.json").write_text("{"),
            "not an online choice written by `medseg online`",
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_file_exit_2_and_nothing_written(results, tmp_path, capsys, damage, message):
    damage(results)
    with pytest.raises(MedsegError, match=message):
        collect(results, GRID)
    out = tmp_path / "out"
    assert main(["aggregate", "collect", "--results", str(results), "--out", str(out), *GRID_OPTIONS]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"medseg: error: {results}") and message in error[0]
    assert not (out / "tables").exists()


def test_collecting_twice_writes_identical_bytes(results, tmp_path):
    out = [tmp_path / "first", tmp_path / "second"]
    for folder in out:
        assert main(["aggregate", "collect", "--results", str(results), "--out", str(folder), *GRID_OPTIONS]) == 0
    first = sorted((out[0] / "tables").iterdir())
    assert [path.name for path in first] == sorted(f"{name}.parquet" for name in COLLECTED)
    for path in first:
        assert path.read_bytes() == (out[1] / "tables" / path.name).read_bytes(), path.name


def test_a_missing_results_folder_is_named(tmp_path):
    with pytest.raises(MedsegError, match="no such folder"):
        collect(tmp_path / "nothing", GRID)


def test_an_out_that_is_a_file_is_refused(results, tmp_path, capsys):
    out = tmp_path / "a file"
    out.write_text("mine")
    assert main(["aggregate", "--results", str(results), "--out", str(out), *GRID_OPTIONS]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err and out.read_text() == "mine"
