"""The paper's figures from the collected tables: seaborn + matplotlib, saved as PNG and SVG.

Every figure function takes the collected DataFrames (`scores`, `robustness`, `pretraining`,
`tis`: the columns of docs/design.md and `medseg.aggregate.tis.COLUMNS`) and returns a
matplotlib `Figure`; `write_figures` makes every figure of `FIGURES` and saves it. A table that is
empty or lacks what a figure needs (a grid still running) gives a figure that says so.

Conventions shared by the figures:

- One palette (`PALETTE`, seaborn's colour-blind one) with a fixed colour per model, per
  pretraining scheme and per downstream mode, so that a hue means the same in every figure.
- Checkpoints (epochs 0, 1, 5, 20, ..., 300: very uneven) sit at evenly spaced positions
  labelled with their epoch, so that 0, 1 and 5 stay readable; the axis says so.
- The scratch encoder (scheme `scratch`, epoch 0) is the epoch-0 point of both schemes; external
  encoders (`external-<name>`) are not plotted.
- Figures are built on `matplotlib.figure.Figure` (no pyplot: nothing global to close; a
  figure is freed with its last reference) and saved with the Agg (PNG) and SVG renderers,
  without dates or software versions and with a fixed SVG hash salt, so that the same tables give
  byte-identical files.

Only the standard library and medseg's pure modules are imported at module level: the workflow
imports `FIGURES` to name its outputs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from medseg.aggregate.labels import DATASET_NAMES as DATASET_LABELS
from medseg.aggregate.labels import MODE_NAMES as MODE_LABELS
from medseg.aggregate.labels import MODEL_NAMES as MODEL_LABELS
from medseg.aggregate.tis import VARIANT, dice_runs, with_scratch
from medseg.atomic import atomic_file
from medseg.names import EXTERNAL_PREFIX, MODEL_NAMES, MODES, PRETRAIN_SCHEMES, SCRATCH, SCRATCH_EPOCH
from medseg.selection import main_variant

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGURES = (
    "fig1_dice_by_epoch",
    "fig2_imagenet_top1",
    *(f"fig3_dice_robustness_{scheme}" for scheme in PRETRAIN_SCHEMES),
    "fig4_online_epochs",
    "figA2_metric_correlation",
    "tis_heatmap",
)
"""The file stems of the figures `write_figures` makes (each as `<stem>.png` and `<stem>.svg`)."""
FORMATS = ("png", "svg")

PALETTE = "colorblind"
"""The seaborn palette of every categorical hue; the indices below fix each name's colour in it."""
MODEL_COLOURS = {"unet": 0, "resnet50_attention_unet": 1, "swin_unet": 2}
SCHEME_COLOURS = {"simple": 9, "advanced": 3, SCRATCH: 7}
MODE_COLOURS = {"full": 4, "decoder": 5}
SPARE_COLOURS = (6, 8)  # for names outside the vocabulary (none today); beyond two, the first colour again
ROBUSTNESS_CMAP = "rocket_r"  # sequential, light to dark: a darker dot is a more robust checkpoint
ROBUSTNESS_CMAP_FROM = 0.2  # the lightest end of rocket_r is near white: start the scale above it

SCHEME_LABELS = {"simple": "simple pretraining", "advanced": "advanced pretraining", SCRATCH: "scratch encoder"}
MODE_LINES = {"full": "-", "decoder": "--"}
MODE_MARKERS = {"full": "o", "decoder": "s"}
INDICATOR_LABELS = {
    "robustness_offline": "robustness, offline",
    "robustness_online": "robustness, online",
    "rankme_offline": "RankMe, offline",
    "rankme_online": "RankMe, online",
    "imagenet_accuracy": "ImageNet accuracy",
    "no_pretraining": "no pretraining",
}
MAIN_INDICATORS = ("robustness_offline", "robustness_online", "rankme_offline", "rankme_online")
"""Indicators with variants: the heat map takes their main variant (`main` true)."""
METRICS = ("dice", "jaccard", "mcc", "ap", "hd95")
METRIC_LABELS = {"dice": "Dice", "jaccard": "Jaccard", "mcc": "MCC", "ap": "mAP", "hd95": "\u2212HD95"}
NEGATED_METRICS = ("hd95",)  # lower is better: negated so that every metric grows with quality

EPOCH_AXIS = "ImageNet pretraining (epochs)"
SPACING = "checkpoints evenly spaced"
DICE_AXIS = "mean test Dice"
NO_RUNS = "no runs yet"
DPI = 100
METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}
"""Saved without the dates and version strings matplotlib writes by default."""


