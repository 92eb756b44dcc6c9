"""`medseg robustness` (every variant of Eq. 3 for one encoder file) and `medseg rank` (many files, best first)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from medseg.argtypes import MAX_MODEL_IMAGE_SIZE, MIN_MODEL_IMAGE_SIZE, model_image_size, non_negative_int, positive_int
from medseg.errors import MedsegError
from medseg.names import MODES
from medseg.paper import MARGINS
from medseg.selection import main_variant

if TYPE_CHECKING:
    from medseg.models.encoder_file import EncoderFile
    from medseg.robustness.score import Dataset, Scores

log = logging.getLogger(__name__)


def _margin(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"a margin must be a finite number of at least 0, got {text}")
    return value


DATASET_PLACEHOLDER = "{dataset}"


def _add_scoring_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scoring (what the scores depend on)")
    group.add_argument(
        "--margins",
        type=_margin,
        nargs="+",
        default=list(MARGINS),
        metavar="EPS",
        help=f"margins ε of Eq. 3 (default: {' '.join(f'{margin:g}' for margin in MARGINS)})",
    )
    group.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="seed of the per-image jitter factors and of the random negatives; the same seed gives "
        "every encoder the same views and negatives (default: 0)",
    )
    group.add_argument(
        "--image-size",
        type=model_image_size,
        default=None,
        help=f"square model input for ACDC, COVID-QU-Ex and folder datasets, {MIN_MODEL_IMAGE_SIZE} to "
        f"{MAX_MODEL_IMAGE_SIZE} (default: the size recorded in the encoder file, 224 for a timm file); "
        "IDRiD always uses its tile",
    )
    group.add_argument("--split", default="train", help="which split to score (default: train, as in the paper)")
    # The encoder's float32 output for an image depends on the batch shape and device (other kernels).
    run = parser.add_argument_group("running (results depend on these only through floating-point rounding)")
    run.add_argument(
        "--batch",
        type=positive_int,
        default=32,
        help="samples per forward pass (default: 32); robustness values of different batch sizes "
        "differ in float32 rounding only (docs/robustness.md: measured differences)",
    )
    run.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")


def register(subparsers: argparse._SubParsersAction) -> None:
    robustness = subparsers.add_parser(
        "robustness",
        help="score one encoder file: every robustness variant (paper Eq. 3) on a prepared dataset",
        description="Jitter every training sample twice (Algorithm 3, factors per image), run both views through "
        "the encoder (eval mode, float32) and write one Parquet row per variant: distance (cosine, l2, "
        "correlation) x margin x level (last, second_to_last) x pooled, with columns distance, margin, level, "
        "pooled, robustness (1 - mean hinge, higher is better), hinge_mean, n_images, seconds. The encoder is "
        "a medseg encoder.safetensors or a timm resnet50 state dict saved as safetensors (scored as the "
        "resnet50_attention_unet encoder); which one is read from the file. With --rankme, a third pass over the "
        "unjittered samples also gives RankMe (Garrido et al., ICML 2023) of the pooled features of each level. "
        "Several --data score the file on each in one process (one start-up); then --out (and --save-features, "
        "--rankme) must hold {dataset}, replaced by each data folder's name.",
    )
    robustness.add_argument("--encoder", type=Path, required=True, help="encoder file (safetensors)")
    robustness.add_argument(
        "--data",
        type=Path,
        nargs="+",
        required=True,
        help="prepared segmentation dataset(s) (the output of `medseg prepare`), e.g. results/data/acdc",
    )
    robustness.add_argument(
        "--out",
        type=Path,
        required=True,
        help="Parquet file to write, e.g. results/robustness/dataset=acdc/model=unet/scheme=simple/epoch=5/robustness.parquet",
    )
    robustness.add_argument(
        "--save-features",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write every representation as safetensors: query/key.{last,second_to_last}."
        "{pooled,unpooled} of shape (N, D) in sample order, and int64 `negative` (holds all "
        "features in memory)",
    )
    robustness.add_argument(
        "--rankme",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write RankMe (Garrido et al., ICML 2023: exp of the entropy of the normalised singular values) "
        "of the pooled features of each level on the unjittered samples, one Parquet row per level with columns "
        "level, rankme, n_images, n_features, seconds; costs a third forward pass (its time is logged), none "
        "without this option",
    )
    _add_scoring_options(robustness)
    robustness.set_defaults(run=run_robustness)

    rank = subparsers.add_parser(
        "rank",
        help="score several encoder files on one dataset and list them best first",
        description="Score each encoder file like `medseg robustness` (same views and negatives for all) and print "
        "them best first by the paper's main variant for the downstream mode: cosine distance, margin 0.5, "
        "second-to-last level, unpooled for full training, pooled for decoder-only training. --out keeps every "
        "variant of every file. --margins takes several values: give it after the encoder files.",
    )
    rank.add_argument("encoders", type=Path, nargs="+", metavar="ENCODER", help="encoder files (safetensors)")
    rank.add_argument(
        "--data",
        type=Path,
        required=True,
        help="a prepared segmentation dataset (the output of `medseg prepare`), e.g. results/data/acdc",
    )
    rank.add_argument(
        "--mode",
        choices=MODES,
        default="full",
        help="downstream training the choice is for: full or decoder (default: full)",
    )
    rank.add_argument(
        "--out",
        type=Path,
        default=None,
        help="also write every variant of every file, with an `encoder` column (.parquet or .csv)",
    )
    _add_scoring_options(rank)
    rank.set_defaults(run=run_rank)

    online = subparsers.add_parser(
        "online",
        help="the online method: the checkpoint kept by robustness as an early-stopping signal",
        description="Walk the checkpoints from the first pretrained one while the next checkpoint's robustness "
        "(main variant for --mode: cosine, margin 0.5, second-to-last level, unpooled for full, pooled for "
        "decoder) is higher; keep the checkpoint before the first decrease (paper §4, §6). Writes a JSON file "
        "with the walk's dataset, model and scheme, the chosen epoch, the trail walked and the pretraining epochs "
        "it cost. Each FILE is a robustness.parquet under .../dataset=D/model=M/scheme=S/epoch=N/ (the hive path "
        "names its checkpoint); the files must cover the walk and share D, M and S (the scratch encoder, "
        "scheme=scratch/epoch=0, belongs to every scheme).",
    )
    online.add_argument(
        "files", type=Path, nargs="+", metavar="FILE", help="robustness.parquet files of the checkpoints walked"
    )
    online.add_argument("--mode", choices=MODES, required=True, help="downstream training the choice is for")
    online.add_argument(
        "--checkpoints",
        type=positive_int,
        nargs="+",
        required=True,
        metavar="EPOCH",
        help="the configured checkpoint epochs (the last is the planned length)",
    )
    online.add_argument("--out", type=Path, required=True, help="choice.json to write")
    online.add_argument(
        "--scores",
        type=Path,
        nargs="+",
        default=None,
        metavar="FILE",
        help="downstream scores.parquet of the kept checkpoint (.../dataset=D/model=M/scheme=S/"
        "epoch=N/mode=M/seed=S/), one per seed: their mean Dice goes into the JSON file as `downstream`",
    )
    online.set_defaults(run=run_online)


def _unique(values: list[float]) -> list[float]:
    return list(dict.fromkeys(values))


def _check_out(path: Path, suffixes: tuple[str, ...]) -> None:
    if path.suffix.lower() not in suffixes:
        raise MedsegError(f"{path}: expected a file name ending in {' or '.join(suffixes)}")


def run_robustness(args: argparse.Namespace) -> None:
    from medseg.atomic import check_file_target
    from medseg.models.encoder_file import inspect
    from medseg.robustness.score import open_dataset

    _check_out(args.out, (".parquet",))
    if args.save_features is not None:
        _check_out(args.save_features, (".safetensors",))
    if args.rankme is not None:
        _check_out(args.rankme, (".parquet",))
        if args.rankme == args.out:
            raise MedsegError(f"--rankme {args.rankme} is also --out: each needs its own file")
    names = [data.name for data in args.data]
    if len(set(names)) != len(names):
        raise MedsegError(f"--data names a dataset folder twice: {' '.join(names)}")
    if len(names) > 1:
        for option, path in (("out", args.out), ("save-features", args.save_features), ("rankme", args.rankme)):
            if path is not None and DATASET_PLACEHOLDER not in str(path):
                raise MedsegError(
                    f"--{option} {path} has no {DATASET_PLACEHOLDER}, but {len(names)} datasets are "
                    "scored: each needs its own file"
                )
    outputs = [
        [
            None if path is None else Path(str(path).replace(DATASET_PLACEHOLDER, data.name))
            for path in (args.out, args.save_features, args.rankme)
        ]
        for data in args.data
    ]
    for path in (path for paths in outputs for path in paths if path is not None):
        check_file_target(path)
    # Every dataset, and the encoder at every dataset's input size, is checked before the first is scored.
    datasets = [open_dataset(data, args.split) for data in args.data]
    _check_loadable(inspect(args.encoder), datasets, args.image_size)
    for data, dataset, (out, features, rankme) in zip(args.data, datasets, outputs):
        _score_one(args, data, dataset, out, features, rankme)


def _check_loadable(info: EncoderFile, datasets: list[Dataset], image_size: int | None) -> None:
    """MedsegError unless the encoder file loads at the input size of every dataset (no weights are read)."""
    from medseg.models.encoder_file import check_loadable
    from medseg.robustness.score import scoring_size

    for size in dict.fromkeys(scoring_size(info, dataset, image_size) for dataset in datasets):
        check_loadable(info, size)


def _score_one(
    args: argparse.Namespace, data: Path, dataset: Dataset, out: Path, features: Path | None, rankme: Path | None
) -> None:
    """Score the encoder file on one dataset and write its table (and features, RankMe)."""
    from safetensors.torch import save_file

    from medseg.atomic import atomic_file
    from medseg.robustness.score import score_file

    info, size, scores = score_file(
        args.encoder,
        dataset,
        image_size=args.image_size,
        seed=args.seed,
        batch=args.batch,
        device=args.device,
        save_features=features is not None,
        with_rankme=rankme is not None,
    )
    table = scores.table(_unique(args.margins))
    with atomic_file(out) as tmp:
        table.to_parquet(tmp, index=False)
    if features is not None:
        metadata = {
            "encoder": str(args.encoder),
            "kind": info.kind,
            "model": info.model,
            "data": str(data),
            "split": args.split,
            "input_size": str(size),
            "seed": str(args.seed),
            "rows": "IDRiD: the split's images cut into test_tile tiles, image by image, tile rows then columns"
            if dataset.meta.get("type") == "idrid"
            else "the rows of the split's index.parquet",
        }
        with atomic_file(features) as tmp:
            save_file(scores.features, tmp, metadata=metadata)
    main = table[(table.distance == "cosine") & (table.margin == 0.5) & (table.level == "second_to_last")]
    log.info(
        "%s: %d samples in %.1f s; main variants (cosine, 0.5, second_to_last): %s -> %s",
        args.encoder,
        scores.n_images,
        scores.seconds,
        ", ".join(f"{'pooled' if r.pooled else 'unpooled'} {r.robustness:.4f}" for r in main.itertuples()),
        out,
    )
    if rankme is not None:
        _write_rankme(scores, rankme)


def _write_rankme(scores: Scores, path: Path) -> None:
    """Write the RankMe table and log its values and what the third pass cost beside the two robustness passes."""
    from medseg.atomic import atomic_file

    result = scores.rankme
    with atomic_file(path) as tmp:
        result.table().to_parquet(tmp, index=False)
    log.info(
        "rankme: %.2f s for %d images (%.0f %% of the %.2f s of the two robustness passes); %s -> %s",
        result.seconds,
        result.n_images,
        100 * result.seconds / scores.seconds,
        scores.seconds,
        ", ".join(f"{level} {value:.2f}" for level, value in result.values.items()),
        path,
    )


def run_rank(args: argparse.Namespace) -> None:
    import pandas as pd

    from medseg.atomic import atomic_file, check_file_target
    from medseg.models.encoder_file import inspect
    from medseg.robustness.score import open_dataset, score_file

    if args.out is not None:
        _check_out(args.out, (".parquet", ".csv"))
        check_file_target(args.out)
    variant = main_variant(args.mode)
    margins = _unique([*args.margins, variant.margin])
    dataset = open_dataset(args.data, args.split)
    for path in args.encoders:  # every file is checked before the first is scored
        _check_loadable(inspect(path), [dataset], args.image_size)
    tables, ranked = [], []
    for path in args.encoders:
        info, size, scores = score_file(
            path, dataset, image_size=args.image_size, seed=args.seed, batch=args.batch, device=args.device
        )
        table = scores.table(margins)
        main = table[
            (table.distance == variant.distance)
            & (table.margin == variant.margin)
            & (table.level == variant.level)
            & (table.pooled == variant.pooled)
        ]
        ranked.append((float(main.robustness.iloc[0]), str(path), info.describe(), size))
        tables.append(table.assign(encoder=str(path), model=info.model, kind=info.kind, input_size=size))
    ranked.sort(key=lambda item: -item[0])  # stable: ties keep the order given
    pooling = "pooled" if variant.pooled else "unpooled"
    print(
        f"robustness on {dataset.path} ({dataset.split_name}, {len(dataset.windows)} samples, seed {args.seed}); "
        f"main variant for --mode {args.mode}: {variant.distance}, margin {variant.margin:g}, {variant.level}, {pooling}"
    )
    print(f"{'rank':>4}  {'robustness':>10}  encoder")
    for position, (value, path, description, size) in enumerate(ranked, start=1):
        print(f"{position:>4}  {value:>10.4f}  {path}  [{description}, input {size}x{size}]")
    if args.out is not None:
        table = pd.concat(tables, ignore_index=True)
        with atomic_file(args.out) as tmp:
            if args.out.suffix.lower() == ".csv":
                table.to_csv(tmp, index=False)
            else:
                table.to_parquet(tmp, index=False)
        print(f"every variant: {args.out}")


def run_online(args: argparse.Namespace) -> None:
    from medseg.atomic import check_file_target
    from medseg.robustness.online import CELL_KEYS, downstream_record, online_choice_record, write_choice

    check_file_target(args.out)
    record = online_choice_record(args.checkpoints, args.files, args.mode)
    if args.scores:
        keys = {key: record[key] for key in CELL_KEYS}
        record["downstream"] = downstream_record(args.scores, record["chosen_epoch"], args.mode, keys)
    write_choice(record, args.out)
    log.info(
        "online choice for %s, %s, %s, %s training: epoch %d after the trail %s (%d of %d pretraining epochs) -> %s",
        record["dataset"],
        record["model"],
        record["scheme"],
        args.mode,
        record["chosen_epoch"],
        [step["epoch"] for step in record["trail"]],
        record["pretrained_epochs"],
        record["planned_epochs"],
        args.out,
    )
    if args.scores:
        log.info("its downstream mean Dice over %d seed(s): %.4f", len(args.scores), record["downstream"]["mean_dice"])
