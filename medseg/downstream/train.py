"""One downstream training run (paper §5.4, Appendix A.4) and its evaluation on the test split (A.5).

The segmentation model is built with the run's seed (decoder initialisation), its encoder takes the
checkpoint's weights, and in `decoder` mode the encoder is frozen and kept in eval mode. Training:
`epochs` epochs over the training split in a seeded order, batches of `batch` (the last batch of
an epoch takes the remainder; a single leftover sample joins the batch before it, as BatchNorm
cannot train on one sample), the Dice loss of Eq. A.2 over the whole batch, SGD and the
polynomial schedule of `recipe`. Test Dice goes into the history every `eval_every` epochs, and
after the last epoch the model is scored with every metric (`scores.parquet`).

Every random draw is derived from (seed, epoch, step) with `medseg.seeds`: the epoch's
order from (seed, epoch), each step's augmentation and stochastic depth from (seed, epoch, step).
So the position alone continues a run: a resume file is written every `resume_minutes` and on
SIGTERM/SIGINT (then the command stops with status 75, EX_TEMPFAIL), and the same command run again continues
from it to the result of an uninterrupted run (bit for bit on a CPU). A NaN or infinite loss, or
weights or BatchNorm statistics turned NaN or infinite by an update, stop the run naming the epoch
and step (`medseg.finite`, checked after every optimizer step); nothing is written.

A finished run leaves a record of its results beside its resume file until every run of the
`medseg train` call is done (`medseg.downstream.state`); a run that finds a record of its own
identity writes its outputs from it instead of training again (`restore_finished`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pandas as pd
import torch

from medseg import seeds, training_state
from medseg.atomic import atomic_file
from medseg.downstream import recipe as recipes
from medseg.downstream import state
from medseg.downstream.data import Task
from medseg.downstream.evaluate import evaluate, mean_dice
from medseg.downstream.loss import dice_loss, output_channels
from medseg.downstream.settings import ModelBuild, Recipe, Run, identity
from medseg.errors import Interrupted
from medseg.finite import check_finite
from medseg.models import build_model
from medseg.models.encoder_file import EncoderFile, load
from medseg.models.segmentation import SegmentationModel
from medseg.signals import StopSignals

log = logging.getLogger(__name__)

EVALUATION = ("test_dice",)
HISTORY_COLUMNS = training_state.history_columns(EVALUATION)
# Random streams of one seed, besides pretraining's epoch order (seeds.ORDER): per step, the
# augmentation (a CPU torch.Generator) and the model's own randomness (stochastic depth, drawn
# from the global generators).
AUGMENT_STREAM, MODEL_STREAM = 10, 11


def _partial() -> dict:
    return {"loss_sum": 0.0, "steps": 0, "images": 0, "train_seconds": 0.0, "seconds": 0.0}


def steps_per_epoch(samples: int, batch: int) -> int:
    """Optimizer steps in one epoch: full batches, the remainder as a last batch unless it is one sample."""
    steps = math.ceil(samples / batch)
    return steps - 1 if steps > 1 and samples % batch == 1 else steps


@dataclass
class Position:
    """`epoch` epochs complete plus `step` steps of the next one, with the history so far."""

    epoch: int = 0
    step: int = 0
    history: list[dict] = field(default_factory=list)
    partial: dict = field(default_factory=_partial)


def file_sha256(path: Path) -> str:
    """The first 16 hex digits of a file's SHA-256, read once per process for each version of the file."""
    path = Path(path).resolve()
    status = path.stat()
    return _sha256(path, status.st_size, status.st_mtime_ns)


@functools.cache
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    # size and mtime are part of the cache key: a file replaced since is hashed again.
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def run_identity(task: Task, info: EncoderFile, model_build: ModelBuild, recipe: Recipe, run: Run) -> dict[str, str]:
    """What the run's resume file and finished-run record must match (see `settings.identity`)."""
    return identity(
        recipe, model_build, task.input_size, run.mode, run.seed, file_sha256(info.path), task.fingerprint()
    )


def write_outputs(
    run: Run, scores: pd.DataFrame, history: list[dict], model: tuple[dict[str, torch.Tensor], dict[str, str]] | None
) -> None:
    """The run's outputs, each atomically: the weights (with --save-model), the history, the scores."""
    from safetensors.torch import save_file

    if run.save_model is not None:
        assert model is not None
        with atomic_file(run.save_model) as tmp:
            save_file(model[0], tmp, metadata=model[1])
    training_state.write_history(run.history, history, EVALUATION)
    with atomic_file(run.scores) as tmp:
        scores.to_parquet(tmp, index=False)
    state.remove(run.resume)