def _rc() -> dict:
    """Seaborn's whitegrid style at notebook size, and what makes the files repeatable."""
    import seaborn as sns

    return {
        **sns.axes_style("whitegrid"),
        **sns.plotting_context("notebook"),
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "svg.hashsalt": "medseg",
        "svg.fonttype": "path",
        "legend.frameon": False,
    }


def _styled(make: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure under `_rc()`, whatever the caller's matplotlib settings."""

    @functools.wraps(make)
    def styled(*args, **kwargs) -> Figure:
        import matplotlib

        with matplotlib.rc_context(_rc()):
            return make(*args, **kwargs)

    return styled


def _colours(names: Iterable[str], fixed: Mapping[str, int]) -> dict[str, tuple]:
    """Each name's colour: its fixed palette entry, or the next spare one for an unknown name."""
    import seaborn as sns

    palette = sns.color_palette(PALETTE)
    spare = iter(SPARE_COLOURS)
    return {name: palette[fixed[name] if name in fixed else next(spare, 0)] for name in names}


def _order(values: Iterable, known: Sequence[str] = ()) -> list[str]:
    """The distinct values: those of `known` in its order, then the others sorted."""
    present = {str(v) for v in values}
    return [k for k in known if k in present] + sorted(present - set(known))


def _lacks(table: pd.DataFrame | None, columns: Sequence[str]) -> bool:
    return table is None or table.empty or any(c not in table.columns for c in columns)


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _message(title: str, message: str) -> Figure:
    """A figure that only says why there is nothing to plot (never a blank file)."""
    import textwrap

    fig = _figure(8, 2.5)
    ax = fig.add_subplot()
    ax.set_axis_off()
    title = "\n".join(textwrap.wrap(title, 60))
    for y, text, style in ((0.65, title, {"fontsize": "large", "weight": "bold"}), (0.2, message, {})):
        ax.text(0.5, y, text, ha="center", va="center", transform=ax.transAxes, **style).set_in_layout(False)
    return fig


def _epoch_axis(ax: Axes, epochs: Sequence[int], narrow: bool = True) -> None:
    """Checkpoints at positions 0, 1, 2, ... labelled with their epoch."""
    ax.set_xticks(range(len(epochs)), [str(e) for e in epochs])
    # The paper's ten checkpoints do not fit side by side in a narrow panel (a third of a report's width).
    ax.tick_params(axis="x", labelsize="small", labelrotation=45 if narrow and len(epochs) > 6 else 0)
    ax.set_xlim(-0.5, len(epochs) - 0.5)


def _bool(column: pd.Series) -> pd.Series:
    """A nullable boolean column as plain booleans, missing values false."""
    return column.astype("boolean").fillna(False).astype(bool)


def _pretrained(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows of the pretraining schemes, with the scratch encoder's as each scheme's epoch 0.

    External encoders are dropped. Without any pretrained scheme yet, the scratch rows stay under
    their own scheme, so a grid that has only trained from scratch still shows them.
    """
    table = table[~table["scheme"].astype(str).str.startswith(EXTERNAL_PREFIX)]
    if set(table["scheme"].astype(str)) <= {SCRATCH}:
        return table[table["epoch"] == SCRATCH_EPOCH]
    return with_scratch(table, keys)


def _seed_stats(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD (ddof 1; 0 with one seed) of the runs' mean Dice per cell and checkpoint."""
    runs = dice_runs(scores).dropna(subset=["dice"])
    runs = _pretrained(runs.astype({"scheme": str, "epoch": int}), ["dataset", "model", "mode"])
    keys = ["dataset", "model", "scheme", "mode", "epoch"]
    stats = runs.astype({k: str for k in keys[:-1]}).groupby(keys)["dice"].agg(["mean", "std", "count"])
    return stats.fillna({"std": 0.0}).reset_index()


def _legend(fig: Figure, schemes: Sequence[str], modes: Sequence[str], colours: Mapping[str, tuple]) -> None:
    """Below the panels: the colour of each scheme, the line and marker of each mode."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colours[s], linewidth=2.5, label=SCHEME_LABELS.get(s, s)) for s in schemes]
    for mode in modes:
        style = {"linestyle": MODE_LINES.get(mode, ":"), "marker": MODE_MARKERS.get(mode, "^")}
        handles.append(Line2D([], [], color="0.2", label=MODE_LABELS.get(mode, mode), **style))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles))


@_styled
def dice_by_epoch(scores: pd.DataFrame) -> Figure:
    """Fig. 1: mean test Dice (± 1 SD over seeds, error bars) per checkpoint, dataset x model panels.

    Hue: pretraining scheme; line style and marker: downstream mode. The checkpoints sit at evenly
    spaced positions labelled with their epoch (epochs 0, 1 and 5 would crowd on any continuous
    scale); the two schemes and modes are dodged a little sideways so that the bars stay apart.
    """
    title = f"Mean test Dice by ImageNet pretraining length (mean \u00b1 1 SD over seeds; {SPACING})"
    if _lacks(scores, ["dataset", "model", "scheme", "epoch", "mode", "seed", "metric", "class", "value"]):
        return _message(title, NO_RUNS)
    stats = _seed_stats(scores)
    if stats.empty:
        return _message(title, NO_RUNS)
    datasets = _order(stats["dataset"], list(DATASET_LABELS))
    models = _order(stats["model"], MODEL_NAMES)
    schemes = _order(stats["scheme"], [*PRETRAIN_SCHEMES, SCRATCH])
    modes = _order(stats["mode"], MODES)
    epochs = sorted(int(e) for e in stats["epoch"].unique())
    position = {e: i for i, e in enumerate(epochs)}
    colours = _colours(schemes, SCHEME_COLOURS)
    series = [(s, m) for s in schemes for m in modes]
    dodge = {key: 0.25 * (i - (len(series) - 1) / 2) / max(len(series) - 1, 1) for i, key in enumerate(series)}

    fig = _figure(3.4 * len(models) + 0.6, 2.6 * len(datasets) + 1.4)
    axes = fig.subplots(len(datasets), len(models), sharex=True, sharey="row", squeeze=False)
    cells = dict(iter(stats.groupby(["dataset", "model", "scheme", "mode"])))
    for row, dataset in enumerate(datasets):
        for column, model in enumerate(models):
            ax = axes[row, column]
            ax.set_label(f"{dataset}|{model}")
            _epoch_axis(ax, epochs)
            drawn = False
            for scheme, mode in series:
                cell = cells.get((dataset, model, scheme, mode))
                if cell is None:
                    continue
                cell = cell.sort_values("epoch")
                ax.errorbar(
                    cell["epoch"].map(position).to_numpy(float) + dodge[(scheme, mode)],
                    cell["mean"].to_numpy(),
                    yerr=cell["std"].to_numpy(),
                    color=colours[scheme],
                    linestyle=MODE_LINES.get(mode, ":"),
                    marker=MODE_MARKERS.get(mode, "^"),
                    markersize=5,
                    capsize=2,
                    linewidth=1.5,
                    label=f"{scheme}|{mode}",
                )
                drawn = True
            if not drawn:
                ax.text(0.5, 0.5, NO_RUNS, ha="center", va="center", color="grey", transform=ax.transAxes)
            if row == 0:
                ax.set_title(MODEL_LABELS.get(model, model))
            if column == 0:
                ax.set_ylabel(f"{DATASET_LABELS.get(dataset, dataset)}\n{DICE_AXIS}")
    _legend(fig, schemes, modes, colours)
    for ax in axes[-1]:
        ax.set_xlabel(EPOCH_AXIS)
    fig.suptitle(title)
    return fig


@_styled
def imagenet_top1(pretraining: pd.DataFrame) -> Figure:
    """Fig. 2: ImageNet validation top-1 (%) by pretraining epoch, one panel per scheme, hue model."""
    from matplotlib.lines import Line2D

    title = "ImageNet validation accuracy during pretraining"
    if _lacks(pretraining, ["model", "scheme", "train_epoch", "val_top1"]):
        return _message(title, "no pretraining epochs yet")
    rows = pretraining.dropna(subset=["val_top1"]).astype({"model": str, "scheme": str, "train_epoch": int})
    if rows.empty:
        return _message(title, "no validated pretraining epochs yet")
    curves = rows.groupby(["model", "scheme", "train_epoch"])["val_top1"].mean().mul(100).reset_index()
    schemes = _order(curves["scheme"], PRETRAIN_SCHEMES)
    models = _order(curves["model"], MODEL_NAMES)
    colours = _colours(models, MODEL_COLOURS)

    fig = _figure(4.6 * len(schemes) + 1.8, 4.2)
    axes = fig.subplots(1, len(schemes), sharex=True, sharey=True, squeeze=False)[0]
    for ax, scheme in zip(axes, schemes):
        ax.set_label(scheme)
        for model in models:
            curve = curves[(curves["scheme"] == scheme) & (curves["model"] == model)].sort_values("train_epoch")
            if curve.empty:
                continue
            ax.plot(
                curve["train_epoch"].to_numpy(),
                curve["val_top1"].to_numpy(),
                color=colours[model],
                marker="o" if len(curve) <= 20 else None,  # markers only where they do not blur the line
                markersize=4,
                linewidth=1.8,
                label=MODEL_LABELS.get(model, model),
            )
        ax.set_title(f"{scheme} pretraining")
        ax.set_xlabel("ImageNet pretraining epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0].set_ylabel("validation top-1 accuracy (%)")
    handles = [Line2D([], [], color=colours[m], linewidth=1.8, label=MODEL_LABELS.get(m, m)) for m in models]
    fig.legend(handles=handles, loc="outside right center")
    fig.suptitle(title)
    return fig


def _main_robustness(robustness: pd.DataFrame, scheme: str, mode: str) -> pd.DataFrame:
    """The main variant's robustness of `mode` for `scheme`'s checkpoints, the scratch encoder as epoch 0."""
    variant = main_variant(mode)
    rows = robustness[
        (robustness["distance"].astype(str) == variant.distance)
        & (robustness["margin"].astype(float) == variant.margin)
        & (robustness["level"].astype(str) == variant.level)
        & (_bool(robustness["pooled"]) == variant.pooled)
        & robustness["scheme"].astype(str).isin([scheme, SCRATCH])
    ].astype({"dataset": str, "model": str, "scheme": str, "epoch": int})
    rows = with_scratch(rows, ["dataset", "model"]) if scheme in set(rows["scheme"]) else rows.assign(scheme=scheme)
    return rows[(rows["scheme"] == scheme)].dropna(subset=["robustness"])


def _choices(tis: pd.DataFrame | None, scheme: str) -> dict[tuple, dict[str, int]]:
    """{(dataset, mode, model): {"offline"|"online": chosen epoch}} of the main robustness variant."""
    if _lacks(tis, ["dataset", "model", "scheme", "mode", "indicator", "main", "chosen_epoch"]):
        return {}
    rows = tis[
        (tis["scheme"].astype(str) == scheme)
        & tis["indicator"].isin(["robustness_offline", "robustness_online"])
        & _bool(tis["main"])
    ].dropna(subset=["chosen_epoch"])
    choices: dict[tuple, dict[str, int]] = {}
    for row in rows.itertuples(index=False):
        method = row.indicator.removeprefix("robustness_")
        choices.setdefault((str(row.dataset), str(row.mode), str(row.model)), {})[method] = int(row.chosen_epoch)
    return choices


def _scaled(values: Sequence[float]) -> list[float]:
    """Min-max scaling to 0..1 within one panel; all equal -> 1 (nothing to tell apart)."""
    low, high = min(values), max(values)
    return [1.0 if high == low else (v - low) / (high - low) for v in values]


def _robustness_cmap():
    import numpy as np
    import seaborn as sns
    from matplotlib.colors import ListedColormap

    return ListedColormap(sns.color_palette(ROBUSTNESS_CMAP, as_cmap=True)(np.linspace(ROBUSTNESS_CMAP_FROM, 1, 256)))


def _dot_size(scaled: float) -> float:
    return 25 + 125 * scaled


CHOICE_MARKERS = {"offline": ("o", 400), "online": ("D", 210)}
"""Fig. 3's hollow black marks of the chosen checkpoints: (marker, area); the online one fits inside."""


def _robustness_panel(
    ax: Axes, x: Mapping[int, int], dice: Mapping[int, float], robustness: Mapping[int, float], chosen: Mapping
) -> None:
    """One panel of Fig. 3: the Dice line, its dots by robustness, and the chosen checkpoints' marks."""
    cmap = _robustness_cmap()
    known = sorted(dice)
    scored = [e for e in known if e in robustness]
    unscored = [e for e in known if e not in robustness]
    scaled = _scaled([robustness[e] for e in scored]) if scored else []
    ax.plot([x[e] for e in known], [dice[e] for e in known], color="0.6", linewidth=1.2, zorder=1)
    ax.scatter(
        [x[e] for e in scored],
        [dice[e] for e in scored],
        c=[cmap(v) for v in scaled],
        s=[_dot_size(v) for v in scaled],
        edgecolors="white",
        linewidths=0.5,
        zorder=3,
        gid="robustness",
    )
    ax.scatter(
        [x[e] for e in unscored],
        [dice[e] for e in unscored],
        s=_dot_size(0.5),
        facecolors="none",
        edgecolors="0.5",
        zorder=3,
        gid="no robustness",
    )
    for method, (marker, size) in CHOICE_MARKERS.items():
        epoch = chosen.get(method)
        if epoch in dice:
            ax.scatter(
                [x[epoch]],
                [dice[epoch]],
                s=size,
                marker=marker,
                facecolors="none",
                edgecolors="black",
                linewidths=1.4,
                zorder=4,
                gid=f"{method} choice",
            )


def _robustness_axis(ax: Axes, x: Mapping[int, int], robustness: Mapping[int, float], row: Axes | None) -> Axes:
    """The raw robustness as a dashed line on a right axis shared along the row (`row`: its first one)."""
    right = ax.twinx()
    if row is not None:
        right.sharey(row)
    epochs = sorted(robustness)
    right.plot([x[e] for e in epochs], [robustness[e] for e in epochs], color="0.45", linestyle="--", linewidth=1)
    right.grid(False)
    # twinx turns the tick marks on: off again, as everywhere in the style; labels only at the row's end.
    right.tick_params(axis="y", labelsize="small", colors="0.4", labelright=False, right=False)
    ax.tick_params(axis="y", left=False)
    return right


def _robustness_legend(fig: Figure, axes) -> None:
    """The legend of Fig. 3's marks below the panels, and the colour bar of the scaled robustness."""
    import matplotlib.cm
    import matplotlib.colors
    from matplotlib.lines import Line2D

    cmap = _robustness_cmap()
    ring = {"linestyle": "", "markerfacecolor": "none", "color": "black"}
    handles = [
        Line2D([], [], color="0.6", marker="o", markerfacecolor=cmap(0.7), markeredgecolor="white", label=DICE_AXIS),
        Line2D([], [], color="0.45", linestyle="--", label="robustness (right axis)"),
        Line2D([], [], marker="o", markersize=13, label="offline choice", **ring),
        Line2D([], [], marker="D", markersize=9, label="online choice", **ring),
        Line2D([], [], marker="o", label="no robustness yet", **{**ring, "color": "0.5"}),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize="small")
    bar = fig.colorbar(
        matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(0, 1), cmap=cmap),
        ax=axes,
        location="right",
        shrink=0.5,
        aspect=30,
    )
    bar.set_label("robustness, scaled within each panel\n(0 lowest, 1 highest; dot size too)", fontsize="small")


@_styled
def dice_and_robustness(
    scores: pd.DataFrame, robustness: pd.DataFrame | None, tis: pd.DataFrame | None, scheme: str
) -> Figure:
    """Fig. 3: mean test Dice per checkpoint of one scheme, dots coloured and sized by robustness.

    Panels: (dataset, mode) rows x model columns. Robustness is the mode's main variant
    (`medseg.selection.main_variant`), scaled 0..1 within each panel for the dots (larger and
    darker: more robust; grey hollow dots: no robustness yet); its raw values are the dashed grey
    line on the right axis. Black rings mark the offline choice, black diamonds the online one
    (the `tis` table's main-variant rows).
    """
    title = f"Mean test Dice and robustness per checkpoint, {scheme} pretraining ({SPACING})"
    if _lacks(scores, ["dataset", "model", "scheme", "epoch", "mode", "seed", "metric", "class", "value"]):
        return _message(title, NO_RUNS)
    stats = _seed_stats(scores)
    stats = stats[stats["scheme"] == scheme]
    if stats.empty:
        return _message(title, f"no runs of the {scheme} scheme yet")
    models = _order(stats["model"], MODEL_NAMES)
    present = set(zip(stats["dataset"], stats["mode"]))
    rows = [
        (d, m) for d in _order(stats["dataset"], list(DATASET_LABELS)) for m in _order(stats["mode"], MODES)
        if (d, m) in present
    ]  # fmt: skip
    epochs = sorted(int(e) for e in stats["epoch"].unique())
    x = {e: i for i, e in enumerate(epochs)}
    dice = {key: dict(zip(cell["epoch"], cell["mean"])) for key, cell in stats.groupby(["dataset", "mode", "model"])}
    scored: dict[tuple, dict[int, float]] = {}
    if not _lacks(robustness, ["dataset", "model", "scheme", "epoch", *VARIANT, "robustness"]):
        for mode in {m for _, m in rows}:
            table = _main_robustness(robustness, scheme, mode)
            for dataset, model, epoch, value in table[["dataset", "model", "epoch", "robustness"]].itertuples(False):
                scored.setdefault((dataset, mode, model), {})[int(epoch)] = float(value)
    choices = _choices(tis, scheme)

    fig = _figure(3.5 * len(models) + 1.6, 2.3 * len(rows) + 1.5)
    axes = fig.subplots(len(rows), len(models), sharex=True, sharey="row", squeeze=False)
    for r, (dataset, mode) in enumerate(rows):
        row_right = None
        for c, model in enumerate(models):
            key = (dataset, mode, model)
            ax = axes[r, c]
            ax.set_label("|".join(key))
            _epoch_axis(ax, epochs)
            ax.margins(y=0.15)  # room for the rings around the top and bottom dots
            if key not in dice:
                ax.text(0.5, 0.5, NO_RUNS, ha="center", va="center", color="grey", transform=ax.transAxes)
            cell_dice = dice.get(key, {})
            robust = {e: v for e, v in scored.get(key, {}).items() if e in cell_dice}
            _robustness_panel(ax, x, cell_dice, robust, choices.get(key, {}))
            if robust:
                right = _robustness_axis(ax, x, robust, row_right)
                right.set_label(f"{ax.get_label()}|robustness")
                row_right = row_right or right
                if c == len(models) - 1:
                    right.tick_params(axis="y", labelright=True)
                    right.set_ylabel("robustness", color="0.4")
            if r == 0:
                ax.set_title(MODEL_LABELS.get(model, model))
            if c == 0:
                ax.set_ylabel(f"{DATASET_LABELS.get(dataset, dataset)}, {MODE_LABELS.get(mode, mode)}\n{DICE_AXIS}")
    for ax in axes[-1]:
        ax.set_xlabel(EPOCH_AXIS)
    _robustness_legend(fig, axes)
    fig.suptitle(title)
    return fig


@_styled
def online_epochs(tis: pd.DataFrame, epochs: Iterable[int] | None = None) -> Figure:
    """Fig. 4: how often the online rule (main variant) kept each checkpoint, hue mode.

    `epochs`: the configured checkpoints, all shown, with their zero counts (the chosen and best
    epochs in `tis` are added). The scratch encoder (epoch 0) is never shown: the online walk
    starts at the first pretrained checkpoint.
    """
    title = "Checkpoints kept by the online method (main robustness variant)"
    if _lacks(tis, ["mode", "indicator", "main", "chosen_epoch"]):
        return _message(title, "no TIS rows yet")
    rows = tis[(tis["indicator"] == "robustness_online") & _bool(tis["main"])]
    chosen = rows.dropna(subset=["chosen_epoch"]).astype({"mode": str, "chosen_epoch": int})
    if chosen.empty:
        return _message(title, "no online choices yet")
    seen = {int(e) for column in ("chosen_epoch", "best_epoch") if column in tis for e in tis[column].dropna()}
    axis = sorted(e for e in {*(int(e) for e in epochs or ()), *seen} if e != SCRATCH_EPOCH)
    modes = _order(chosen["mode"], MODES)
    colours = _colours(modes, MODE_COLOURS)
    counts = chosen.groupby(["mode", "chosen_epoch"]).size()
    width = 0.8 / len(modes)

    fig = _figure(min(11.0, max(8.0, 0.45 * len(axis) * len(modes) + 3.5)), 4.2)
    ax = fig.add_subplot()
    ax.set_label("counts")
    for i, mode in enumerate(modes):
        heights = [int(counts.get((mode, e), 0)) for e in axis]
        bars = ax.bar(
            [p + (i - (len(modes) - 1) / 2) * width for p in range(len(axis))],
            heights,
            width=width,
            color=colours[mode],
            label=MODE_LABELS.get(mode, mode),
            gid=mode,
        )
        ax.bar_label(bars, fontsize="small")
    _epoch_axis(ax, axis, narrow=False)
    ax.grid(axis="x", visible=False)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.margins(y=0.12)
    ax.set_xlabel("checkpoint kept (ImageNet pretraining epochs)")
    ax.set_ylabel("configurations (count)")
    fig.legend(title="downstream", loc="outside right center")
    per_mode = chosen.groupby("mode").size()
    summary = ", ".join(f"{MODE_LABELS.get(m, m)} {int(per_mode[m])}" for m in modes)
    notes = [f"{len(rows) - len(chosen)} without a choice yet"] if len(rows) > len(chosen) else []
    incomplete = int((~_bool(rows["complete"])).sum()) if "complete" in rows else 0
    notes += [f"{incomplete} incomplete"] if incomplete else []
    ax.set_title("; ".join([f"configurations: {summary}", *notes]), fontsize="small")
    fig.suptitle(title)
    return fig


@_styled
def metric_correlation(scores: pd.DataFrame) -> Figure:
    """Fig. A.2: Spearman correlation of Dice, Jaccard, MCC, mAP and −HD95 (class mean) over all runs."""
    import seaborn as sns

    title = "Spearman correlation of the segmentation metrics"
    keys = ["dataset", "model", "scheme", "epoch", "mode", "seed"]
    if _lacks(scores, [*keys, "metric", "class", "value"]):
        return _message(title, NO_RUNS)
    rows = scores[(scores["class"] == "mean") & scores["metric"].isin(METRICS)].astype({"metric": str})
    wide = rows.groupby([*keys, "metric"], observed=True)["value"].mean().unstack("metric")
    metrics = [m for m in METRICS if m in wide.columns]
    if len(wide) < 2 or len(metrics) < 2:
        return _message(title, "fewer than two runs with two metrics yet")
    wide = wide[metrics]
    for metric in NEGATED_METRICS:
        if metric in wide:
            wide[metric] = -wide[metric]
    correlation = wide.corr(method="spearman")
    labels = [METRIC_LABELS[m] for m in metrics]

    fig = _figure(6.4, 5.2)
    ax = fig.add_subplot()
    ax.set_label("correlation")
    sns.heatmap(
        correlation.to_numpy(),
        ax=ax,
        vmin=-1,
        vmax=1,
        cmap="vlag",
        annot=True,
        fmt=".3f",
        square=True,
        linewidths=0.5,
        xticklabels=labels,
        yticklabels=labels,
        cbar_kws={"label": "Spearman correlation"},
    )
    ax.tick_params(axis="y", rotation=0)
    ax.set_title(f"{len(wide)} runs; class means; HD95 negated (lower is better)", fontsize="small")
    fig.suptitle(title)
    return fig


def _tis_cells(tis: pd.DataFrame) -> pd.DataFrame:
    """Mean TIS per (indicator, dataset, model) over schemes and modes, and whether every row was complete."""
    main = tis["indicator"].isin(MAIN_INDICATORS)
    rows = tis[~main | _bool(tis["main"])].astype({"indicator": str, "dataset": str, "model": str})
    complete = _bool(rows["complete"]) if "complete" in rows else True
    rows = rows.assign(complete=complete, tis=rows["tis"].astype(float))
    return rows.groupby(["indicator", "dataset", "model"]).agg(tis=("tis", "mean"), complete=("complete", "all"))


@_styled
def tis_heatmap(tis: pd.DataFrame) -> Figure:
    """TIS per indicator (main variants) x (dataset, model), mean over schemes and modes; * marks incomplete."""
    import numpy as np
    import seaborn as sns

    title = "Transferability indicator score (TIS), mean over pretraining schemes and downstream modes"
    if _lacks(tis, ["dataset", "model", "indicator", "main", "tis"]):
        return _message(title, "no TIS rows yet")
    cells = _tis_cells(tis)
    if cells.empty:
        return _message(title, "no TIS rows yet")
    indicators = [i for i in INDICATOR_LABELS if i in cells.index.get_level_values("indicator")]
    indicators += sorted(set(cells.index.get_level_values("indicator")) - set(indicators))
    datasets = _order(cells.index.get_level_values("dataset"), list(DATASET_LABELS))
    models = _order(cells.index.get_level_values("model"), MODEL_NAMES)
    pairs = set(zip(cells.index.get_level_values("dataset"), cells.index.get_level_values("model")))
    columns = [(d, m) for d in datasets for m in models if (d, m) in pairs]
    values = np.full((len(indicators), len(columns)), np.nan)
    annotations = np.full(values.shape, "", dtype=object)
    for i, indicator in enumerate(indicators):
        for j, (dataset, model) in enumerate(columns):
            cell = cells.loc[(indicator, dataset, model)] if (indicator, dataset, model) in cells.index else None
            if cell is not None:
                values[i, j] = cell["tis"]
            text = "n/a" if np.isnan(values[i, j]) else f"{values[i, j]:.3f}"
            annotations[i, j] = text + ("*" if cell is not None and not cell["complete"] else "")

    fig = _figure(max(7.0, 0.95 * len(columns) + 3.0), 0.55 * len(indicators) + 2.8)
    ax = fig.add_subplot()
    ax.set_label("tis")
    finite = values[~np.isnan(values)]
    sns.heatmap(
        values,
        ax=ax,
        vmin=min(float(finite.min()), 0.9) if finite.size else 0.9,
        vmax=1,
        cmap="mako",
        linewidths=0.5,
        xticklabels=[_two_lines(MODEL_LABELS.get(m, m)) for _, m in columns],
        yticklabels=[INDICATOR_LABELS.get(i, i) for i in indicators],
        cbar_kws={"label": "TIS (1 = best checkpoint)"},
    )
    # Annotated here rather than by seaborn, which leaves cells without a value (NaN) blank.
    mesh = ax.collections[0]
    for (i, j), text in np.ndenumerate(annotations):
        colour = "0.2" if np.isnan(values[i, j]) or mesh.norm(values[i, j]) > 0.6 else "white"
        ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize="small", color=colour)
    ax.set_facecolor("0.93")
    ax.grid(False)
    ax.tick_params(axis="x", rotation=0, labelsize="small")
    ax.tick_params(axis="y", rotation=0)
    for j, (dataset, _) in enumerate(columns):  # dataset names over their group, a white rule between groups
        if j and columns[j - 1][0] != dataset:
            ax.axvline(j, color="white", linewidth=4)
        if not j or columns[j - 1][0] != dataset:
            span = sum(1 for d, _ in columns if d == dataset)
            ax.text(
                j + span / 2,
                1.02,
                DATASET_LABELS.get(dataset, dataset),
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                weight="bold",
            )
    if any(a.endswith("*") for a in annotations.flat):
        fig.text(
            0.01,
            0.01,
            "* mean over at least one incomplete cell (runs or scores missing: see the notes in tis.parquet)",
            fontsize="small",
            ha="left",
            va="bottom",
        )
        fig.get_layout_engine().set(rect=(0, 0.05, 1, 0.95))
    fig.suptitle(title, fontsize="medium")
    return fig


