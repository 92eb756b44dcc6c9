"""TIS (Eq. 1) on hand-made tables: choices, ties, the online stop, flags, scratch, ranks."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from medseg.aggregate import tis
from medseg.aggregate.tis import COLUMNS, dice_runs, kendall, rank_table, spearman, tis_table

EPOCHS = [0, 1, 5, 20]
SEEDS = [1, 2]


def make_runs(dice: dict[int, float], *, scheme="simple", mode="full", spread=0.0) -> pd.DataFrame:
    """One cell's runs: epoch 0 under `scratch`, the others under `scheme`; seed 2 is seed 1 + spread."""
    rows = []
    for epoch, value in dice.items():
        for seed in SEEDS:
            rows.append(
                {
                    "dataset": "d",
                    "model": "m",
                    "scheme": "scratch" if epoch == 0 else scheme,
                    "epoch": epoch,
                    "mode": mode,
                    "seed": seed,
                    "dice": value + (spread if seed == 2 else 0),
                }
            )
    return pd.DataFrame(rows)


def make_robustness(scores: dict[int, float], *, scheme="simple", pooled=False, distance="cosine") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "dataset": "d",
                "model": "m",
                "scheme": scheme,
                "epoch": e,
                "distance": distance,
                "margin": 0.5,
                "level": "second_to_last",
                "pooled": pooled,
                "robustness": r,
            }
            for e, r in scores.items()
        ]
    )


def row(table: pd.DataFrame, indicator: str, **where) -> pd.Series:
    part = table[table["indicator"] == indicator]
    for key, value in where.items():
        part = part[part[key] == value]
    assert len(part) == 1, part
    return part.iloc[0]


DICE = {0: 0.60, 1: 0.70, 5: 0.80, 20: 0.75}


def test_eq1_on_hand_made_numbers():
    table = tis_table(
        make_runs(DICE),
        make_robustness({0: 0.1, 1: 0.3, 5: 0.2, 20: 0.9}),
        pd.DataFrame({"model": "m", "scheme": "simple", "epoch": [1, 5, 20], "val_top1": [0.1, 0.2, 0.3]}),
    )
    assert list(table.columns) == COLUMNS
    offline = row(table, "robustness_offline")
    assert offline["chosen_epoch"] == 20 and offline["best_epoch"] == 5
    assert offline["tis"] == pytest.approx(0.75 / 0.80)
    assert offline["chosen_dice"] == pytest.approx(0.75) and offline["best_dice"] == pytest.approx(0.80)
    assert bool(offline["main"]) and offline["pretrained_epochs"] == 20
    online = row(table, "robustness_online")
    assert online["chosen_epoch"] == 1 and online["tis"] == pytest.approx(0.70 / 0.80)
    assert online["pretrained_epochs"] == 5  # it had to pretrain to epoch 5 to see the fall
    assert row(table, "imagenet_accuracy")["tis"] == pytest.approx(0.75 / 0.80)
    none = row(table, "no_pretraining")
    assert none["chosen_epoch"] == 0 and none["tis"] == pytest.approx(0.60 / 0.80)
    assert pd.isna(none["distance"]) and pd.isna(none["margin"]) and pd.isna(none["main"])
    assert table["complete"].all() and (table["notes"] == "").all()


def test_ties_go_to_the_earliest_checkpoint():
    runs = make_runs({0: 0.5, 1: 0.8, 5: 0.8, 20: 0.7})
    table = tis_table(
        runs,
        make_robustness({0: 0.1, 1: 0.2, 5: 0.4, 20: 0.4}),
        pd.DataFrame({"model": "m", "scheme": "simple", "epoch": [1, 5, 20], "val_top1": [0.5, 0.7, 0.7]}),
    )
    assert row(table, "robustness_offline")["chosen_epoch"] == 5
    assert row(table, "robustness_offline")["best_epoch"] == 1  # Dice tie between 1 and 5
    assert row(table, "imagenet_accuracy")["chosen_epoch"] == 5
    assert row(table, "robustness_online")["chosen_epoch"] == 5  # 20 is equal, not higher: stop at 5


