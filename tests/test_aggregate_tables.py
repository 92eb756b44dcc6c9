"""The paper's tables on hand-made TIS and score tables, and writing them with the online saving."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from medseg.aggregate import tables
from medseg.aggregate.saving import PRETRAINING_COLUMNS
from medseg.aggregate.tables import (
    ROWS,
    TABLES,
    markdown,
    row_key,
    table1,
    table2,
    table3a,
    table3b,
    table4,
    table_b,
    write_tables,
)
from medseg.aggregate.tis import COLUMNS, dice_runs, typed_rows

NAN = float("nan")
MAIN = {"decoder": ("cosine", 0.5, "second_to_last", True), "full": ("cosine", 0.5, "second_to_last", False)}


def trow(indicator: str, variant=(None, None, None, None), *, main=None, **values) -> dict:
    """One TIS row with defaults: acdc / unet / simple / decoder, complete, no interval."""
    row = dict.fromkeys(COLUMNS)
    row.update(
        dataset="acdc",
        model="unet",
        scheme="simple",
        mode="decoder",
        indicator=indicator,
        main=main,
        chosen_epoch=1,
        chosen_dice=0.8,
        best_epoch=1,
        best_dice=0.8,
        tis=1.0,
        tis_low=NAN,
        tis_high=NAN,
        pretrained_epochs=4,
        complete=True,
        notes="",
    )
    row.update(dict(zip(["distance", "margin", "level", "pooled"], variant)))
    row.update(values)
    return row


def main_row(indicator: str, mode: str = "decoder", **values) -> dict:
    """A row at the mode's main variant (robustness or RankMe)."""
    variant = MAIN[mode] if indicator.startswith("robustness") else (None, None, "second_to_last", True)
    return trow(indicator, variant, main=True, mode=mode, **values)


def frame(rows: list[dict]) -> pd.DataFrame:
    """Typed as `tis_table` types its output."""
    return typed_rows(rows, COLUMNS)


def test_row_keys_fill_in_the_mode_main_variant():
    assert row_key(ROWS["robustness (online)"], "decoder") == (
        "robustness_online",
        "cosine",
        0.5,
        "second_to_last",
        True,
    )
    assert row_key(ROWS["robustness (offline)"], "full") == (
        "robustness_offline",
        "cosine",
        0.5,
        "second_to_last",
        False,
    )
    assert row_key(ROWS["L2 distance, margin 0.50"], "full") == (
        "robustness_offline",
        "l2",
        0.5,
        "second_to_last",
        False,
    )
    assert row_key(ROWS["last, pooled"], "full") == ("robustness_offline", "cosine", 0.5, "last", True)
    assert row_key(ROWS["cosine distance, margin 0.25"], "decoder")[1:3] == ("cosine", 0.25)
    assert row_key(ROWS["RankMe (offline)"], "full") == ("rankme_offline", None, None, "second_to_last", True)
    assert row_key(ROWS["RankMe (online)"], "decoder") == ("rankme_online", None, None, "second_to_last", True)
    assert row_key(ROWS["RankMe, last"], "decoder") == ("rankme_offline", None, None, "last", True)
    assert row_key(ROWS["ImageNet accuracy"], "full") == ("imagenet_accuracy", None, None, None, None)


def test_table1_takes_the_best_scheme_and_names_the_checkpoint():
    tis = frame(
        [
            trow("no_pretraining", best_dice=0.80, best_epoch=5),
            trow("no_pretraining", scheme="advanced", best_dice=0.85, best_epoch=20, complete=False),
            trow("no_pretraining", mode="full", best_dice=0.70, best_epoch=0),
            trow("no_pretraining", mode="full", scheme="advanced", best_dice=0.70, best_epoch=0),
        ]
    )
    result = table1(tis).set_index("mode")
    assert result.loc["decoder", "best_dice"] == 0.85
    assert (result.loc["decoder", "scheme"], result.loc["decoder", "epoch"]) == ("advanced", 20)
    assert (result.loc["decoder", "n_cells"], result.loc["decoder", "n_complete"]) == (2, 1)
    assert not result.loc["decoder", "complete"]
    assert (result.loc["full", "scheme"], result.loc["full", "epoch"]) == ("scratch", 0)
    assert result.loc["full", "complete"]
    text = markdown("table1", table1(tis))
    assert "| ACDC | 0.700 (scratch) | 0.850† (advanced, epoch 20) |" in text
    assert "basic U-Net, decoder only" in text and "1 of 2 values" in text


