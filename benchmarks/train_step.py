"""Time one training step (forward, cross-entropy, backward, SGD step) per model.

    .venv/bin/python benchmarks/train_step.py                       # demo size: 64, width 0.25, window 4
    .venv/bin/python benchmarks/train_step.py --image-size 224 --width 1 --window-size 7 --batch 1

Prints the median over `--repeats` steps after one warm-up step, for full and decoder-only
training. Timings depend on the machine: `--write-docs` records them in docs/timings.md with the
machine and the command.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from timings_doc import add_option, machine, publish, table

from medseg.argtypes import class_count, model_image_size, positive_float, positive_int
from medseg.models import build_model
from medseg.names import MODEL_NAMES


def step_seconds(name: str, args: argparse.Namespace, frozen: bool) -> float:
    model = build_model(name, args.classes, args.image_size, args.width, args.window_size)
    if frozen:
        model.freeze_encoder()
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    image = torch.randn(args.batch, 3, args.image_size, args.image_size)
    target = torch.randint(0, args.classes, (args.batch, args.image_size, args.image_size))
    times = []
    for _ in range(args.repeats + 1):
        start = time.perf_counter()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(image), target).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=model_image_size, default=64)
    parser.add_argument("--width", type=positive_float, default=0.25)
    parser.add_argument("--window-size", type=positive_int, default=4)
    parser.add_argument("--batch", type=positive_int, default=8)
    parser.add_argument("--classes", type=class_count, default=4)
    parser.add_argument("--repeats", type=positive_int, default=5)
    add_option(parser)
    args = parser.parse_args()
    here = machine(torch.__version__, "cpu")
    settings = (
        f"{torch.get_num_threads()} threads, image {args.image_size}, width {args.width:g}, "
        f"window {args.window_size}, batch {args.batch}, {args.classes} classes, fp32, "
        f"median of {args.repeats} steps after a warm-up step"
    )
    print(f"torch {torch.__version__}; {settings}")
    print(f"{'model':<26}{'full (s)':>10}{'decoder (s)':>13}")
    rows = []
    for name in MODEL_NAMES:
        full = step_seconds(name, args, frozen=False)
        decoder = step_seconds(name, args, frozen=True)
        rows.append([f"`{name}`", f"{full:.3f}", f"{decoder:.3f}"])
        print(f"{name:<26}{rows[-1][1]:>10}{rows[-1][2]:>13}")
    if args.write_docs:
        publish(here, settings, table(["model", "full (s per step)", "decoder (s per step)"], rows))


if __name__ == "__main__":
    main()