def test_the_online_rule_stops_at_the_first_fall_and_ignores_scratch():
    robustness = make_robustness({0: 0.99, 1: 0.2, 5: 0.1, 20: 0.9})
    table = tis_table(make_runs(DICE), robustness)
    assert row(table, "robustness_offline")["chosen_epoch"] == 0
    online = row(table, "robustness_online")
    assert online["chosen_epoch"] == 1 and online["pretrained_epochs"] == 5


def test_a_missing_seed_is_flagged_not_hidden():
    runs = make_runs(DICE, spread=0.1)
    runs = runs[~((runs["epoch"] == 5) & (runs["seed"] == 2))]
    table = tis_table(runs, make_robustness({0: 0.1, 1: 0.2, 5: 0.3, 20: 0.4}))
    assert not table["complete"].any()
    assert (table["notes"].str.contains("epoch 5: seed 2 missing")).all()
    # computed from the runs it has: epoch 5 is 0.80 (one run); epoch 20 is the mean of 0.75 and 0.85
    offline = row(table, "robustness_offline")
    assert offline["chosen_dice"] == pytest.approx(0.80) and offline["best_dice"] == pytest.approx(0.80)


def test_missing_checkpoint_and_repeated_run_are_flagged():
    runs = make_runs(DICE)
    runs = pd.concat([runs[runs["epoch"] != 20], runs[(runs["epoch"] == 1) & (runs["seed"] == 1)]], ignore_index=True)
    runs.loc[runs.index[-1], "dice"] = 0.9  # a repeat that differs, to see that it counts
    table = tis_table(runs, make_robustness({0: 0.1, 1: 0.2, 5: 0.3, 20: 0.4}), epochs=EPOCHS)
    notes = row(table, "no_pretraining")["notes"]
    assert "epoch 20: no runs" in notes and "epoch 1: seed 1 repeated" in notes
    assert row(table, "robustness_offline")["chosen_epoch"] == 20
    assert math.isnan(row(table, "robustness_offline")["tis"])  # no Dice at the chosen checkpoint
    assert row(table, "no_pretraining")["best_dice"] == pytest.approx(0.80)
    assert tis._cells(runs, EPOCHS, SEEDS)[0].mean[1] == pytest.approx((0.7 + 0.7 + 0.9) / 3)


def test_missing_robustness_is_flagged_per_indicator():
    table = tis_table(make_runs(DICE), make_robustness({0: 0.1, 1: 0.3, 20: 0.4}))
    offline, online = row(table, "robustness_offline"), row(table, "robustness_online")
    assert offline["chosen_epoch"] == 20 and not offline["complete"]
    assert pd.isna(online["chosen_epoch"]) and not online["complete"] and "epoch 5" in online["notes"]
    assert row(table, "no_pretraining")["complete"]


def test_a_cell_without_robustness_or_without_a_variant_is_reported_incomplete():
    runs = pd.concat([make_runs(DICE), make_runs(DICE).assign(dataset="e"), make_runs(DICE).assign(dataset="f")])
    scores = {0: 0.1, 1: 0.3, 5: 0.2, 20: 0.9}
    # d has both variants, e only the unpooled one, f none at all
    robustness = pd.concat(
        [make_robustness(scores), make_robustness(scores, pooled=True), make_robustness(scores).assign(dataset="e")]
    )
    table = tis_table(runs, robustness)
    for indicator in ("robustness_offline", "robustness_online"):
        assert len(table[table["indicator"] == indicator]) == 3 * 2  # every cell has both variants
        assert row(table, indicator, dataset="d", pooled=True)["complete"]
        assert row(table, indicator, dataset="e", pooled=False)["complete"]
        for dataset, pooled in (("e", True), ("f", False), ("f", True)):
            lacking = row(table, indicator, dataset=dataset, pooled=pooled)
            assert not lacking["complete"] and lacking["notes"] == "no robustness for any checkpoint"
            assert pd.isna(lacking["chosen_epoch"]) and math.isnan(lacking["tis"])
    assert table[table["indicator"] == "no_pretraining"]["complete"].all()
    ranks = rank_table(runs, robustness)
    assert len(ranks) == 3 * 2
    none = ranks[(ranks["dataset"] == "f") & ranks["pooled"]].iloc[0]
    assert none["n_checkpoints"] == 0 and math.isnan(none["spearman"])


