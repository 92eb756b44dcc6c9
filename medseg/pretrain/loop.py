"""One pretraining segment: from the previous checkpoint (or the scratch encoder) to the next one.

The segment trains epochs `start + 1 .. end` of a run planned for `planned_epochs`, validates
after each, and writes encoder.safetensors, state.pt and history.parquet for checkpoint `end`.
Inside the segment a resume file is written every `resume_minutes` and on SIGTERM/SIGINT; a
re-run of the same job continues from it. Every random draw is seeded from (seed, epoch,
position) (see `seeds`), so the weights do not depend on how the work was cut.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.nn.functional as F
from torch import nn

from medseg import seeds, training_state
from medseg.errors import Interrupted, MedsegError
from medseg.finite import NonFinite, check_finite
from medseg.models import build_classifier
from medseg.pretrain import data, recipe, state
from medseg.pretrain.distributed import Context, SequentialBatchNorm
from medseg.pretrain.settings import ENCODER_FILE, STATE_FILE, Job
from medseg.signals import StopSignals

log = logging.getLogger(__name__)

# What a non-finite loss or weight tells the user; the run stops before writing anything.
NON_FINITE_ADVICE = "stopped without writing a checkpoint: lower the learning rate or check the data"
EVALUATION = ("val_loss", "val_top1", "val_top5")
HISTORY_COLUMNS = training_state.history_columns(EVALUATION)


@dataclass
class Position:
    """How far the run is: `epoch` epochs complete plus `update` updates of the next one."""

    epoch: int
    update: int = 0
    history: list[dict] = field(default_factory=list)
    """Rows of the epochs this segment completed so far."""
    partial: dict = field(
        default_factory=lambda: {"loss_sum": 0.0, "micro_batches": 0, "train_seconds": 0.0, "seconds": 0.0, "images": 0}
    )
    """Sums of the epoch in progress."""


def run(job: Job, ctx: Context) -> None:
    """Train the segment in this process (one of `ctx.world`)."""
    with StopSignals() as stop:
        Segment(job, ctx, stop).train()


class Segment:
    """The objects of one segment and the loop over its updates."""

    def __init__(self, job: Job, ctx: Context, stop: StopSignals) -> None:
        s = job.settings
        job.check()  # settings and every output path, before any data is read or trained on
        if job.epoch > s.planned_epochs:
            raise MedsegError(f"checkpoint {job.epoch} lies beyond the planned length of {s.planned_epochs} epochs")
        if s.threads:
            torch.set_num_threads(s.threads)
        self.job, self.ctx, self.s, self.stop = job, ctx, s, stop
        self.cuda = ctx.device.type == "cuda"
        train_split = data.read_split(job.data, "train", job.raw)
        val_split = data.read_split(job.data, "val", job.raw)
        info = data.data_info(job.data, train_split, val_split)
        self.identity = s.identity(info)
        self.accumulation = s.accumulation(ctx.world)
        self.batches = data.TrainBatches(
            len(train_split), s.seed, s.batch, s.micro_batch, self.accumulation, ctx.rank, ctx.world
        )
        self.updates_per_epoch = self.batches.updates_per_epoch
        if self.updates_per_epoch == 0:
            raise MedsegError(
                f"{job.data}: {len(train_split)} training images do not fill one batch of {s.batch}; "
                "lower the batch or use more images"
            )
        self.model = build_classifier(s.model, info.classes, s.image_size, s.width, s.window_size, s.seed)
        self.model.to(ctx.device, memory_format=torch.channels_last if self.cuda else torch.preserve_format)
        self.optimizer = recipe.make_optimizer(self.model, s.lr)
        self.scheduler = recipe.make_scheduler(self.optimizer, s, self.updates_per_epoch)
        # bf16 autocast needs no loss scaling; the scaler is kept (disabled) so that state.pt
        # has the same keys for every precision.
        self.scaler = torch.amp.GradScaler(ctx.device.type, enabled=False)
        self.position = self._start()
        self.augment = recipe.BatchAugment(s.scheme, info.classes, ctx.device)
        self.criterion = recipe.train_loss(s.scheme)
        pin = self.cuda
        self.train_loader = data.loader(
            data.Images(train_split, recipe.train_transform(s.scheme, s.image_size), s.seed),
            self.batches,
            s.workers,
            pin,
        )
        self.val_loader = data.loader(
            data.Images(val_split, recipe.eval_transform(s.image_size), s.seed),
            data.ValBatches(len(val_split), s.micro_batch, ctx.rank, ctx.world),
            s.workers,
            pin,
        )
        self.ddp, self.running_stats = self.model, None
        if ctx.world > 1:
            # The processes' BatchNorm statistics are combined after every micro-batch instead of
            # DDP's broadcast of rank 0's, so they equal the one-process run's (docs/pretraining.md, "Equal however the work is cut").
            self.ddp = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[ctx.device] if self.cuda else None, broadcast_buffers=False
            )
            self.running_stats = SequentialBatchNorm(self.model, ctx)

    # -- start and save -------------------------------------------------------------------

    def _start(self) -> Position:
        """Load the segment's start (and its resume file, when one of this segment exists)."""
        job = self.job
        if job.start.suffix == ".safetensors":
            state.load_scratch(self.model.encoder, job.start, self.s.image_size, self.s.seed)
            position = Position(epoch=0)
        else:
            start = state.read_checked(job.start, self.identity)
            self._load(start)
            position = Position(epoch=int(start["epoch"]))
        if position.epoch >= job.epoch:
            raise MedsegError(
                f"{job.start} is at epoch {position.epoch}; a segment to checkpoint {job.epoch} must start "
                "from an earlier one"
            )
        self.segment = {"start": position.epoch, "end": job.epoch}
        self.resume_file = state.resume_path(job.out)
        resume = state.read_resume(self.resume_file, self.identity, self.segment)
        if resume is not None:
            self._load(resume)
            position = Position(
                int(resume["epoch"]), int(resume["update"]), list(resume["history"]), dict(resume["partial"])
            )
            log.info(
                "resuming from %s: epoch %d, update %d of %d",
                self.resume_file,
                position.epoch + 1,
                position.update,
                self.updates_per_epoch,
            )
        self.scheduler.step_update(self._global_update(position))
        return position

    def _global_update(self, position: Position) -> int:
        return position.epoch * self.updates_per_epoch + position.update

    def _load(self, saved: dict) -> None:
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.scaler.load_state_dict(saved["scaler"])
        seeds.set_rng_state(saved["rng"])

    def _snapshot(self, position: Position) -> dict:
        return {
            "identity": self.identity,
            "epoch": position.epoch,
            "update": position.update,
            "model": {key: value.detach().cpu() for key, value in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": seeds.rng_state(),
        }

    def _save_resume(self, position: Position) -> None:
        if self.ctx.is_main:
            snapshot = self._snapshot(position) | {
                "segment": self.segment,
                "history": position.history,
                "partial": position.partial,
            }
            state.save(self.resume_file, snapshot)
            log.debug("resume file written: epoch %d, update %d", position.epoch + 1, position.update)
        self.ctx.barrier()

    def _save_checkpoint(self, position: Position) -> None:
        if self.ctx.is_main:
            job = self.job
            state.save_encoder(self.model.encoder, job.out / ENCODER_FILE, self.s.scheme, job.epoch, self.s.seed)
            state.save(job.out / STATE_FILE, self._snapshot(position))
            training_state.write_history(job.history, position.history, EVALUATION)
            self.resume_file.unlink(missing_ok=True)
            log.info("checkpoint %d written to %s", job.epoch, job.out)
        self.ctx.barrier()

    # -- the loop -------------------------------------------------------------------------

    def train(self) -> None:
        position, s = self.position, self.s
        epochs = range(position.epoch + 1, self.job.epoch + 1)
        log.info(
            "pretraining %s (%s) epochs %d-%d of %d: batch %d = %d x %d micro-batches x %d process(es), "
            "%d updates per epoch, peak lr %.4g, %s",
            s.model,
            s.scheme,
            epochs[0],
            epochs[-1],
            s.planned_epochs,
            s.batch,
            self.accumulation,
            s.micro_batch,
            self.ctx.world,
            self.updates_per_epoch,
            s.lr,
            self.ctx.device,
        )
        total_updates = len(epochs) * self.updates_per_epoch - position.update
        segment_start, updates_done = time.monotonic(), 0
        self.last_save = time.monotonic()
        with contextlib.ExitStack() as stack:
            bar = None
            if self.ctx.is_main and sys.stderr.isatty():
                from tqdm import tqdm
                from tqdm.contrib.logging import logging_redirect_tqdm

                bar = stack.enter_context(tqdm(total=total_updates, unit="update", dynamic_ncols=True, leave=False))
                stack.enter_context(logging_redirect_tqdm())  # log lines above the bar, not through it
            for epoch in epochs:
                updates_done += self._train_epoch(position, epoch, bar)
                row = self._finish_epoch(position, epoch)
                elapsed = time.monotonic() - segment_start
                eta = elapsed / max(updates_done, 1) * (total_updates - updates_done)
                log.info(
                    "epoch %d/%d: train loss %.4f, lr %.3g, val loss %.4f, top-1 %.3f, top-5 %.3f, "
                    "%.1f images/s, %.1f s; segment ETA %s",
                    epoch,
                    s.planned_epochs,
                    row["train_loss"],
                    row["lr"],
                    row["val_loss"],
                    row["val_top1"],
                    row["val_top5"],
                    row["images_per_s"],
                    row["seconds"],
                    timedelta(seconds=round(eta)),
                )
        self._save_checkpoint(position)

    def _train_epoch(self, position: Position, epoch: int, bar) -> int:
        """Train the rest of `epoch`; returns the number of updates done."""
        self.batches.epoch, self.batches.start_update = epoch, position.update
        self.model.train()
        batches = iter(self.train_loader)
        done = 0
        started = time.monotonic()
        for update in range(position.update, self.updates_per_epoch):
            loss_sum = torch.zeros((), device=self.ctx.device, dtype=torch.float64)
            for step in range(self.accumulation):
                images, labels = next(batches)
                loss_sum += self._micro_step(epoch, update, step, images, labels)
            lr = self.optimizer.param_groups[0]["lr"]
            stop_due = self.stop.received is not None
            save_due = self.ctx.is_main and time.monotonic() - self.last_save >= self.s.resume_minutes * 60
            total, stops, saves = self.ctx.all_sum([loss_sum.item(), stop_due, save_due])
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            # Every process has the same loss sum and weights, so all stop here together.
            where = (
                f"epoch {epoch}, update {update + 1} of {self.updates_per_epoch} (optimizer step "
                f"{self._global_update(position) + 1} of the run)"
            )
            check_finite(total, self.model, where, NON_FINITE_ADVICE)
            position.update = update + 1
            self.scheduler.step_update(self._global_update(position))
            done += 1
            partial = position.partial
            partial["loss_sum"] += total
            partial["micro_batches"] += self.accumulation * self.ctx.world
            partial["images"] += self.s.batch
            partial["lr"] = lr
            if bar is not None:
                bar.update()
                bar.set_postfix(epoch=epoch, loss=f"{total / (self.accumulation * self.ctx.world):.3f}")
            if stops or saves:
                now = time.monotonic()
                partial["train_seconds"] += now - started
                partial["seconds"] += now - started
                started = now
                self._save_resume(position)
                self.last_save = time.monotonic()
                if stops:
                    raise Interrupted(
                        f"stopped by {self.stop.received or 'a signal to another process'} at epoch {epoch}, "
                        f"update {position.update} of {self.updates_per_epoch}; the training state is in "
                        f"{self.resume_file}: run the same command again to continue"
                    )
        elapsed = time.monotonic() - started
        position.partial["train_seconds"] += elapsed
        position.partial["seconds"] += elapsed
        return done

    def _micro_step(
        self, epoch: int, update: int, step: int, images: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """Forward and backward of one micro-batch; returns its (detached) loss."""
        micro = step * self.ctx.world + self.ctx.rank
        # Mixing, erasing and stochastic depth draw from the global generators: seed them here.
        seeds.seed_globals(seeds.step_seed(self.s.seed, epoch, update, micro))
        images = images.to(self.ctx.device, non_blocking=True)
        labels = labels.to(self.ctx.device, non_blocking=True)
        x, targets = self.augment(images, labels)
        if self.cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        last = step == self.accumulation - 1
        sync = contextlib.nullcontext() if last or self.ctx.world == 1 else self.ddp.no_sync()
        running_stats = contextlib.nullcontext() if self.running_stats is None else self.running_stats.micro_step()
        with sync, running_stats:
            with torch.autocast(self.ctx.device.type, dtype=torch.bfloat16, enabled=self.cuda):
                loss = self.criterion(self.ddp(x), targets)
            self.scaler.scale(loss / self.accumulation).backward()
        return loss.detach().double()

    def _finish_epoch(self, position: Position, epoch: int) -> dict:
        """Validate, append the epoch's history row, move the position to the next epoch."""
        started = time.monotonic()
        val_loss, top1, top5 = self._validate()
        if not math.isfinite(val_loss):
            # Finite weights can still overflow in evaluation (e.g. BatchNorm's running statistics).
            raise NonFinite(f"non-finite validation loss ({val_loss}) after epoch {epoch}; {NON_FINITE_ADVICE}")
        partial = position.partial
        partial["seconds"] += time.monotonic() - started
        lr = partial.get("lr", self.optimizer.param_groups[0]["lr"])
        evaluation = {"val_loss": val_loss, "val_top1": top1, "val_top5": top5}
        row = training_state.epoch_row(epoch, lr, partial, partial["micro_batches"], evaluation)
        position.history.append(row)
        position.epoch, position.update = epoch, 0
        position.partial = Position(epoch).partial
        return row

    @torch.no_grad()
    def _validate(self) -> tuple[float, float, float]:
        """Mean cross entropy (no smoothing), top-1 and top-5 accuracy over the validation split."""
        self.ctx.broadcast_buffers(self.model)
        self.model.eval()
        loss = correct1 = correct5 = count = 0.0
        k = min(5, self.model.head.out_features)
        for images, labels in self.val_loader:
            images = images.to(self.ctx.device, non_blocking=True)
            labels = labels.to(self.ctx.device, non_blocking=True)
            x = self.augment.normalise(images)
            if self.cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.ctx.device.type, dtype=torch.bfloat16, enabled=self.cuda):
                logits = self.model(x)
            logits = logits.float()
            loss += F.cross_entropy(logits, labels, reduction="sum").item()
            hits = logits.topk(k, dim=1).indices == labels[:, None]
            correct1 += hits[:, 0].sum().item()
            correct5 += hits.any(dim=1).sum().item()
            count += len(labels)
        loss, correct1, correct5, count = self.ctx.all_sum([loss, correct1, correct5, count])
        return loss / count, correct1 / count, correct5 / count
