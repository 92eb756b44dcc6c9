"""What a downstream training run depends on (its recipe and model build), and its identity.

The paper's recipe (Appendix A.4, `medseg.paper`) is the default: SGD with momentum and weight
decay, learning rate lr (1 - i/N)^power at optimizer step i of N. One `medseg train` call trains the
seeds it is given.

The identity is stored in the resume file; a resume file is only continued by a run of the same
identity (same recipe, model build, encoder file content and prepared data). Execution settings
(device, threads, how often the resume file is written) are not part of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medseg import paper

EVAL_EVERY = 0
"""Test Dice in the history every this many epochs; 0: only at the end (always evaluated)."""
RESUME_MINUTES = 10.0
# Bump when a change to the training code changes results, so old resume files are refused.
RECIPE_VERSION = "1"


@dataclass(frozen=True)
class Recipe:
    """The training recipe: what the weights depend on besides the model, encoder and data."""

    epochs: int = paper.EPOCHS
    batch: int = paper.BATCH
    lr: float = paper.LR
    momentum: float = paper.MOMENTUM
    weight_decay: float = paper.WEIGHT_DECAY
    eval_every: int = EVAL_EVERY


@dataclass(frozen=True)
class Run:
    """One downstream training run: a mode, a seed and where its outputs go."""

    mode: str
    seed: int
    scores: Path
    history: Path
    resume: Path
    save_model: Path | None = None

    def name(self) -> str:
        return f"mode {self.mode}, seed {self.seed}"

    @property
    def record(self) -> Path:
        """The finished-run record (`medseg.downstream.state`): beside the resume file, hidden.

        `.scores.resume.pt` -> `.scores.finished.pt`; any other resume name gets `.finished.pt` for its suffix.
        """
        name = self.resume.name.lstrip(".")
        stem = name.removesuffix(".resume.pt") if name.endswith(".resume.pt") else Path(name).stem
        return self.resume.parent / f".{stem}.finished.pt"


@dataclass(frozen=True)
class ModelBuild:
    """How the segmentation model is built (the encoder knobs come from the encoder file unless given)."""

    model: str
    image_size: int
    width: float
    window_size: int


def identity(
    recipe: Recipe, build: ModelBuild, input_size: int, mode: str, seed: int, encoder_sha: str, data_fingerprint: str
) -> dict[str, str]:
    """What a resume file must match to be continued (strings, for plain comparison)."""
    result = {
        "recipe_version": RECIPE_VERSION,
        "model": build.model,
        "input_size": str(input_size),
        "width": f"{build.width:g}",
        "mode": mode,
        "seed": str(seed),
        "epochs": str(recipe.epochs),
        "batch": str(recipe.batch),
        "lr": f"{recipe.lr:.10g}",
        "momentum": f"{recipe.momentum:.10g}",
        "weight_decay": f"{recipe.weight_decay:.10g}",
        "eval_every": str(recipe.eval_every),
        "encoder_sha256": encoder_sha,
        "data": data_fingerprint,
    }
    if build.model == "swin_unet":
        result["window_size"] = str(build.window_size)
    return result
