"""The paper audit: the authors' published results through `medseg.aggregate.tis`, beside the printed tables.

`authors` reads the authors' CSV files (names mapped to this project's, the stored hinge
converted to Eq. 3) and realigns them the way their evaluation did; `printed` reads the
transcribed printed tables and recomputes each printed cell; `report` writes `audit.md`;
`cli` is `medseg paper-audit`. The data live in the repository's `paper/` folder.
"""

from __future__ import annotations

from pathlib import Path

# The repository's paper/ folder: beside the package in a clone or an editable install.
PAPER_DIR = Path(__file__).resolve().parents[2] / "paper"
DEFAULT_DOWNSTREAM = PAPER_DIR / "results" / "downstream_scores.csv"
DEFAULT_ROBUSTNESS = PAPER_DIR / "results" / "robustness_scores.csv"
DEFAULT_ACCURACY = PAPER_DIR / "results" / "imagenet_accuracy.csv"
DEFAULT_PRINTED = PAPER_DIR / "printed_tables.csv"
ALIGNMENTS = ("paper_text", "authors")
