"""`medseg train`: downstream segmentation training from an encoder checkpoint, scored on the test split."""

from __future__ import annotations

import argparse
from pathlib import Path

from medseg import paper
from medseg.argtypes import (
    class_name,
    model_image_size,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    segmentation_batch,
)
from medseg.downstream import settings
from medseg.errors import Interrupted, MedsegError
from medseg.names import MODEL_NAMES, MODES

PLACEHOLDERS = {"dataset": "{dataset}", "mode": "{mode}", "seed": "{seed}"}


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a segmentation model from an encoder checkpoint and score it on the test split",
        description="Build the segmentation model with the seed, initialise its encoder from --encoder, train it on the "
        "training split of a prepared dataset (paper Appendix A.4: Dice loss, SGD, polynomial learning rate; "
        "full model, or the decoder with the encoder frozen) and score it on the test split (A.5). Writes --scores "
        "(one row per metric and class: metric, class, value) and --history (one row per epoch: train_epoch, lr, "
        "train_loss, test_dice, images_per_s, seconds; test_dice where evaluated). A hidden resume file beside the "
        "scores is written every --resume-minutes and on SIGTERM/SIGINT (then the command exits with status 75); "
        "the same command run again continues from it to the result of an uninterrupted run. Several --data, "
        "--mode or --seed values train one run each in this process (one start-up for all): then the output paths "
        "must hold {dataset} (the data folder's name), {mode} and/or {seed}, which are replaced per run. Each "
        "finished run also leaves a hidden record beside its resume file until all runs are done, so the same "
        "command run after an interruption writes the finished runs' outputs from it (even if they were deleted, "
        "as Snakemake does) and trains only the rest. Every output place is checked before the first run starts.",
    )
    train.add_argument(
        "--data",
        type=Path,
        nargs="+",
        required=True,
        help="prepared segmentation dataset(s) (the output of `medseg prepare`), e.g. results/data/acdc",
    )
    train.add_argument(
        "--encoder",
        type=Path,
        required=True,
        help="encoder checkpoint: a medseg encoder.safetensors, or a timm resnet50 state dict saved as "
        "safetensors (for resnet50_attention_unet)",
    )
    train.add_argument(
        "--model", choices=MODEL_NAMES, required=True, help="segmentation model; must be the model of the encoder file"
    )
    train.add_argument(
        "--mode",
        choices=MODES,
        nargs="+",
        default=["full"],
        help="full: train the whole model from the checkpoint; decoder: freeze the encoder (eval mode) "
        "and train the decoder (default: full)",
    )
    train.add_argument(
        "--seed",
        type=non_negative_int,
        nargs="+",
        default=[0],
        help="seed(s) of the decoder initialisation, the data order and the augmentation (default: 0; "
        f"the paper trains seeds {', '.join(map(str, paper.SEEDS))})",
    )
    outputs = train.add_argument_group("outputs")
    outputs.add_argument(
        "--scores",
        type=Path,
        required=True,
        help="Parquet file of test scores, e.g. results/downstream/dataset=acdc/model=unet/"
        "scheme=simple/epoch=5/mode=full/seed=0/scores.parquet",
    )
    outputs.add_argument("--history", type=Path, required=True, help="Parquet file of the per-epoch history")
    outputs.add_argument(
        "--save-model",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the trained model's weights (safetensors)",
    )
    outputs.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="FILE",
        help="resume file (default: .<scores stem>.resume.pt beside --scores). A default-placed file "
        "of other settings is ignored with a warning; one named here is refused",
    )
    model = train.add_argument_group("model (default: as recorded in the encoder file)")
    model.add_argument(
        "--image-size",
        type=model_image_size,
        default=None,
        help="model input side for ACDC, COVID-QU-Ex and folder datasets (default: the encoder file's "
        "image size, 224 for a timm file); IDRiD always uses its tile",
    )
    model.add_argument("--width", type=positive_float, default=None, help="width multiplier; checked against the file")
    model.add_argument("--window-size", type=positive_int, default=None, help="Swin window; checked against the file")
    model.add_argument(
        "--classes",
        type=class_name,
        nargs="+",
        default=None,
        metavar="NAME",
        help="expected class names, background first; the dataset's must be the same",
    )
    recipe = train.add_argument_group("recipe (what the results depend on; defaults: the paper's, Appendix A.4)")
    recipe.add_argument(
        "--epochs", type=positive_int, default=paper.EPOCHS, help=f"training epochs (default: {paper.EPOCHS})"
    )
    recipe.add_argument(
        "--batch",
        type=segmentation_batch,
        default=paper.BATCH,
        help=f"images per optimizer step; an epoch's last step takes the remainder (default: {paper.BATCH})",
    )
    recipe.add_argument(
        "--lr",
        type=positive_float,
        default=paper.LR,
        help=f"base learning rate; step i of N uses lr (1 - i/N)^{paper.POWER:g} (default: {paper.LR:g})",
    )
    recipe.add_argument(
        "--momentum",
        type=non_negative_float,
        default=paper.MOMENTUM,
        help=f"SGD momentum (default: {paper.MOMENTUM:g})",
    )
    recipe.add_argument(
        "--weight-decay",
        type=non_negative_float,
        default=paper.WEIGHT_DECAY,
        help=f"SGD weight decay (default: {paper.WEIGHT_DECAY:g})",
    )
    recipe.add_argument(
        "--eval-every",
        type=non_negative_int,
        default=settings.EVAL_EVERY,
        help="test Dice in the history every this many epochs; 0: only after the last epoch, "
        f"which is always scored (default: {settings.EVAL_EVERY})",
    )
    run = train.add_argument_group("execution (results do not depend on these, except CPU vs GPU rounding)")
    run.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    run.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    run.add_argument(
        "--resume-minutes",
        type=non_negative_float,
        default=settings.RESUME_MINUTES,
        help=f"write the resume file this often (default: {settings.RESUME_MINUTES:g})",
    )
    train.set_defaults(run=run_train)