def test_scratch_runs_serve_every_scheme_unless_a_scheme_has_its_own():
    simple = make_runs(DICE, scheme="simple")
    advanced = make_runs({1: 0.7, 5: 0.8, 20: 0.75}, scheme="advanced")
    table = tis_table(pd.concat([simple, advanced]), epochs=EPOCHS)
    assert row(table, "no_pretraining", scheme="advanced")["chosen_dice"] == pytest.approx(0.60)
    own = advanced.iloc[:2].assign(epoch=0, dice=0.99)
    table = tis_table(pd.concat([simple, advanced, own]), epochs=EPOCHS)
    assert row(table, "no_pretraining", scheme="advanced")["chosen_dice"] == pytest.approx(0.99)
    assert row(table, "no_pretraining", scheme="simple")["chosen_dice"] == pytest.approx(0.60)


def test_every_variant_is_scored_and_the_main_one_marked_per_mode():
    runs = pd.concat([make_runs(DICE, mode="full"), make_runs(DICE, mode="decoder")])
    robustness = pd.concat(
        [
            make_robustness({0: 0.1, 1: 0.2, 5: 0.3, 20: 0.4}, pooled=p, distance=d)
            for p in (False, True)
            for d in ("cosine", "l2")
        ]
    )
    table = tis_table(runs, robustness)
    offline = table[table["indicator"] == "robustness_offline"]
    assert len(offline) == 8
    main = offline[offline["main"]]
    assert sorted(zip(main["mode"], main["pooled"])) == [("decoder", True), ("full", False)]
    assert (main["distance"] == "cosine").all()


def test_imagenet_accuracy_counts_an_unscored_scratch_encoder_as_chance():
    accuracy = pd.DataFrame({"model": "m", "scheme": "simple", "epoch": [1, 5], "val_top1": [0.0, 0.0]})
    table = tis_table(make_runs({0: 0.6, 1: 0.7, 5: 0.8}), accuracy=accuracy)
    assert row(table, "imagenet_accuracy")["chosen_epoch"] == 0  # 0 ties with 0.0: the earliest
    accuracy["val_top1"] = [0.1, 0.3]
    table = tis_table(make_runs({0: 0.6, 1: 0.7, 5: 0.8}), accuracy=accuracy)
    assert row(table, "imagenet_accuracy")["chosen_epoch"] == 5


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    runs = make_runs(DICE, spread=0.05)
    robustness = make_robustness({0: 0.1, 1: 0.3, 5: 0.2, 20: 0.9})
    first = tis_table(runs, robustness, bootstrap=200, seed=3)
    again = tis_table(runs, robustness, bootstrap=200, seed=3)
    pd.testing.assert_frame_equal(first, again)
    offline = row(first, "robustness_offline")
    assert offline["tis_low"] <= offline["tis"] <= offline["tis_high"] <= 1.0
    assert offline["tis_low"] < offline["tis_high"]
    constant = row(tis_table(make_runs(DICE), robustness, bootstrap=50), "robustness_offline")
    assert constant["tis_low"] == pytest.approx(constant["tis"]) == pytest.approx(constant["tis_high"])
    assert math.isnan(row(tis_table(runs, robustness), "robustness_offline")["tis_low"])


def test_rank_correlations_on_known_values():
    x, y = [1, 2, 3, 4, 5], [5, 6, 7, 8, 7]
    assert spearman(x, y) == pytest.approx(8 / math.sqrt(95))
    assert kendall(x, y) == pytest.approx(7 / math.sqrt(90))
    assert spearman(x, x[::-1]) == pytest.approx(-1) and kendall(x, x[::-1]) == pytest.approx(-1)
    assert math.isnan(spearman(x, [1] * 5)) and math.isnan(kendall(x, [1] * 5))