def scores_of(runs: list[tuple]) -> pd.DataFrame:
    """scores.parquet rows: each (scheme, epoch, seed, dice) a mean Dice row and an hd95 row (to be ignored)."""
    rows = []
    for scheme, epoch, seed, dice in runs:
        key = {"dataset": "acdc", "model": "unet", "scheme": scheme, "epoch": epoch, "mode": "decoder", "seed": seed}
        rows.append({**key, "metric": "dice", "class": "mean", "value": dice})
        rows.append({**key, "metric": "hd95", "class": "mean", "value": 100.0})
    return pd.DataFrame(rows)


def test_table2_is_worst_over_best_initialization_external_encoders_left_out():
    scores = scores_of(
        [
            ("scratch", 0, 0, 0.4),
            ("scratch", 0, 1, 0.6),  # mean 0.5: the worst
            ("simple", 1, 0, 0.8),
            ("simple", 1, 1, 0.8),  # mean 0.8: the best
            ("advanced", 1, 0, 0.6),
            ("advanced", 1, 1, 0.7),
            ("external-mine", 0, 0, 0.1),  # not an initialization of the schemes
        ]
    )
    # full training: cells in the TIS table, no runs yet
    tis = frame([trow("no_pretraining", scheme=s, mode=m) for s in ("simple", "advanced") for m in ("full", "decoder")])
    table = table2(dice_runs(scores), tis)
    assert list(table["mode"]) == ["full", "decoder"]
    missing, result = table.iloc[0], table.iloc[1]
    assert math.isnan(missing["ratio"]) and missing["n_inits"] == 0 and not missing["complete"]
    assert result["ratio"] == pytest.approx(0.5 / 0.8)
    assert (result["worst_scheme"], result["worst_epoch"], result["worst_dice"]) == ("scratch", 0, pytest.approx(0.5))
    assert (result["best_scheme"], result["best_epoch"]) == ("simple", 1)
    assert (result["n_inits"], result["n_cells"], result["complete"]) == (3, 2, True)
    assert "| ACDC | n/a | 0.625 |" in markdown("table2", table)


def averaged_tis() -> pd.DataFrame:
    """acdc / decoder: 2 models x 2 schemes; offline TIS 1.0, 0.9, 0.8, 0.7 (the last incomplete)."""
    rows = []
    cells = [("unet", "simple"), ("unet", "advanced"), ("swin_unet", "simple"), ("swin_unet", "advanced")]
    for (model, scheme), value in zip(cells, (1.0, 0.9, 0.8, 0.7)):
        cell = {"model": model, "scheme": scheme}
        complete = value != 0.7
        rows.append(
            main_row("robustness_offline", **cell, tis=value, tis_low=value - 0.1, tis_high=1.0, complete=complete)
        )
        # a non-main variant: never averaged into the main row
        rows.append(trow("robustness_offline", ("cosine", 0.25, "second_to_last", True), main=False, **cell, tis=0.0))
        rows.append(trow("no_pretraining", **cell, tis=0.5, complete=complete))
        if model == "unet":  # the online row of two cells only: the others lack it
            rows.append(main_row("robustness_online", **cell, tis=0.6))
    return frame(rows)