def _two_lines(label: str) -> str:
    """A long label on two lines, split at its last space: narrow heat map columns."""
    return label.replace(" ", "\n") if label.count(" ") == 1 else "\n".join(label.rsplit(" ", 1))


def _checkpoints(tables: Mapping[str, pd.DataFrame]) -> set[int]:
    """Every checkpoint epoch any table names: the x axis of Fig. 4."""
    epochs: set[int] = set()
    for name in ("scores", "robustness", "pretraining"):
        table = tables.get(name)
        if table is not None and "epoch" in table:
            epochs |= {int(e) for e in table["epoch"].dropna().unique()}
    return epochs


def _makers(tables: Mapping[str, pd.DataFrame]) -> dict[str, Callable[[], Figure]]:
    scores, robustness, tis = tables.get("scores"), tables.get("robustness"), tables.get("tis")
    makers = {
        "fig1_dice_by_epoch": lambda: dice_by_epoch(scores),
        "fig2_imagenet_top1": lambda: imagenet_top1(tables.get("pretraining")),
        "fig4_online_epochs": lambda: online_epochs(tis, _checkpoints(tables)),
        "figA2_metric_correlation": lambda: metric_correlation(scores),
        "tis_heatmap": lambda: tis_heatmap(tis),
    }
    for scheme in PRETRAIN_SCHEMES:
        makers[f"fig3_dice_robustness_{scheme}"] = functools.partial(
            dice_and_robustness, scores, robustness, tis, scheme
        )
    return makers


def save_figure(fig: Figure, stem: Path) -> list[Path]:
    """Save `fig` as `<stem>.png` and `<stem>.svg`, atomically and repeatably."""
    import matplotlib

    paths = []
    with matplotlib.rc_context(_rc()):
        for fmt in FORMATS:
            path = stem.with_name(f"{stem.name}.{fmt}")
            with atomic_file(path) as tmp:
                fig.savefig(tmp, format=fmt, metadata=METADATA[fmt])
            paths.append(path)
    return paths


def write_figures(tables: Mapping[str, pd.DataFrame], out: Path) -> list[Path]:
    """Make every figure of `FIGURES` from the collected tables and save it in `out` (PNG and SVG).

    `tables`: `scores`, `robustness`, `pretraining`, `tis` (a missing or empty one gives figures
    that say what is missing). Returns the files written, in `FIGURES` order.
    """
    out = Path(out)
    makers = _makers(tables)
    paths = []
    for stem in FIGURES:
        fig = makers[stem]()
        paths += save_figure(fig, out / stem)
        fig.clear()  # drop the artists now: a grid's figures are large, and nothing else holds them
    return paths
