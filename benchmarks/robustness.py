"""Time robustness scoring (two jittered views per image, every variant) per model, in images per second.

    .venv/bin/python benchmarks/robustness.py                      # demo size: 64, width 0.25, window 4
    .venv/bin/python benchmarks/robustness.py --model unet --image-size 224 --width 1 --window-size 7 --images 64

Scores random grey images (stored at the input size, so no resizing) with a freshly initialised
encoder through `medseg.robustness.score.score_encoder`, the code `medseg robustness` runs: reading
the windows, jitter, normalisation, two forward passes per image, all distances. Prints the median
images/s over `--repeats` runs after one warm-up run, and the process's peak resident memory
(meaningful per model when one `--model` is given). Timings depend on the machine: `--write-docs`
records them in docs/timings.md with the machine and the command.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics

import numpy as np
import pandas as pd
import torch
from timings_doc import add_option, machine, publish, table

from medseg.argtypes import model_image_size, positive_float, positive_int
from medseg.data.store import Split
from medseg.models import build_encoder
from medseg.names import MODEL_NAMES
from medseg.robustness.score import score_encoder


def fake_split(n: int, size: int) -> tuple[Split, pd.DataFrame]:
    images = np.random.default_rng(0).random((n, size, size, 1), dtype=np.float32)
    index = pd.DataFrame({"image": range(n), "y0": 0, "x0": 0, "height": size, "width": size})
    return Split(images, np.zeros((n, size, size), np.uint8), index), index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=MODEL_NAMES, action="append", help="only this model (repeatable)")
    parser.add_argument("--image-size", type=model_image_size, default=64)
    parser.add_argument("--width", type=positive_float, default=0.25)
    parser.add_argument("--window-size", type=positive_int, default=4)
    parser.add_argument("--images", type=positive_int, default=256, help="images scored per run (default: 256)")
    parser.add_argument("--batch", type=positive_int, default=32)
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs after one warm-up run; 0: the warm-up run only"
    )
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: torch's choice)")
    add_option(parser)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    here = machine(torch.__version__, device)
    split, windows = fake_split(args.images, args.image_size)
    settings = (
        f"{torch.get_num_threads()} threads, image {args.image_size}, width {args.width:g}, "
        f"window {args.window_size}, batch {args.batch}, {args.images} images, fp32, "
        + (f"median of {args.repeats} run(s) after a warm-up run" if args.repeats else "the warm-up run only")
    )
    print(f"torch {torch.__version__}, {device}, load {os.getloadavg()[0]:.1f}; {settings}")
    print(f"{'model':<26}{'images/s':>10}{'peak RSS (MB)':>15}")
    rows = []
    for name in args.model or MODEL_NAMES:
        encoder = build_encoder(name, args.image_size, args.width, args.window_size)
        rates = []
        for _ in range(args.repeats + 1):
            scores = score_encoder(encoder, split, windows, args.image_size, 1.0, batch=args.batch, device=device)
            rates.append(args.images / scores.seconds)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows.append([f"`{name}`", f"{statistics.median(rates[1:] or rates):.1f}", f"{peak:.0f}"])
        print(f"{name:<26}{rows[-1][1]:>10}{rows[-1][2]:>15}")
    if args.write_docs:
        publish(here, settings, table(["model", "images/s", "peak RSS of the process so far (MB)"], rows))


if __name__ == "__main__":
    main()
