"""Time pretraining epochs per model and scheme with the real training loop, on synthetic demo ImageNet.

    .venv/bin/python benchmarks/pretrain.py                      # demo config, 1 thread, no workers
    .venv/bin/python benchmarks/pretrain.py --threads 2 --workers 1 --epochs 2

Writes the demo ImageNet (400 training JPEGs, 10 classes) to a temporary folder, trains each
model from its seeded scratch encoder with config/demo.yaml's recipe, and prints the training
images/s (data loading, augmentation, forward, backward, optimizer; validation excluded) and the
epoch time with validation, as the history records them, plus the peak resident memory of this
process and the private (unshared) memory of its loader workers. `--write-docs` records them in
docs/timings.md with the machine and the command.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import threading
from pathlib import Path

import pandas as pd
import torch
import yaml
from timings_doc import add_option, machine, publish, table

from medseg.argtypes import non_negative_int, positive_int
from medseg.data.imagenet import prepare_imagenet
from medseg.models import build_encoder
from medseg.names import PRETRAIN_SCHEMES
from medseg.pretrain import loop
from medseg.pretrain.distributed import Context
from medseg.pretrain.settings import Job, Settings
from medseg.pretrain.state import save_scratch
from medseg.synth import synthesize

REPO = Path(__file__).resolve().parents[1]


def private_mib(pid: int) -> float:
    """Memory a process does not share with others (private clean + dirty pages), in MiB."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return 0.0
    kib = sum(int(line.split()[1]) for line in lines if line.startswith(("Private_Clean", "Private_Dirty")))
    return kib / 1024


class WorkerMemory(threading.Thread):
    """Samples the private memory of this process's children (the loader workers) while it runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            for task in Path(f"/proc/{os.getpid()}/task").iterdir():
                try:
                    children = (task / "children").read_text().split()
                except OSError:  # the thread ended meanwhile
                    continue
                for pid in children:
                    self.peak = max(self.peak, private_mib(int(pid)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "config" / "demo.yaml")
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument("--workers", type=non_negative_int, default=0)
    parser.add_argument("--epochs", type=positive_int, default=1)
    parser.add_argument("--model", action="append", help="only this model (repeatable)")
    parser.add_argument("--scheme", action="append", choices=PRETRAIN_SCHEMES, help="only this scheme (repeatable)")
    add_option(parser)
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    models, pretraining = config["models"], config["pretraining"]
    planned = max(pretraining["checkpoints"])
    here = machine(torch.__version__, "cpu")  # Context() below: one process on the CPU
    setup = (
        f"{args.threads} thread(s), {args.workers} loader worker(s), image {models['image_size']}, "
        f"width {models['width']:g}, {args.epochs} epoch(s) of the {planned}-epoch schedule of "
        f"{args.config.name}, mean over the epochs"
    )
    print(f"torch {torch.__version__}; {setup}")
    print(f"{'model':<26}{'scheme':<10}{'images/s':>10}{'s/epoch':>10}")
    rows = []
    workers = WorkerMemory()
    workers.start()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthesize(tmp / "raw", "demo", only=["imagenet"])
        prepare_imagenet(tmp / "raw" / "imagenet", tmp / "imagenet")
        for model in args.model or models["names"]:
            start = tmp / model / "scratch.safetensors"
            encoder = build_encoder(model, models["image_size"], models["width"], models["window_size"], models["seed"])
            save_scratch(encoder, start, models["seed"])
            for scheme in args.scheme or PRETRAIN_SCHEMES:
                recipe = pretraining[scheme][model]
                settings = Settings(
                    model,
                    scheme,
                    models["image_size"],
                    models["width"],
                    models["window_size"],
                    models["seed"],
                    planned,
                    recipe["batch"],
                    recipe["base_lr"],
                    recipe["base_lr_batch"],
                    recipe["warmup_epochs"],
                    recipe["micro_batch"],
                    workers=args.workers,
                    threads=args.threads,
                )
                out = tmp / model / scheme
                loop.run(Job(settings, args.epochs, start, tmp / "imagenet", out, out / "history.parquet"), Context())
                history = pd.read_parquet(out / "history.parquet")
                rows.append(
                    [f"`{model}`", scheme, f"{history['images_per_s'].mean():.1f}", f"{history['seconds'].mean():.1f}"]
                )
                print(f"{model:<26}{scheme:<10}{rows[-1][2]:>10}{rows[-1][3]:>10}")
    workers.stopped.set()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    memory = (
        f"Peak resident memory of the training process {own:.0f} MiB; "
        f"largest private memory of a loader worker {workers.peak:.0f} MiB."
    )
    print(memory)
    if args.write_docs:
        body = table(["model", "scheme", "training images/s", "s per epoch (with validation)"], rows)
        publish(here, setup, f"{body}\n\n{memory}")


if __name__ == "__main__":
    main()
