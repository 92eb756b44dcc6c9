"""`medseg online`: the main variant read from robustness files, the walk, choice.json."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from medseg.cli import main
from medseg.errors import MedsegError
from medseg.robustness.online import epoch_of, main_score, online_choice_record


def write_scores(
    root: Path, epoch: int, full: float, decoder: float, *, dataset="acdc", model="unet", scheme="simple"
) -> Path:
    """A robustness.parquet with the two main variants and a distractor of another margin."""
    path = root / f"dataset={dataset}/model={model}/scheme={scheme}/epoch={epoch}/robustness.parquet"
    path.parent.mkdir(parents=True)
    rows = [
        ("cosine", 0.5, "second_to_last", False, full),
        ("cosine", 0.5, "second_to_last", True, decoder),
        ("cosine", 0.25, "second_to_last", False, 99.0),
        ("l2", 0.5, "second_to_last", False, 99.0),
    ]
    pd.DataFrame(rows, columns=["distance", "margin", "level", "pooled", "robustness"]).to_parquet(path)
    return path


def test_epoch_comes_from_the_hive_path(tmp_path):
    assert epoch_of("results/robustness/dataset=a/model=unet/scheme=simple/epoch=20/robustness.parquet") == 20
    with pytest.raises(MedsegError, match="no 'epoch=...' folder"):
        epoch_of(tmp_path / "robustness.parquet")


def test_main_score_depends_on_the_mode(tmp_path):
    path = write_scores(tmp_path, 1, full=0.6, decoder=0.4)
    assert main_score(path, "full") == 0.6 and main_score(path, "decoder") == 0.4


def test_record_walks_until_the_first_fall(tmp_path):
    files = [write_scores(tmp_path, e, full, 0.5) for e, full in ((1, 0.50), (5, 0.55), (20, 0.52))]
    record = online_choice_record([1, 5, 20, 50], files, "full")
    assert record["chosen_epoch"] == 5
    assert [step["epoch"] for step in record["trail"]] == [1, 5, 20]
    assert record["pretrained_epochs"] == 20 and record["saved_epochs"] == 30
    with pytest.raises(MedsegError, match="needs the robustness of epoch 20"):
        online_choice_record([1, 5, 20, 50], files[:2], "full")


def test_command_writes_choice_json_and_names_a_file_without_the_main_variant(tmp_path, capsys):
    files = [write_scores(tmp_path, e, 0.5, decoder) for e, decoder in ((1, 0.3), (2, 0.2))]
    out = tmp_path / "choice.json"
    argv = ["online", "--mode", "decoder", "--checkpoints", "1", "2", "4", "--out", str(out), *map(str, files)]
    assert main(argv) == 0
    assert json.loads(out.read_text())["chosen_epoch"] == 1
    pd.DataFrame(
        {"distance": ["l2"], "margin": [0.5], "level": ["last"], "pooled": [True], "robustness": [1.0]}
    ).to_parquet(files[0])
    assert main(argv) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .splitlines()[-1]
        .startswith(f"medseg: error: {files[0]} has no row for the main variant")
    )


def write_run_scores(root: Path, epoch: int, mode: str, seed: int, dice: float, *, dataset="acdc") -> Path:
    path = (
        root
        / f"downstream/dataset={dataset}/model=unet/scheme=simple/epoch={epoch}/mode={mode}/seed={seed}/scores.parquet"
    )
    path.parent.mkdir(parents=True)
    rows = [("dice", "mean", dice), ("dice", "lesion", dice), ("jaccard", "mean", 0.1)]
    pd.DataFrame(rows, columns=["metric", "class", "value"]).to_parquet(path)
    return path


def test_choice_records_the_kept_checkpoints_downstream_dice(tmp_path):
    files = [write_scores(tmp_path, e, 0.5, decoder) for e, decoder in ((1, 0.3), (2, 0.2))]
    scores = [write_run_scores(tmp_path, 1, "decoder", seed, dice) for seed, dice in ((1, 0.6), (0, 0.4))]
    out = tmp_path / "choice.json"
    argv = [
        "online",
        "--mode",
        "decoder",
        "--checkpoints",
        "1",
        "2",
        "4",
        "--out",
        str(out),
        *map(str, files),
        "--scores",
        *map(str, scores),
    ]
    assert main(argv) == 0
    downstream = json.loads(out.read_text())["downstream"]
    assert downstream["runs"] == [{"seed": 0, "dice": 0.4}, {"seed": 1, "dice": 0.6}]
    assert downstream["mean_dice"] == pytest.approx(0.5)


def test_choice_refuses_scores_of_another_checkpoint_or_mode(tmp_path, capsys):
    files = [write_scores(tmp_path, e, 0.5, decoder) for e, decoder in ((1, 0.3), (2, 0.2))]
    wrong = [
        write_run_scores(tmp_path, 2, "decoder", 0, 0.5),
        write_run_scores(tmp_path, 1, "full", 0, 0.5),
        write_run_scores(tmp_path, 1, "decoder", 0, 0.5, dataset="idrid"),
    ]
    for scores in wrong:
        argv = [
            "online",
            "--mode",
            "decoder",
            "--checkpoints",
            "1",
            "2",
            "--out",
            str(tmp_path / "c.json"),
            *map(str, files),
            "--scores",
            str(scores),
        ]
        assert main(argv) == 2
        assert f"{scores} is " in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()


def test_choice_json_records_the_dataset_model_and_scheme_and_accepts_the_scratch_encoder(tmp_path):
    files = [write_scores(tmp_path, e, full, 0.5) for e, full in ((1, 0.50), (5, 0.55), (20, 0.52))]
    scratch = write_scores(tmp_path, 0, 0.9, 0.9, scheme="scratch")  # belongs to every scheme; never walked
    record = online_choice_record([1, 5, 20, 50], [scratch, *files], "full")
    assert (record["dataset"], record["model"], record["scheme"]) == ("acdc", "unet", "simple")
    assert record["chosen_epoch"] == 5


@pytest.mark.parametrize(
    "other", [{"dataset": "idrid"}, {"model": "swin_unet"}, {"scheme": "advanced"}, {"scheme": "scratch"}]
)  # scratch is only the scratch encoder at epoch 0
def test_files_of_another_dataset_model_or_scheme_are_refused_naming_both(tmp_path, capsys, other):
    first = write_scores(tmp_path, 1, 0.5, 0.5)
    foreign = write_scores(tmp_path, 5, 0.9, 0.9, **other)
    key = next(iter(other))
    with pytest.raises(MedsegError, match=f"{first} and {foreign} are of different {key}s"):
        online_choice_record([1, 5, 20], [first, foreign], "full")
    out = tmp_path / "choice.json"
    argv = ["online", "--mode", "full", "--checkpoints", "1", "5", "20", "--out", str(out), str(first), str(foreign)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"medseg: error: {first} and {foreign} are of different {key}s") and not out.exists()


def test_two_files_of_one_checkpoint_are_refused(tmp_path):
    first = write_scores(tmp_path / "a", 1, 0.5, 0.5)
    second = write_scores(tmp_path / "b", 1, 0.6, 0.6)
    with pytest.raises(MedsegError, match=f"{first} and {second} are both epoch 1"):
        online_choice_record([1, 5], [first, second], "full")


def test_files_outside_a_hive_tree_are_refused(tmp_path):
    path = tmp_path / "scheme=simple/epoch=1/robustness.parquet"
    path.parent.mkdir(parents=True)
    write_scores(tmp_path, 1, 0.5, 0.5).rename(path)
    with pytest.raises(MedsegError, match="no 'dataset=...' folder"):
        online_choice_record([1], [path], "full")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_main_score_names_the_file(tmp_path, capsys, value):
    files = [write_scores(tmp_path, 1, 0.5, 0.5), write_scores(tmp_path, 2, value, 0.5)]
    with pytest.raises(MedsegError, match=f"{files[1]}: the main variant's robustness is {value}"):
        main_score(files[1], "full")
    assert main_score(files[1], "decoder") == 0.5  # only the main variant of the mode counts
    argv = ["online", "--mode", "full", "--checkpoints", "1", "2", "--out", str(tmp_path / "c.json"), *map(str, files)]
    assert main(argv) == 2
    assert f"{files[1]}: the main variant's robustness is {value}" in capsys.readouterr().err


def test_out_is_checked_before_any_file_is_read(tmp_path, capsys):
    missing = tmp_path / "dataset=acdc/model=unet/scheme=simple/epoch=1/robustness.parquet"
    assert main(["online", "--mode", "full", "--checkpoints", "1", "--out", str(tmp_path), str(missing)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"medseg: error: {tmp_path} is a folder; give the path of the file to write"
