"""The state files and history rows that pretraining and downstream training share."""

import math

import pandas as pd
import pytest
import torch

from medseg.errors import MedsegError
from medseg.training_state import (
    describe_difference,
    epoch_row,
    history_columns,
    load_marked,
    save_marked,
    write_history,
)


def test_describe_difference_names_each_differing_key_once_sorted():
    saved = {"seed": "1", "batch": "8", "lr": "0.05"}
    expected = {"seed": "0", "batch": "8", "mode": "full"}
    assert describe_difference(saved, expected) == (
        "lr 0.05 (this run: unset), mode unset (this run: full), seed 1 (this run: 0)"
    )
    assert describe_difference(saved, dict(saved)) == ""


def test_epoch_row_means_and_speed():
    partial = {"loss_sum": 3.0, "images": 40, "train_seconds": 8.0, "seconds": 10.0}
    row = epoch_row(2, 0.01, partial, 4, {"test_dice": 0.5})
    # 3.0 / 4 terms = 0.75; 40 images / 8 s = 5 images per second; evaluation between loss and speed.
    assert row == {
        "train_epoch": 2,
        "lr": 0.01,
        "train_loss": 0.75,
        "test_dice": 0.5,
        "images_per_s": 5.0,
        "seconds": 10.0,
    }
    assert list(row) == list(history_columns(["test_dice"]))
    empty = epoch_row(1, 0.1, {"loss_sum": 0.0, "images": 0, "train_seconds": 0.0, "seconds": 0.0}, 0, {})
    assert empty["train_loss"] == 0.0 and math.isnan(empty["images_per_s"])


def test_write_history_keeps_the_columns_without_rows(tmp_path):
    write_history(tmp_path / "history.parquet", [], ["val_loss"])
    table = pd.read_parquet(tmp_path / "history.parquet")
    assert list(table.columns) == ["train_epoch", "lr", "train_loss", "val_loss", "images_per_s", "seconds"]
    assert table["train_epoch"].dtype == "int64"


def test_marked_state_round_trip_and_refusals(tmp_path):
    path = tmp_path / "state.pt"
    save_marked(path, "medseg-test/1", {"identity": {"seed": "0"}, "weights": torch.ones(2)})
    state = load_marked(path, "medseg-test/1", "test state")
    assert state["format"] == "medseg-test/1" and torch.equal(state["weights"], torch.ones(2))
    with pytest.raises(MedsegError, match=r"is not a medseg other state \(no 'medseg-other/1' marker\)"):
        load_marked(path, "medseg-other/1", "other state")
    torch.save({"format": "medseg-test/1"}, path)  # no identity: not a state this code wrote
    with pytest.raises(MedsegError, match="no 'medseg-test/1' marker"):
        load_marked(path, "medseg-test/1", "test state")
    path.write_bytes(b"not a torch file")
    with pytest.raises(MedsegError, match=r"(?s)state.pt is not a readable test state \(.*\); delete it$"):
        load_marked(path, "medseg-test/1", "test state", fix="; delete it")