def test_table3a_averages_the_main_rows_and_counts_incomplete_and_missing_cells():
    result = table3a(averaged_tis()).set_index("row")
    offline = result.loc["robustness (offline)"]
    assert offline["tis"] == pytest.approx(0.85)
    assert (offline["tis_min"], offline["tis_max"]) == (pytest.approx(0.7), 1.0)
    assert offline["mean_tis_low"] == pytest.approx(0.75) and offline["mean_tis_high"] == 1.0
    assert (offline["n_cells"], offline["n_values"], offline["n_complete"], offline["complete"]) == (4, 4, 3, False)
    online = result.loc["robustness (online)"]
    assert (online["tis"], online["n_cells"], online["n_values"], online["complete"]) == (0.6, 4, 2, False)
    assert "RankMe (offline)" not in result.index  # no RankMe rows in the TIS table
    text = markdown("table3a", table3a(averaged_tis()))
    assert "| robustness (offline) | 0.850† (0.700–1.000) |" in text
    assert "| ACDC, decoder only |" in text and "3 of 3 values" in text


def test_table3b_averages_per_model_over_datasets_and_schemes():
    result = table3b(averaged_tis())
    unet = result[(result["model"] == "unet") & (result["row"] == "robustness (offline)")].iloc[0]
    swin = result[(result["model"] == "swin_unet") & (result["row"] == "robustness (offline)")].iloc[0]
    assert unet["tis"] == pytest.approx(0.95) and unet["complete"]
    assert swin["tis"] == pytest.approx(0.75) and not swin["complete"]
    assert list(result["model"].unique()) == ["unet", "swin_unet"]  # the paper's order


def grid_tis(rankme: bool = False) -> pd.DataFrame:
    """acdc / simple / unet, both modes: main robustness, L2 at 0.5, the baselines (and RankMe)."""
    rows = []
    for mode in ("full", "decoder"):
        rows.append(main_row("robustness_offline", mode, tis=0.95, tis_low=0.9, tis_high=1.0, complete=mode == "full"))
        rows.append(main_row("robustness_online", mode, tis=0.9))
        rows.append(trow("robustness_offline", ("l2", 0.5, *MAIN[mode][2:]), main=False, mode=mode, tis=0.8))
        rows.append(trow("imagenet_accuracy", mode=mode, tis=0.7, tis_low=0.6, tis_high=0.75))
        rows.append(trow("no_pretraining", mode=mode, tis=0.6))
        if rankme:
            for level in ("last", "second_to_last"):
                variant = (None, None, level, True)
                main = level == "second_to_last"
                rows.append(trow("rankme_offline", variant, main=main, mode=mode, tis=0.97 if main else 0.3))
                rows.append(trow("rankme_online", variant, main=main, mode=mode, tis=0.96 if main else 0.2))
    return frame(rows)


def test_table4_carries_each_cell_interval_and_marks_incomplete_cells():
    result = table4(grid_tis())
    assert list(dict.fromkeys(result["row"])) == [
        "cosine distance, margin 0.50",
        "L2 distance, margin 0.50",
        "ImageNet accuracy",
        "no pretraining",
    ]
    cosine = result[result["row"] == "cosine distance, margin 0.50"].set_index("mode")
    assert (cosine.loc["full", "tis_low"], cosine.loc["full", "tis_high"]) == (0.9, 1.0)
    assert cosine.loc["full", "complete"] and not cosine.loc["decoder", "complete"]
    assert cosine.loc["decoder", "pooled"] and not cosine.loc["full", "pooled"]  # the mode's main pooling
    text = markdown("table4", result)
    assert "## ACDC, simple scheme" in text
    assert "| cosine distance, margin 0.50 | 0.950 [0.900, 1.000] | 0.950† [0.900, 1.000] |" in text
    assert "| ImageNet accuracy | 0.700 [0.600, 0.750] | 0.700 [0.600, 0.750] |" in text
    assert "† computed from an incomplete cell: see notes in tis.parquet. 1 of 8 values." in text


