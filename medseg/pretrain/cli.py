"""`medseg init` (the seeded epoch-0 encoder) and `medseg pretrain` (one segment of the chain)."""

from __future__ import annotations

import argparse
from pathlib import Path

from medseg import paper
from medseg.argtypes import (
    add_model_size_options,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from medseg.names import MODEL_NAMES, PRETRAIN_SCHEMES


def _paper_default(key: str) -> str:
    """`default: the paper's, simple 4096; advanced 4096 for unet, ... 1024 for swin_unet` for a recipe key."""
    parts = []
    for scheme in PRETRAIN_SCHEMES:
        models_of: dict[str, list[str]] = {}
        for model in MODEL_NAMES:
            models_of.setdefault(f"{paper.pretraining_recipe(scheme, model)[key]:g}", []).append(model)
        if len(models_of) == 1:
            parts.append(f"{scheme} {next(iter(models_of))}")
        else:
            parts.append(f"{scheme} " + ", ".join(f"{value} for {' and '.join(m)}" for value, m in models_of.items()))
    return "default: the paper's, " + "; ".join(parts)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=MODEL_NAMES, required=True, help="which model's encoder")
    add_model_size_options(parser)
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="seed of the initial weights and of all pretraining randomness (default: 0)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    init = subparsers.add_parser(
        "init",
        help="write the seeded epoch-0 encoder of a model (the 'no pretraining' checkpoint)",
        description="Build a model's encoder with the paper's seeded initialisation and write it as "
        "safetensors. It is the epoch-0 checkpoint of both pretraining schemes, which start from exactly "
        "these weights (their classification head is seeded separately).",
    )
    _add_model_options(init)
    init.add_argument(
        "--out",
        type=Path,
        required=True,
        help="file to write, e.g. results/pretrain/model=unet/scheme=scratch/epoch=0/encoder.safetensors",
    )
    init.set_defaults(run=run_init)

    pretrain = subparsers.add_parser(
        "pretrain",
        help="train one segment of ImageNet pretraining, between two checkpoints",
        description="Continue pretraining from the previous checkpoint's state.pt (or from the scratch "
        "encoder for the first checkpoint) to checkpoint EPOCH, and write OUT/encoder.safetensors, "
        "OUT/state.pt and the history of the epochs trained. The schedule spans --planned-epochs, so "
        "the segments of one chain continue one run exactly: the weights equal those of training "
        "0 -> EPOCH in one job. A resume file OUT/resume.pt is written every --resume-minutes and on "
        "SIGTERM/SIGINT (then the command exits with status 75); running the same command again "
        "continues from it. Recipe options left out take the paper's values for the scheme and model.",
    )
    _add_model_options(pretrain)
    pretrain.add_argument("--scheme", choices=PRETRAIN_SCHEMES, required=True, help="pretraining recipe (paper §5.3)")
    pretrain.add_argument("--epoch", type=positive_int, required=True, help="the checkpoint this segment ends at")
    pretrain.add_argument(
        "--start",
        type=Path,
        required=True,
        help="state.pt of the previous checkpoint, or for the first checkpoint the scratch "
        "encoder.safetensors that `medseg init` wrote with the same --seed and model options",
    )
    pretrain.add_argument("--data", type=Path, required=True, help="prepared ImageNet, e.g. results/data/imagenet")
    pretrain.add_argument(
        "--raw",
        type=Path,
        default=None,
        help="where the ImageNet images are now (default: the folder recorded when preparing)",
    )
    pretrain.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder for encoder.safetensors and state.pt (not the folder of --start), e.g. "
        "results/pretrain/model=unet/scheme=simple/epoch=5",
    )
    pretrain.add_argument(
        "--history", type=Path, required=True, help="history.parquet to write (one row per epoch trained)"
    )
    recipe = pretrain.add_argument_group("recipe (what the results depend on)")
    recipe.add_argument(
        "--planned-epochs",
        type=positive_int,
        required=True,
        help="length of the whole pretraining (the last checkpoint); the cosine schedule ends there",
    )
    recipe.add_argument(
        "--batch", type=positive_int, help=f"effective batch per optimizer update ({_paper_default('batch')})"
    )
    recipe.add_argument(
        "--base-lr", type=positive_float, help=f"learning rate at --base-lr-batch ({_paper_default('base_lr')})"
    )
    recipe.add_argument(
        "--base-lr-batch",
        type=positive_int,
        help="batch that --base-lr refers to; the run uses base-lr x batch / base-lr-batch "
        f"({_paper_default('base_lr_batch')})",
    )
    recipe.add_argument(
        "--warmup-epochs",
        type=non_negative_int,
        help=f"linear warmup length in epochs ({_paper_default('warmup_epochs')})",
    )
    recipe.add_argument(
        "--micro-batch",
        type=positive_int,
        default=256,
        help="images per forward pass and device; gradients are accumulated up to --batch. "
        "It is also the BatchNorm batch (at least 2 for unet and resnet50_attention_unet) and the "
        "mixing group (default: 256)",
    )
    run = pretrain.add_argument_group("execution (results do not depend on these)")
    run.add_argument(
        "--workers", type=non_negative_int, default=8, help="data loader processes per device (default: 8)"
    )
    run.add_argument(
        "--threads", type=positive_int, default=None, help="torch CPU threads per process (default: torch's)"
    )
    run.add_argument(
        "--processes",
        type=positive_int,
        default=None,
        help="data-parallel processes (default: one per visible GPU, 1 on CPU; under torchrun: its)",
    )
    run.add_argument(
        "--resume-minutes", type=non_negative_float, default=10.0, help="write the resume file this often (default: 10)"
    )
    pretrain.set_defaults(run=run_pretrain)


def run_init(args: argparse.Namespace) -> None:
    import logging

    from medseg.atomic import check_file_target
    from medseg.models import build_encoder
    from medseg.pretrain.state import save_scratch

    check_file_target(args.out)
    encoder = build_encoder(args.model, args.image_size, args.width, args.window_size, args.seed)
    save_scratch(encoder, args.out, args.seed)
    logging.getLogger(__name__).info("wrote the seed-%d encoder %s to %s", args.seed, encoder.description(), args.out)


def settings_from(args: argparse.Namespace):
    """Settings from parsed options, recipe gaps filled with the paper's values."""
    from medseg.pretrain.settings import Settings

    recipe = paper.pretraining_recipe(args.scheme, args.model)
    chosen = {key: getattr(args, key) for key in recipe if getattr(args, key) is not None}
    return Settings(
        model=args.model,
        scheme=args.scheme,
        image_size=args.image_size,
        width=args.width,
        window_size=args.window_size,
        seed=args.seed,
        planned_epochs=args.planned_epochs,
        micro_batch=args.micro_batch,
        workers=args.workers,
        threads=args.threads,
        processes=args.processes,
        resume_minutes=args.resume_minutes,
        **(recipe | chosen),
    )


def run_pretrain(args: argparse.Namespace) -> None:
    import functools
    import logging

    from medseg.pretrain import distributed
    from medseg.pretrain.settings import Job

    job = Job(settings_from(args), args.epoch, args.start, args.data, args.out, args.history, args.raw)
    job.check()  # before processes start: a bad option or output path costs seconds, not a segment
    processes = distributed.wanted_processes(job.settings.processes)
    distributed.launch(functools.partial(train, job), processes, logging.getLogger().level <= logging.DEBUG)


def train(job, ctx) -> None:
    """Train `job` in this process; imported by name in spawned processes, so the launcher stays light."""
    from medseg.pretrain import loop

    loop.run(job, ctx)
