"""`medseg online`: the main variant read from robustness files, the walk, choice.json."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from medseg.cli import main
from medseg.errors import MedsegError
from medseg.robustness.online import epoch_of, main_score, online_choice_record


def write_scores(root: Path, epoch: int, full: float, decoder: float) -> Path:
    """A robustness.parquet with the two main variants and a distractor of another margin."""
    path = root / f"scheme=simple/epoch={epoch}/robustness.parquet"
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
    pd.DataFrame({"distance": ["l2"], "margin": [0.5], "level": ["last"], "pooled": [True], "robustness": [1.0]}).to_parquet(files[0])
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"medseg: error: {files[0]} has no row for the main variant")


def write_run_scores(root: Path, epoch: int, mode: str, seed: int, dice: float) -> Path:
    path = root / f"downstream/epoch={epoch}/mode={mode}/seed={seed}/scores.parquet"
    path.parent.mkdir(parents=True)
    rows = [("dice", "mean", dice), ("dice", "lesion", dice), ("jaccard", "mean", 0.1)]
    pd.DataFrame(rows, columns=["metric", "class", "value"]).to_parquet(path)
    return path


def test_choice_records_the_kept_checkpoints_downstream_dice(tmp_path):
    files = [write_scores(tmp_path, e, 0.5, decoder) for e, decoder in ((1, 0.3), (2, 0.2))]
    scores = [write_run_scores(tmp_path, 1, "decoder", seed, dice) for seed, dice in ((1, 0.6), (0, 0.4))]
    out = tmp_path / "choice.json"
    argv = ["online", "--mode", "decoder", "--checkpoints", "1", "2", "4", "--out", str(out), *map(str, files),
            "--scores", *map(str, scores)]
    assert main(argv) == 0
    downstream = json.loads(out.read_text())["downstream"]
    assert downstream["runs"] == [{"seed": 0, "dice": 0.4}, {"seed": 1, "dice": 0.6}]
    assert downstream["mean_dice"] == pytest.approx(0.5)


def test_choice_refuses_scores_of_another_checkpoint_or_mode(tmp_path, capsys):
    files = [write_scores(tmp_path, e, 0.5, decoder) for e, decoder in ((1, 0.3), (2, 0.2))]
    wrong = [write_run_scores(tmp_path, 2, "decoder", 0, 0.5), write_run_scores(tmp_path, 1, "full", 0, 0.5)]
    for scores in wrong:
        argv = ["online", "--mode", "decoder", "--checkpoints", "1", "2", "--out", str(tmp_path / "c.json"),
                *map(str, files), "--scores", str(scores)]
        assert main(argv) == 2
        assert f"{scores} is a" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()