def expand(path: Path | None, dataset: str, mode: str, seed: int) -> Path | None:
    """`path` with {dataset}, {mode} and {seed} replaced."""
    if path is None:
        return None
    text = str(path)
    for key, value in (("dataset", dataset), ("mode", mode), ("seed", str(seed))):
        text = text.replace(PLACEHOLDERS[key], value)
    return Path(text)


def check_outputs(args: argparse.Namespace) -> None:
    """Parquet outputs, distinct values, and placeholders for whatever varies between runs."""
    for option in ("scores", "history"):
        path = getattr(args, option)
        if path.suffix.lower() != ".parquet":
            raise MedsegError(f"--{option} {path}: expected a file name ending in .parquet")
    datasets = [data.name for data in args.data]
    if args.classes is not None and len(datasets) > 1:
        raise MedsegError("--classes checks one dataset; give a single --data with it")
    for key, option, values in (
        ("dataset", "data", datasets),
        ("mode", "mode", args.mode),
        ("seed", "seed", args.seed),
    ):
        if len(set(values)) != len(values):
            raise MedsegError(f"--{option} lists a value twice: {' '.join(map(str, values))}")
        if len(values) > 1:
            for output in ("scores", "history", "save_model", "resume"):
                path = getattr(args, output)
                if path is not None and PLACEHOLDERS[key] not in str(path):
                    raise MedsegError(
                        f"--{output.replace('_', '-')} {path} has no {PLACEHOLDERS[key]}, but {len(values)} values of "
                        f"--{option} are trained: each run needs its own file"
                    )


def run_train(args: argparse.Namespace) -> None:
    check_outputs(args)
    import torch

    from medseg.atomic import check_file_target
    from medseg.data.store import read_segmentation_meta
    from medseg.devices import pick_device
    from medseg.downstream.data import open_task
    from medseg.downstream.settings import ModelBuild, Recipe
    from medseg.downstream.state import remove
    from medseg.downstream.train import Trainer, restore_finished
    from medseg.models.encoder_file import inspect, resolve_image_size
    from medseg.signals import StopSignals

    info = inspect(args.encoder)
    if info.model != args.model:
        raise MedsegError(f"{args.encoder} holds a {info.describe()}, but --model is {args.model}")
    for option, given, recorded in (
        ("width", args.width, info.width),
        ("window_size", args.window_size, info.window_size),
    ):
        if given is not None and given != recorded and (option == "width" or args.model == "swin_unet"):
            raise MedsegError(
                f"{args.encoder} holds a {info.describe()}, but --{option.replace('_', '-')} is {given:g}"
            )
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    for data in args.data:  # every dataset is checked before the first run starts
        read_segmentation_meta(data, "downstream training")
    recipe = Recipe(args.epochs, args.batch, args.lr, args.momentum, args.weight_decay, args.eval_every)
    runs = {
        data: [run_of(args, data.name, mode, seed) for mode in args.mode for seed in args.seed] for data in args.data
    }
    every_run = [run for planned in runs.values() for run in planned]
    for run in every_run:  # refused now, not after training
        for path in (run.scores, run.history, run.resume, run.record, run.save_model):
            if path is not None:
                check_file_target(path)
    with StopSignals() as stop:
        for data, planned in runs.items():
            task = open_task(data, resolve_image_size(info, args.image_size), device, args.classes)
            build = ModelBuild(args.model, task.input_size, info.width, info.window_size)
            for run in planned:
                if stop.received is not None:
                    raise Interrupted(
                        f"stopped by {stop.received} before training {data.name}, {run.name()}; run the same command again"
                    )
                if not restore_finished(task, info, build, recipe, run):
                    Trainer(
                        task,
                        info,
                        build,
                        recipe,
                        run,
                        stop,
                        resume_minutes=args.resume_minutes,
                        explicit_resume=args.resume is not None,
                        keep_record=True,
                    ).train()
            del task  # free the device copy before the next dataset
    # Only now: until every run's outputs are written, an interruption (after which Snakemake
    # deletes all of this job's outputs) must find the finished runs' records.
    for run in every_run:
        remove(run.record)


def run_of(args: argparse.Namespace, dataset: str, mode: str, seed: int) -> settings.Run:
    """The run of (dataset, mode, seed): its output paths with the placeholders filled in."""
    from medseg.downstream import state

    scores, history, resume, save_model = (
        expand(path, dataset, mode, seed) for path in (args.scores, args.history, args.resume, args.save_model)
    )
    return settings.Run(mode, seed, scores, history, resume or state.default_resume(scores), save_model)