def test_table_b_has_rankme_rows_only_when_the_tis_table_has_rankme():
    assert not table_b(grid_tis())["row"].str.startswith("RankMe").any()
    result = table_b(grid_tis(rankme=True))
    rows = list(dict.fromkeys(result["row"]))
    assert rows[:6] == [
        "robustness (offline)",
        "robustness (online)",
        "RankMe (offline)",
        "RankMe (online)",
        "ImageNet accuracy",
        "no pretraining",
    ]
    assert rows[-2:] == ["RankMe, last", "RankMe, second to last"]
    by_row = result[result["mode"] == "full"].set_index("row")["tis"]
    assert (by_row["RankMe (offline)"], by_row["RankMe (online)"], by_row["RankMe, last"]) == (0.97, 0.96, 0.3)
    averaged = table3a(grid_tis(rankme=True)).set_index(["row", "mode"])["tis"]
    assert averaged[("RankMe (online)", "decoder")] == 0.96


def collected_like(table: pd.DataFrame) -> pd.DataFrame:
    """Key columns as `collect` types them (pandas strings)."""
    keys = [c for c in ("dataset", "model", "scheme", "mode") if c in table.columns]
    return table.astype(dict.fromkeys(keys, "string"))


def test_write_tables_writes_every_stem_byte_identically(tmp_path):
    stopped_early = frame([main_row("robustness_online", dataset="idrid", chosen_epoch=1, pretrained_epochs=2)])
    tis = pd.concat([grid_tis(rankme=True), stopped_early, averaged_tis()], ignore_index=True)
    history = [("simple", e, 10.0 * e) for e in (1, 2, 3, 4)] + [("advanced", 1, 10.0)]  # advanced lacks 2-4
    pretraining = pd.DataFrame(
        [{"model": "unet", "scheme": s, "epoch": e, "train_epoch": e, "seconds": x} for s, e, x in history]
    )
    scores = scores_of([("scratch", 0, 0, 0.4), ("simple", 1, 0, 0.8)])
    inputs = {"tis": collected_like(tis), "scores": collected_like(scores), "pretraining": pretraining}
    first = write_tables(inputs, tmp_path / "a")
    second = write_tables(inputs, tmp_path / "b")
    assert [p.name for p in first] == [f"{stem}.{ext}" for stem in TABLES for ext in ("parquet", "md", "html")]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]  # no temporary files left
    table = pd.read_parquet(tmp_path / "a" / "table4.parquet")
    assert list(table.columns) == list(tables.SCHEMAS["table4"])
    assert "saved" in (tmp_path / "a" / "online_saving.md").read_text()
    page = (tmp_path / "a" / "table1.html").read_text()
    assert page.count("<table>") == 1 and "<td>" in page and "<h1>Table 1" in page


@pytest.mark.parametrize("inputs", [{}, "empty frames"])
def test_write_tables_on_empty_input_says_so(tmp_path, inputs):
    if inputs == "empty frames":
        inputs = {
            "tis": pd.DataFrame(columns=COLUMNS),
            "scores": pd.DataFrame(columns=tables.SCORES_COLUMNS),
            "pretraining": pd.DataFrame(columns=PRETRAINING_COLUMNS),
        }
    paths = write_tables(inputs, tmp_path)
    assert len(paths) == 3 * len(TABLES)
    for stem in TABLES:
        assert len(pd.read_parquet(tmp_path / f"{stem}.parquet")) == 0
        text = (tmp_path / f"{stem}.md").read_text()
        assert "No runs yet" in text or "No online choice yet" in text, stem


def test_unknown_names_are_shown_as_they_are_and_missing_values_as_na():
    tis = frame(
        [
            trow("no_pretraining", dataset="mydata", model="mynet", best_dice=0.5),
            trow("no_pretraining", dataset="mydata", model="mynet", mode="full", best_dice=NAN, best_epoch=None),
        ]
    )
    text = markdown("table1", table1(tis))
    assert "| mydata | n/a | 0.500 (simple, epoch 1) |" in text
    assert "mynet, full training" in text and "n/a: no value (1 of 2)" in text
