"""The online method's saving on hand-made TIS and pretraining tables."""

from __future__ import annotations

import pandas as pd
import pytest
from test_aggregate_tables import frame, main_row

from medseg.aggregate.saving import online_saving, saving_headline


def saving_inputs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """unet simple stops at 2 of 4 epochs; unet advanced at 2, with a history lacking epochs 3-4."""
    tis = frame(
        [
            main_row("robustness_online", chosen_epoch=1, pretrained_epochs=2),
            main_row("robustness_offline", pretrained_epochs=4),
            main_row("robustness_online", scheme="advanced", chosen_epoch=2, pretrained_epochs=2),
        ]
    )
    history = [("simple", e, e, 10.0 * e) for e in (1, 2, 3, 4)]  # 10, 20, 30, 40 s
    history += [("advanced", 1, 1, 10.0), ("advanced", 2, 2, 30.0)]
    pretraining = pd.DataFrame(
        [
            {"model": "unet", "scheme": s, "epoch": c, "train_epoch": t, "lr": 0.1, "train_loss": 1.0, "seconds": x}
            for s, c, t, x in history
        ]
    )
    return tis, pretraining


def test_online_saving_sums_the_history_seconds_and_fills_missing_epochs_at_the_mean():
    saving = online_saving(*saving_inputs()).set_index("scheme")
    simple, advanced = saving.loc["simple"], saving.loc["advanced"]
    assert (simple["chosen_epoch"], simple["pretrained_epochs"], simple["planned_epochs"]) == (1, 2, 4)
    assert (simple["pretrained_seconds"], simple["planned_seconds"], simple["saved_seconds"]) == (30.0, 100.0, 70.0)
    assert simple["saved_fraction"] == pytest.approx(0.7) and simple["complete"]
    # epochs 3 and 4 counted at the mean of the known ones, (10 + 30) / 2
    assert (advanced["pretrained_seconds"], advanced["planned_seconds"], advanced["saved_seconds"]) == (40, 80, 40)
    assert not advanced["complete"] and "train epoch(s) 3-4" in advanced["notes"]


def test_saving_headline_sums_the_cells_in_a_readable_unit():
    saving = online_saving(*saving_inputs())
    assert saving_headline(saving) == (
        "The online rule (main variant) pretrained 50 % of the planned epochs (4 of 8) over 2 cells "
        "(1 incomplete: see online_saving.parquet): summed over the cells, it saved 1.8 of 3.0 min of "
        "pretraining time (61 %)."
    )
    hours = saving.assign(planned_seconds=[36000.0, 0.0], saved_seconds=[18000.0, 0.0], complete=True)
    assert "it saved 5.0 of 10.0 h of pretraining time (50 %)." in saving_headline(hours)
    seconds = saving.assign(planned_seconds=[60.0, 0.0], saved_seconds=[15.0, 0.0])
    assert "it saved 15.0 of 60.0 s" in saving_headline(seconds)
    assert saving_headline(saving.iloc[:0]).startswith("No online choice yet")
    assert saving_headline(saving.iloc[:0]).endswith(".")
