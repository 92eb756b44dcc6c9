"""The figures plot the right data: line, error bar, scatter, bar and heat map values from hand-made tables."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import seaborn as sns
from matplotlib.colors import to_rgba

from medseg.aggregate import figures
from medseg.aggregate.tis import COLUMNS

SCORE_COLUMNS = ["dataset", "model", "scheme", "epoch", "mode", "seed", "metric", "class", "value"]
ROBUSTNESS_COLUMNS = ["dataset", "model", "scheme", "epoch", "distance", "margin", "level", "pooled", "robustness"]


def scores_table(rows: list[tuple]) -> pd.DataFrame:
    """Scores rows (dataset, model, scheme, epoch, mode, seed, dice) as mean Dice, plus noise rows that never count."""
    out = []
    for dataset, model, scheme, epoch, mode, seed, dice in rows:
        out.append((dataset, model, scheme, epoch, mode, seed, "dice", "mean", dice))
        out.append((dataset, model, scheme, epoch, mode, seed, "dice", "LV", 0.0))  # a class, not the mean
        out.append((dataset, model, scheme, epoch, mode, seed, "jaccard", "mean", 0.0))
    return pd.DataFrame(out, columns=SCORE_COLUMNS)


def panel(fig, label: str):
    (ax,) = [ax for ax in fig.axes if ax.get_label() == label]
    return ax


def tis_rows(rows: list[dict]) -> pd.DataFrame:
    """A `tis` table with the given columns set and the others empty."""
    table = pd.DataFrame([{c: row.get(c) for c in COLUMNS} for row in rows], columns=COLUMNS)
    return table.astype({"main": "boolean", "complete": "boolean", "chosen_epoch": "Int64", "tis": float})


def palette(index: int) -> tuple:
    return to_rgba(sns.color_palette(figures.PALETTE)[index])


def test_dice_by_epoch_plots_the_seed_mean_and_sd_with_scratch_as_epoch_0_of_both_schemes():
    runs = [("acdc", "unet", "scratch", 0, "full", s, d) for s, d in enumerate([0.5, 0.6, 0.7])]
    runs += [("acdc", "unet", "simple", 1, "full", s, d) for s, d in enumerate([0.7, 0.8, 0.9])]
    runs += [("acdc", "unet", "simple", 5, "full", s, d) for s, d in enumerate([0.6, 0.6, 0.6])]
    runs += [("acdc", "unet", "advanced", 1, "full", s, d) for s, d in enumerate([0.2, 0.4, 0.9])]
    runs += [("acdc", "unet", "external-x", 0, "full", 0, 0.99)]  # external encoders are not plotted
    fig = figures.dice_by_epoch(scores_table(runs))
    ax = panel(fig, "acdc|unet")
    bars = {c.get_label(): c for c in ax.containers}
    assert sorted(bars) == ["advanced|full", "simple|full"]

    line, _, (segments,) = bars["simple|full"].lines
    np.testing.assert_allclose(line.get_ydata(), [0.6, 0.8, 0.6])
    assert np.round(line.get_xdata()).tolist() == [0, 1, 2]  # checkpoint positions 0, 1, 5 (dodged a little)
    low_high = [(seg[0][1], seg[1][1]) for seg in segments.get_segments()]
    np.testing.assert_allclose(low_high, [(0.5, 0.7), (0.7, 0.9), (0.6, 0.6)])  # mean ± 1 SD (ddof 1)
    assert to_rgba(line.get_color()) == palette(figures.SCHEME_COLOURS["simple"])

    line, _, (segments,) = bars["advanced|full"].lines
    np.testing.assert_allclose(line.get_ydata(), [0.6, 0.5])  # scratch at epoch 0, then its own epoch 1
    sd = np.std([0.2, 0.4, 0.9], ddof=1)
    np.testing.assert_allclose(segments.get_segments()[1][:, 1], [0.5 - sd, 0.5 + sd])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "5"]


def test_dice_by_epoch_marks_panels_without_runs_and_says_when_nothing_ran():
    runs = [("acdc", "unet", "simple", 1, "full", 0, 0.5), ("idrid", "swin_unet", "simple", 1, "full", 0, 0.5)]
    fig = figures.dice_by_epoch(scores_table(runs))
    assert [t.get_text() for t in panel(fig, "acdc|swin_unet").texts] == [figures.NO_RUNS]
    assert [a.get_title() for a in fig.axes[:2]] == ["basic U-Net", "Swin U-Net"]
    empty = figures.dice_by_epoch(pd.DataFrame(columns=SCORE_COLUMNS))
    assert figures.NO_RUNS in [t.get_text() for t in empty.axes[0].texts]


def test_imagenet_top1_plots_percent_by_train_epoch_and_skips_unvalidated_epochs():
    pretraining = pd.DataFrame(
        [
            ("unet", "simple", 1, 1, 0.10),
            ("unet", "simple", 2, 2, np.nan),
            ("unet", "simple", 2, 3, 0.25),
            ("swin_unet", "advanced", 1, 1, 0.5),
        ],
        columns=["model", "scheme", "epoch", "train_epoch", "val_top1"],
    )
    fig = figures.imagenet_top1(pretraining)
    (line,) = panel(fig, "simple").lines
    assert line.get_label() == "basic U-Net"
    assert line.get_xdata().tolist() == [1, 3]
    np.testing.assert_allclose(line.get_ydata(), [10.0, 25.0])
    (line,) = panel(fig, "advanced").lines
    np.testing.assert_allclose(line.get_ydata(), [50.0])
    assert to_rgba(line.get_color()) == palette(figures.MODEL_COLOURS["swin_unet"])


def fig3_tables():
    """One cell (acdc, unet, simple, full): Dice 0.5 / 0.7 / 0.6 at epochs 0 / 1 / 5, two seeds each."""
    runs = [("acdc", "unet", "scratch", 0, "full", s, 0.5) for s in (0, 1)]
    runs += [("acdc", "unet", "simple", 1, "full", s, d) for s, d in ((0, 0.6), (1, 0.8))]
    runs += [("acdc", "unet", "simple", 5, "full", s, 0.6) for s in (0, 1)]
    main = ("cosine", 0.5, "second_to_last", False)  # the main variant of full training
    robustness = pd.DataFrame(
        [
            ("acdc", "unet", "scratch", 0, *main, 0.25),
            ("acdc", "unet", "simple", 1, *main, 0.75),
            ("acdc", "unet", "simple", 5, *main, 0.5),
            ("acdc", "unet", "simple", 1, "cosine", 0.5, "second_to_last", True, 9.0),  # decoder's main: not full's
            ("acdc", "unet", "simple", 5, "l2", 0.5, "second_to_last", False, 9.0),
        ],
        columns=ROBUSTNESS_COLUMNS,
    )
    cell = {"dataset": "acdc", "model": "unet", "scheme": "simple", "mode": "full"}
    tis = tis_rows(
        [
            {**cell, "indicator": "robustness_offline", "main": True, "chosen_epoch": 1, "tis": 1.0},
            {**cell, "indicator": "robustness_online", "main": True, "chosen_epoch": 5, "tis": 0.9},
            {**cell, "indicator": "robustness_offline", "main": False, "chosen_epoch": 0, "tis": 0.7},
        ]
    )
    return scores_table(runs), robustness, tis


def test_dice_and_robustness_colours_and_sizes_dots_by_main_robustness_and_marks_the_choices():
    scores, robustness, tis = fig3_tables()
    fig = figures.dice_and_robustness(scores, robustness, tis, "simple")
    ax = panel(fig, "acdc|full|unet")
    dots = {c.get_gid(): c for c in ax.collections}
    np.testing.assert_allclose(dots["robustness"].get_offsets(), [[0, 0.5], [1, 0.7], [2, 0.6]])
    scaled = [0.0, 1.0, 0.5]  # robustness 0.25, 0.75, 0.5 scaled within the panel
    np.testing.assert_allclose(dots["robustness"].get_sizes(), [figures._dot_size(s) for s in scaled])
    cmap = figures._robustness_cmap()
    np.testing.assert_allclose(dots["robustness"].get_facecolors(), [cmap(s) for s in scaled])
    assert len(dots["no robustness"].get_offsets()) == 0
    np.testing.assert_allclose(dots["offline choice"].get_offsets(), [[1, 0.7]])
    np.testing.assert_allclose(dots["online choice"].get_offsets(), [[2, 0.6]])
    (raw,) = panel(fig, "acdc|full|unet|robustness").lines
    np.testing.assert_allclose(raw.get_ydata(), [0.25, 0.75, 0.5])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "5"]


def test_dice_and_robustness_without_robustness_or_runs_of_the_scheme():
    scores, _, _ = fig3_tables()
    fig = figures.dice_and_robustness(scores, None, None, "simple")
    dots = {c.get_gid(): c for c in panel(fig, "acdc|full|unet").collections}
    assert len(dots["robustness"].get_offsets()) == 0
    assert len(dots["no robustness"].get_offsets()) == 3
    assert "offline choice" not in dots
    empty = figures.dice_and_robustness(scores, None, None, "advanced")
    assert "no runs of the advanced scheme yet" in [t.get_text() for t in empty.axes[0].texts]


def test_online_epochs_counts_every_configured_checkpoint_including_zeros():
    rows = [
        {"mode": "full", "indicator": "robustness_online", "main": True, "chosen_epoch": e, "complete": True}
        for e in (1, 1, 5)
    ]
    rows += [
        {"mode": "decoder", "indicator": "robustness_online", "main": True, "chosen_epoch": 20, "complete": True},
        {"mode": "decoder", "indicator": "robustness_online", "main": False, "chosen_epoch": 50, "complete": True},
        {"mode": "decoder", "indicator": "robustness_offline", "main": True, "chosen_epoch": 50, "complete": True},
    ]
    fig = figures.online_epochs(tis_rows(rows), epochs=[0, 1, 5, 20, 50, 100])
    ax = panel(fig, "counts")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "5", "20", "50", "100"]  # no scratch: never online
    heights = {}
    for bar in ax.patches:
        heights.setdefault(bar.get_gid(), []).append(bar.get_height())
    assert heights == {"full": [2, 1, 0, 0, 0], "decoder": [0, 0, 1, 0, 0]}
    assert [to_rgba(b.get_facecolor()) for b in ax.patches[:1]] == [palette(figures.MODE_COLOURS["full"])]


def metric_scores(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = [
        ("acdc", "unet", "simple", 1, "full", seed, metric, "mean", value)
        for metric, series in values.items()
        for seed, value in enumerate(series)
    ]
    rows.append(("acdc", "unet", "simple", 1, "full", 0, "hd95_authors", "mean", 5.0))  # not one of the five
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def test_metric_correlation_of_monotone_metrics_is_one_with_hd95_negated():
    better = [0.1, 0.2, 0.3, 0.4]
    scores = metric_scores(
        {
            "dice": better,
            "jaccard": [v**2 for v in better],
            "mcc": [v - 1 for v in better],
            "ap": [1, 3, 2, 4],  # one swap: Spearman 1 - 6 * 2 / (4 * 15) = 0.8 with the others
            "hd95": [40, 30, 20, 10],  # lower is better
        }
    )
    fig = figures.metric_correlation(scores)
    ax = panel(fig, "correlation")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Dice", "Jaccard", "MCC", "mAP", "\u2212HD95"]
    values = np.asarray(ax.collections[0].get_array()).reshape(5, 5)
    expected = np.ones((5, 5))
    expected[3, :] = expected[:, 3] = 0.8
    expected[3, 3] = 1.0
    np.testing.assert_allclose(values, expected)
    assert [t.get_text() for t in ax.texts[:5]] == ["1.000", "1.000", "1.000", "0.800", "1.000"]


def test_tis_heatmap_means_over_schemes_and_modes_at_the_main_variant_and_marks_incomplete_cells():
    rows = []
    for (scheme, mode), tis in zip([("simple", "full"), ("simple", "decoder"), ("advanced", "full")], [0.9, 1.0, 0.8]):
        cell = {"dataset": "acdc", "model": "unet", "scheme": scheme, "mode": mode}
        rows.append({**cell, "indicator": "robustness_offline", "main": True, "tis": tis, "complete": True})
        rows.append({**cell, "indicator": "robustness_offline", "main": False, "tis": 0.1, "complete": True})
        rows.append({**cell, "indicator": "no_pretraining", "tis": 0.5, "complete": mode == "full"})
    cell = {"dataset": "covidqu", "model": "unet", "scheme": "simple", "mode": "full"}
    rows.append({**cell, "indicator": "robustness_offline", "main": True, "tis": 0.75, "complete": True})
    fig = figures.tis_heatmap(tis_rows(rows))
    ax = panel(fig, "tis")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["robustness, offline", "no pretraining"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["basic\nU-Net", "basic\nU-Net"]
    values = np.ma.getdata(ax.collections[0].get_array()).reshape(2, 2)
    np.testing.assert_allclose(values[0], [0.9, 0.75])
    np.testing.assert_allclose(values[1, 0], 0.5)
    assert np.isnan(values[1, 1])
    cells = [t.get_text() for t in ax.texts if t.get_transform() == ax.transData]
    assert cells == ["0.900", "0.750", "0.500*", "n/a"]
    assert [t.get_text() for t in ax.texts if t.get_transform() != ax.transData] == ["ACDC", "COVID-QU"]
    assert any(t.get_text().startswith("* mean over at least one incomplete") for t in fig.texts)


def written(folder) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_write_figures_makes_every_figure_repeatably(tmp_path):
    scores, robustness, tis = fig3_tables()
    pretraining = pd.DataFrame(
        [("unet", "simple", 1, 1, 0.1), ("unet", "simple", 5, 5, 0.3)],
        columns=["model", "scheme", "epoch", "train_epoch", "val_top1"],
    )
    scores = pd.concat([scores, metric_scores({"dice": [0.1, 0.2], "hd95": [3.0, 1.0]})], ignore_index=True)
    tables = {"scores": scores, "robustness": robustness, "pretraining": pretraining, "tis": tis}
    paths = figures.write_figures(tables, tmp_path / "a")
    assert paths == [tmp_path / "a" / f"{stem}.{fmt}" for stem in figures.FIGURES for fmt in ("png", "svg")]
    first = written(tmp_path / "a")
    assert sorted(first) == sorted(p.name for p in paths)  # no temporary files left
    assert all(data.startswith(b"\x89PNG") for name, data in first.items() if name.endswith(".png"))
    assert not any(b"<dc:date>" in data for name, data in first.items() if name.endswith(".svg"))
    figures.write_figures(tables, tmp_path / "b")
    assert written(tmp_path / "b") == first


@pytest.mark.parametrize("tables", [{}, {"scores": pd.DataFrame(), "tis": pd.DataFrame(columns=COLUMNS)}])
def test_write_figures_on_empty_tables_writes_figures_that_say_so(tmp_path, tables):
    paths = figures.write_figures(tables, tmp_path)
    assert len(paths) == 2 * len(figures.FIGURES)
    assert all(path.stat().st_size > 0 for path in paths)
    for stem, make in figures._makers(tables).items():
        texts = [t.get_text() for ax in make().axes for t in ax.texts]
        assert any(text.endswith("yet") for text in texts), stem  # "no runs yet", "no TIS rows yet", ...


def test_importing_the_module_for_its_names_stays_light():
    code = "import sys, medseg.aggregate.figures as f; print(len(f.FIGURES), *(m in sys.modules for m in ('pandas', 'matplotlib', 'seaborn', 'numpy')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == [str(len(figures.FIGURES)), "False", "False", "False", "False"]