def restore_finished(task: Task, info: EncoderFile, model_build: ModelBuild, recipe: Recipe, run: Run) -> bool:
    """Write the run's outputs from its finished-run record if it has one of its identity; True if it did."""
    if not run.record.is_file():
        return False
    record = state.read_record(run.record, run_identity(task, info, model_build, recipe, run))
    if record is None:
        return False
    if run.save_model is not None and record["model"] is None:
        log.info(
            "%s: the finished-run record %s has no weights for --save-model: training again", run.name(), run.record
        )
        return False
    model = None if record["model"] is None else (record["model"], record["model_metadata"])
    write_outputs(run, pd.DataFrame(record["scores"]), record["history"], model)
    log.info(
        "%s: finished in an earlier call: outputs written from its record %s -> %s", run.name(), run.record, run.scores
    )
    return True


def build(task: Task, info: EncoderFile, model_build: ModelBuild, mode: str, seed: int) -> SegmentationModel:
    """The seeded model with the encoder file's weights; in `decoder` mode with a frozen encoder."""
    model = build_model(
        model_build.model,
        output_channels(len(task.classes)),
        task.input_size,
        model_build.width,
        model_build.window_size,
        seed,
    )
    encoder = load(info, task.input_size)  # checks the tensors and (Swin) the input size, naming the file
    model.encoder.load_state_dict(encoder.state_dict())
    if mode == "decoder":
        model.freeze_encoder()
    return model


