"""`medseg synth`: write synthetic raw data in the real datasets' on-disk layouts."""

from __future__ import annotations

import argparse
from pathlib import Path

from medseg.synth import DATASETS, PRESETS, synthesize

LAYOUTS = """\
written under OUT (the real releases' layouts, so the real preparers read them):
  acdc/      training/patientNNN/ (001..) and testing/patientNNN/ (101..), each with Info.cfg,
             patientNNN_4d.nii.gz and patientNNN_frameXX[_gt].nii.gz for the ED and ES frames
  covidqu/   Infection Segmentation Data/Infection Segmentation Data/{Train,Val,Test}/
             {COVID-19,Non-COVID,Normal}/{images,infection masks,lung masks}/*.png
  idrid/     A. Segmentation/1. Original Images/{a. Training Set,b. Testing Set}/IDRiD_NN.jpg and
             A. Segmentation/2. All Segmentation Groundtruths/.../1. Microaneurysms/IDRiD_NN_MA.tif
  imagenet/  train/<synset>/*.JPEG, flat val/ILSVRC2012_val_NNNNNNNN.JPEG, LOC_val_solution.csv

Each dataset folder is written under a temporary name and renamed when complete; an existing
folder of the same name is replaced.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `synth` subcommand."""
    presets = "\n".join(f"  {name}: {preset.describe()}" for name, preset in PRESETS.items())
    parser = subparsers.add_parser(
        "synth",
        help="write deterministic synthetic raw data (demo and tests)",
        description="Write deterministic synthetic ACDC, COVID-QU-Ex, IDRiD and ImageNet data in "
        "the real releases' on-disk layouts. The same preset and seed give the same files.",
        epilog=f"presets:\n{presets}\n\n{LAYOUTS}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="folder that receives one subfolder per dataset")
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="demo",
        help="image counts and sizes (default: %(default)s; see 'presets' below)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=DATASETS,
        metavar="NAME",
        help=f"write only this dataset ({', '.join(DATASETS)}); repeat for several (default: all)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="non-negative random seed; each dataset's content depends only on it and the preset "
        "(default: %(default)s)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """Run `synth` with parsed arguments."""
    synthesize(args.out, preset=args.preset, only=args.only, seed=args.seed)