def test_rank_table_per_cell_and_score():
    accuracy = pd.DataFrame({"model": "m", "scheme": "simple", "epoch": [1, 5, 20], "val_top1": [0.1, 0.3, 0.2]})
    ranks = rank_table(make_runs(DICE), make_robustness({0: 0.6, 1: 0.7, 5: 0.8, 20: 0.75}), accuracy)
    robust = ranks[ranks["score"] == "robustness"].iloc[0]
    assert (
        robust["n_checkpoints"] == 4
        and robust["spearman"] == pytest.approx(1)
        and robust["kendall"] == pytest.approx(1)
    )
    imagenet = ranks[ranks["score"] == "imagenet_accuracy"].iloc[0]
    assert imagenet["spearman"] == pytest.approx(1) and pd.isna(imagenet["main"])


def test_dice_runs_reads_the_downstream_scores_layout():
    scores = pd.DataFrame(
        {
            "dataset": "d",
            "model": "m",
            "scheme": "simple",
            "epoch": 5,
            "mode": "full",
            "seed": 0,
            "metric": ["dice", "dice", "jaccard"],
            "class": ["mean", "lv", "mean"],
            "value": [0.8, 0.9, 0.7],
        }
    )
    runs = dice_runs(scores)
    assert runs.to_dict("records") == [
        {"dataset": "d", "model": "m", "scheme": "simple", "epoch": 5, "mode": "full", "seed": 0, "dice": 0.8}
    ]


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="runs table lacks the column"):
        tis_table(make_runs(DICE).drop(columns="seed"))


def make_rankme(levels: dict[str, dict[int, float]]) -> pd.DataFrame:
    """RankMe per level and epoch; epoch 0 under `scratch`, as the collected table has it."""
    return pd.DataFrame(
        [
            {
                "dataset": "d",
                "model": "m",
                "scheme": "scratch" if epoch == 0 else "simple",
                "epoch": epoch,
                "level": level,
                "rankme": value,
            }
            for level, values in levels.items()
            for epoch, value in values.items()
        ]
    )


def test_rankme_is_an_indicator_per_level_with_the_same_selection_rules():
    rankme = make_rankme(
        {
            "second_to_last": {0: 9.0, 1: 3.0, 5: 4.0, 20: 2.0},  # offline: scratch (9); online: 1 -> 5, stop at 5
            "last": {0: 1.0, 1: 2.0, 5: 1.5, 20: 5.0},  # offline: 20; online: stops at 1
        }
    )
    table = tis_table(make_runs(DICE), rankme=rankme)
    main = row(table, "rankme_offline", level="second_to_last")
    assert main["chosen_epoch"] == 0 and main["tis"] == pytest.approx(0.60 / 0.80)
    assert bool(main["main"]) and bool(main["pooled"]) and pd.isna(main["distance"]) and math.isnan(main["margin"])
    assert bool(main["complete"]) and main["notes"] == ""
    online = row(table, "rankme_online", level="second_to_last")
    assert online["chosen_epoch"] == 5 and online["pretrained_epochs"] == 20 and online["tis"] == pytest.approx(1.0)
    last = row(table, "rankme_offline", level="last")
    assert last["chosen_epoch"] == 20 and not bool(last["main"])
    assert row(table, "rankme_online", level="last")["chosen_epoch"] == 1
    ranks = rank_table(make_runs(DICE), rankme=rankme)
    assert set(ranks["score"]) == {"rankme"} and ranks["n_checkpoints"].tolist() == [4, 4]


def test_rankme_lacking_an_epoch_is_flagged():
    rankme = make_rankme({"second_to_last": {0: 9.0, 1: 3.0, 20: 2.0}})
    table = tis_table(make_runs(DICE), rankme=rankme)
    offline = row(table, "rankme_offline")
    assert not offline["complete"] and "no rankme for epoch(s) [5]" in offline["notes"]
    online = row(table, "rankme_online")
    assert not online["complete"] and "lacks the rankme of epoch 5" in online["notes"]
