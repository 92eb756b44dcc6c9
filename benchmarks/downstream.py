"""Time downstream training (`medseg train`'s loop) per model and mode, in training images per second.

    .venv/bin/python benchmarks/downstream.py --threads 1          # demo size: 64, width 0.25, window 4, batch 24
    .venv/bin/python benchmarks/downstream.py --image-size 224 --width 1 --window-size 7 --images 480   # paper size

Trains on random grey images with random 4-class masks, stored at the input size (ACDC-like: no
resizing; rotation and flip on the device), with `medseg.downstream.train.Trainer`, the code
`medseg train` runs: gather, augmentation, normalisation, forward, Dice loss, backward, SGD step,
schedule. The first epoch is a warm-up; the median images/s of the others is printed, with the
time of the final test-set scoring (`--test` images, every metric including HD95) and the peak
memory: the process's resident set on a CPU (meaningful per model when one `--model` is given),
the CUDA allocator's peak on a GPU. Timings depend on the machine: `--write-docs` records them in
docs/timings.md with the machine and the command.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import statistics
import tempfile
from pathlib import Path

import pandas as pd
import torch
from timings_doc import add_option, machine, publish, table

from medseg.argtypes import model_image_size, positive_float, positive_int, segmentation_batch
from medseg.downstream.data import DeviceSplit, Task
from medseg.downstream.settings import ModelBuild, Recipe, Run
from medseg.downstream.train import Trainer
from medseg.models import build_encoder
from medseg.models.encoder_file import inspect
from medseg.names import MODEL_NAMES, MODES
from medseg.signals import StopSignals

CLASSES = ["background", "a", "b", "c"]


def fake_split(name: str, n: int, size: int, device: torch.device) -> DeviceSplit:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(n, size, size, 1, generator=generator)
    masks = torch.randint(0, len(CLASSES), (n, size, size), generator=generator, dtype=torch.uint8)
    zeros = torch.zeros(n, dtype=torch.int64, device=device)
    return DeviceSplit(
        name, images.to(device), masks.to(device), torch.arange(n, device=device), zeros, zeros, size, 1.0
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=MODEL_NAMES, action="append", help="only this model (repeatable)")
    parser.add_argument("--mode", choices=MODES, action="append", help="only this mode (repeatable)")
    parser.add_argument("--image-size", type=model_image_size, default=64)
    parser.add_argument("--width", type=positive_float, default=0.25)
    parser.add_argument("--window-size", type=positive_int, default=4)
    parser.add_argument("--batch", type=segmentation_batch, default=24)
    parser.add_argument(
        "--images", type=positive_int, default=96, help="training images per epoch (default: 96, 4 steps)"
    )
    parser.add_argument("--test", type=positive_int, default=48, help="test images scored at the end (default: 48)")
    parser.add_argument(
        "--epochs", type=positive_int, default=3, help="epochs per run, the first a warm-up (default: 3)"
    )
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    add_option(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    task = Task(
        Path("benchmark"),
        {"type": "acdc"},
        CLASSES,
        args.image_size,
        fake_split("train", args.images, args.image_size, device),
        fake_split("test", args.test, args.image_size, device),
    )
    precision = "bf16 autocast, channels_last" if device.type == "cuda" else "fp32"
    here = machine(torch.__version__, str(device))
    settings = (
        f"{torch.get_num_threads()} threads, image {args.image_size}, width {args.width:g}, "
        f"window {args.window_size}, batch {args.batch}, {args.images} images x {args.epochs} epochs "
        + ("(median of the epochs after the first)" if args.epochs > 1 else "(no warm-up epoch)")
        + f", {args.test} test images, {precision}"
    )
    print(f"torch {torch.__version__}, {device}, load {os.getloadavg()[0]:.1f}; {settings}")
    memory = "peak GPU (GiB)" if device.type == "cuda" else "peak RSS (MB)"
    print(f"{'model':<26}{'mode':<9}{'images/s':>10}{'test s':>8}{memory:>16}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.model or MODEL_NAMES:
            encoder = Path(folder) / f"{name}.safetensors"
            build_encoder(name, args.image_size, args.width, args.window_size).save(encoder)
            info = inspect(encoder)
            spec = ModelBuild(name, args.image_size, info.width, info.window_size)
            for mode in args.mode or MODES:
                out = Path(folder) / f"{name}-{mode}"
                run = Run(mode, 0, out / "scores.parquet", out / "history.parquet", out / "resume.pt")
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                trainer = Trainer(
                    task, info, spec, Recipe(args.epochs, args.batch), run, StopSignals(), resume_minutes=1e9
                )
                trainer.train()
                history = pd.read_parquet(run.history)
                rate = statistics.median(history.images_per_s.iloc[1:] if len(history) > 1 else history.images_per_s)
                last = history.iloc[-1]  # its seconds include the final scoring, images_per_s does not
                test_seconds = last.seconds - args.images / last.images_per_s
                if device.type == "cuda":
                    peak = torch.cuda.max_memory_allocated(device) / 2**30
                else:
                    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                rows.append([f"`{name}`", mode, f"{rate:.1f}", f"{test_seconds:.2f}", f"{peak:.2f}"])
                print(f"{name:<26}{mode:<9}{rows[-1][2]:>10}{rows[-1][3]:>8}{rows[-1][4]:>16}", flush=True)
    if args.write_docs:
        header = ["model", "mode", "training images/s", "final test scoring (s)", f"{memory} so far"]
        publish(here, settings, table(header, rows))


if __name__ == "__main__":
    main()