class Trainer:
    """The objects of one run and the loop over its optimizer steps."""

    def __init__(
        self,
        task: Task,
        info: EncoderFile,
        model_build: ModelBuild,
        recipe: Recipe,
        run: Run,
        stop: StopSignals,
        *,
        resume_minutes: float = 10.0,
        explicit_resume: bool = False,
        keep_record: bool = False,
    ) -> None:
        self.task, self.info, self.model_build, self.recipe, self.run = task, info, model_build, recipe, run
        self.stop, self.resume_minutes = stop, resume_minutes
        self.keep_record = keep_record  # leave a finished-run record for the caller to remove (`medseg train`)
        self.device = task.train.images.device
        self.cuda = self.device.type == "cuda"
        self.steps_per_epoch = steps_per_epoch(len(task.train), recipe.batch)
        self.total_steps = recipe.epochs * self.steps_per_epoch
        self.model = build(task, info, model_build, run.mode, run.seed)
        self.model.to(self.device, memory_format=torch.channels_last if self.cuda else torch.preserve_format)
        self.optimizer = recipes.make_optimizer(self.model, recipe)
        self.scheduler = recipes.make_scheduler(self.optimizer, self.total_steps)
        self.position = Position()
        resume = state.read_resume(run.resume, self.identity, explicit_resume) if run.resume.is_file() else None
        if resume is not None:
            self.model.load_state_dict(resume["model"])
            self.optimizer.load_state_dict(resume["optimizer"])
            self.scheduler.load_state_dict(resume["scheduler"])
            self.position = Position(
                int(resume["epoch"]), int(resume["step"]), list(resume["history"]), dict(resume["partial"])
            )
            log.info(
                "resuming from %s: epoch %d, step %d of %d",
                run.resume,
                self.position.epoch + 1,
                self.position.step,
                self.steps_per_epoch,
            )

    @functools.cached_property
    def identity(self) -> dict[str, str]:
        """The run's identity (hashes the encoder file and the data's index: computed when first needed)."""
        return run_identity(self.task, self.info, self.model_build, self.recipe, self.run)

    # -- the loop -------------------------------------------------------------------------

    def train(self) -> pd.DataFrame:
        """Train the remaining epochs, write the outputs; returns the scores table."""
        position, recipe, run = self.position, self.recipe, self.run
        log.info(
            "training %s (%s, seed %d) on %s at %dx%d from %s: %d training samples, %d steps per epoch x %d epochs, "
            "batch %d, lr %g, %s",
            self.model_build.model,
            run.mode,
            run.seed,
            self.task.path,
            self.task.input_size,
            self.task.input_size,
            self.info.path,
            len(self.task.train),
            self.steps_per_epoch,
            recipe.epochs,
            recipe.batch,
            recipe.lr,
            self.device,
        )
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        started, first_step = time.monotonic(), self._global_step()
        self.last_save = time.monotonic()
        metrics = None
        for epoch in range(position.epoch + 1, recipe.epochs + 1):
            self._train_epoch(epoch)
            row, metrics = self._finish_epoch(epoch)
            elapsed = time.monotonic() - started
            eta = elapsed / max(self._global_step() - first_step, 1) * (self.total_steps - self._global_step())
            dice = "-" if math.isnan(row["test_dice"]) else f"{row['test_dice']:.4f}"
            log.info(
                "%s, seed %d: epoch %d/%d: train loss %.4f, lr %.3g, test dice %s, %.1f images/s, %.1f s; ETA %s",
                run.mode,
                run.seed,
                epoch,
                recipe.epochs,
                row["train_loss"],
                row["lr"],
                dice,
                row["images_per_s"],
                row["seconds"],
                timedelta(seconds=round(eta)),
            )
        if self.cuda:
            log.info("peak GPU memory: %.2f GiB", torch.cuda.max_memory_allocated(self.device) / 2**30)
        assert metrics is not None
        scores = metrics.result()
        self._write(scores)
        return scores

    def _global_step(self) -> int:
        return self.position.epoch * self.steps_per_epoch + self.position.step

    def _where(self, epoch: int, step: int) -> str:
        """Step `step` (from 0) of `epoch`, in words, for messages."""
        return (
            f"epoch {epoch}, step {step + 1} of {self.steps_per_epoch} (optimizer step {self._global_step() + 1} "
            f"of {self.total_steps}) of {self.model_build.model} ({self.run.name()})"
        )

    def _train_epoch(self, epoch: int) -> None:
        """Train the rest of `epoch`."""
        position, recipe, seed = self.position, self.recipe, self.run.seed
        order = torch.from_numpy(seeds.epoch_order(seed, epoch, len(self.task.train)))
        self.model.train()
        started = time.monotonic()
        for step in range(position.step, self.steps_per_epoch):
            last = step + 1 == self.steps_per_epoch
            ids = order[step * recipe.batch : len(order) if last else (step + 1) * recipe.batch]
            generator = torch.Generator().manual_seed(seeds.derive(seed, AUGMENT_STREAM, epoch, step))
            seeds.seed_globals(seeds.derive(seed, MODEL_STREAM, epoch, step))
            x, labels = self.task.train_batch(ids, generator)
            if self.cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
                logits = self.model(x)
            loss = dice_loss(logits, labels)
            loss.backward()
            value = loss.item()
            lr = self.optimizer.param_groups[0]["lr"]
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            # Before anything is saved: a NaN loss, or weights a huge step made NaN or infinite (the
            # bounded Dice loss can stay finite), stop the run here with nothing written.
            check_finite(
                value,
                self.model,
                self._where(epoch, step),
                "stopped without writing results: lower the learning rate or check the data",
            )
            self.scheduler.step()
            position.step = step + 1
            partial = position.partial
            partial["loss_sum"] += value
            partial["steps"] += 1
            partial["images"] += len(ids)
            partial["lr"] = lr
            stop = self.stop.received is not None
            if stop or time.monotonic() - self.last_save >= self.resume_minutes * 60:
                now = time.monotonic()
                partial["train_seconds"] += now - started
                partial["seconds"] += now - started
                started = now
                self._save_resume()
                if stop:
                    raise Interrupted(
                        f"stopped by {self.stop.received} at epoch {epoch}, step {position.step} of "
                        f"{self.steps_per_epoch} ({self.run.name()}); the training state is in {self.run.resume}: "
                        "run the same command again to continue"
                    )
        elapsed = time.monotonic() - started
        position.partial["train_seconds"] += elapsed
        position.partial["seconds"] += elapsed

    def _finish_epoch(self, epoch: int):
        """Evaluate when due, append the epoch's history row, move to the next epoch."""
        started = time.monotonic()
        last = epoch == self.recipe.epochs
        every = self.recipe.eval_every
        metrics = None
        dice = float("nan")
        if last or (every and epoch % every == 0):
            metrics = evaluate(self.model, self.task, self.recipe.batch, hd95=last)
            dice = mean_dice(metrics)
        partial = self.position.partial
        partial["seconds"] += time.monotonic() - started
        lr = partial.get("lr", self.optimizer.param_groups[0]["lr"])
        row = training_state.epoch_row(epoch, lr, partial, partial["steps"], {"test_dice": dice})
        self.position.history.append(row)
        self.position.epoch, self.position.step, self.position.partial = epoch, 0, _partial()
        return row, metrics

    # -- saving ---------------------------------------------------------------------------

    def _save_resume(self) -> None:
        p = self.position
        state.save(
            self.run.resume,
            {
                "identity": self.identity,
                "epoch": p.epoch,
                "step": p.step,
                "history": p.history,
                "partial": p.partial,
                "model": {key: value.detach().cpu() for key, value in self.model.state_dict().items()},
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
            },
        )
        self.last_save = time.monotonic()
        log.debug("resume file written: epoch %d, step %d", p.epoch + 1, p.step)

    def _write(self, scores: pd.DataFrame) -> None:
        """The finished-run record first, if kept (a kill after it loses nothing), then the outputs."""
        run, history = self.run, self.position.history
        model = self.model_file() if run.save_model is not None else None
        if self.keep_record:
            state.save_record(run.record, self.identity, scores, history, *(model or (None, None)))
        write_outputs(run, scores, history, model)
        log.info(
            "%s, seed %d: test dice %.4f -> %s, %s",
            run.mode,
            run.seed,
            history[-1]["test_dice"],
            run.scores,
            run.history,
        )

    def model_file(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """The trained segmentation model's state dict and the metadata saying what it is (--save-model)."""
        tensors = {key: value.detach().cpu().contiguous() for key, value in self.model.state_dict().items()}
        metadata = {
            "model": self.model_build.model,
            "classes": ",".join(self.task.classes),
            "input_size": str(self.task.input_size),
            "width": f"{self.model_build.width:g}",
            "window_size": str(self.model_build.window_size),
            "mode": self.run.mode,
            "seed": str(self.run.seed),
            "encoder": str(self.info.path),
            "data": str(self.task.path),
        }
        return tensors, metadata
