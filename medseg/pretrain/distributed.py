"""Data-parallel pretraining: one process per device, started by the command itself or by torchrun.

Under torchrun (RANK and WORLD_SIZE set) each process joins the group torchrun describes.
Otherwise `launch` runs the job in this process when one process is wanted, or spawns one per
device on this machine (NCCL on GPUs, gloo on CPU) and forwards SIGTERM/SIGINT to them.
`SequentialBatchNorm` keeps the BatchNorm running statistics equal to a one-process run's.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from medseg.errors import Interrupted, MedsegError

log = logging.getLogger(__name__)

# Exit status of a spawned process that stopped with a message for the user (in its error file).
_USER_ERROR = 2
# Seconds the other processes get to stop by themselves after one has failed.
_GRACE_SECONDS = 20.0


@dataclass(frozen=True)
class Context:
    """This process's place in the group: rank, group size, and its device."""

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum of `values` over all processes (float64)."""
        if self.world == 1:
            return [float(v) for v in values]
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Give every process rank 0's BatchNorm statistics (validation must agree everywhere)."""
        if self.world > 1:
            for buffer in model.buffers():
                dist.broadcast(buffer, 0)


def sequential_weights(factors: Sequence[float]) -> tuple[float, list[float]]:
    """How consecutive moving-average updates combine when each was computed alone from the same start.

    Update k of a run replaces r by (1 - f_k) r + f_k b_k. Computed alone from r it gives
    r_k = (1 - f_0) r + f_0 b_k, so f_0 b_k = r_k - (1 - f_0) r, and the updates in order give
    r_W = carry * r + sum_k weight_k * (r_k - (1 - f_0) r) with carry = prod_i (1 - f_i) and
    weight_k = (f_k / f_0) prod_{i > k} (1 - f_i). Returns (carry, weights).
    """
    carry, weights = 1.0, []
    for k in reversed(range(len(factors))):
        ratio = factors[k] / factors[0] if factors[0] else 0.0  # factor 0: no update at all
        weights.append(ratio * carry)
        carry *= 1 - factors[k]
    return carry, weights[::-1]


class SequentialBatchNorm:
    """Makes W processes' BatchNorm running statistics those of one process accumulating W micro-batches.

    One process updates each layer's running mean and variance once per micro-batch, in the
    order micro = step * world + rank (`data.TrainBatches`). W processes each update from the
    same statistics with their own micro-batch; `micro_step` then combines the W results into
    the sequential one (`sequential_weights`) with one all_reduce, and counts W batches in
    `num_batches_tracked`. The statistics therefore match the one-process run's up to float
    rounding and are equal in every process. Without it each process would keep its own.
    """

    def __init__(self, model: nn.Module, ctx: Context) -> None:
        self.ctx = ctx
        self.layers = [
            layer
            for layer in model.modules()
            if isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.track_running_stats
        ]

    @contextmanager
    def micro_step(self) -> Iterator[None]:
        """Wrap the forward pass of one micro-batch (in every process)."""
        before = [
            (layer.running_mean.clone(), layer.running_var.clone(), layer.num_batches_tracked.clone())
            for layer in self.layers
        ]
        yield
        if self.layers:
            self._combine(before)

    def _factors(self, layer: nn.modules.batchnorm._BatchNorm, tracked: torch.Tensor) -> list[float]:
        """The factor of each of the W updates, as PyTorch's BatchNorm chooses it."""
        if layer.momentum is None:  # cumulative average: 1 / (batches counted so far)
            return [1.0 / (int(tracked) + 1 + k) for k in range(self.ctx.world)]
        return [layer.momentum] * self.ctx.world

    def _combine(self, before: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> None:
        """Replace every process's statistics with the sequential result (float64 arithmetic)."""
        parts, carries = [], []
        for layer, (mean, var, tracked) in zip(self.layers, before):
            factors = self._factors(layer, tracked)
            carry, weights = sequential_weights(factors)
            weight, keep = weights[self.ctx.rank], 1 - factors[0]
            parts += [
                weight * (layer.running_mean.double() - keep * mean.double()),
                weight * (layer.running_var.double() - keep * var.double()),
                (layer.num_batches_tracked - tracked).double().view(1),
            ]
            carries.append(carry)
        total = torch.cat(parts)
        dist.all_reduce(total)
        sums = iter(total.split([part.numel() for part in parts]))
        for layer, (mean, var, tracked), carry in zip(self.layers, before, carries):
            layer.running_mean.copy_(carry * mean.double() + next(sums))
            layer.running_var.copy_(carry * var.double() + next(sums))
            layer.num_batches_tracked.copy_(tracked + next(sums).round().long().squeeze(0))


def device_for(local_rank: int) -> torch.device:
    return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")


def wanted_processes(requested: int | None) -> int:
    """The requested number, else one per visible GPU (1 on CPU)."""
    if requested is not None:
        return requested
    return max(torch.cuda.device_count(), 1)


def _backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def launch(job: Callable[[Context], None], processes: int, verbose: bool = False) -> None:
    """Run `job` once per process of the group (see module docstring)."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        device = device_for(int(os.environ.get("LOCAL_RANK", "0")))
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(_backend(), rank=rank, world_size=world)
        try:
            job(Context(rank, world, device))
        finally:
            dist.destroy_process_group()
        return
    if processes == 1:
        device = device_for(0)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        job(Context(0, 1, device))
        return
    if torch.cuda.is_available() and processes > torch.cuda.device_count():
        raise MedsegError(f"{processes} processes requested but only {torch.cuda.device_count()} GPUs are visible")
    _spawn(job, processes, verbose)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _spawn(job: Callable[[Context], None], processes: int, verbose: bool) -> None:
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="medseg-ddp-") as errors:
        address = f"tcp://127.0.0.1:{_free_port()}"
        context = mp.start_processes(
            _child, args=(job, processes, address, errors, verbose), nprocs=processes, join=False, start_method="spawn"
        )

        def forward(signum: int, _frame) -> None:
            for process in context.processes:
                if process.is_alive():
                    os.kill(process.pid, signum)

        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not context.join(grace_period=_GRACE_SECONDS):
                pass
        except mp.ProcessExitedException:
            _raise_child_error(Path(errors), processes)
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _raise_child_error(errors: Path, processes: int) -> None:
    """Re-raise the first message a child left, as the exception type it had."""
    for rank in range(processes):
        path = errors / str(rank)
        if path.is_file():
            kind, _, message = path.read_text().partition("\n")
            raise (Interrupted if kind == "interrupted" else MedsegError)(message) from None


def _child(rank: int, job: Callable[[Context], None], world: int, address: str, errors: str, verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO if rank == 0 else logging.WARNING,
        format=f"%(asctime)s %(levelname)s %(name)s [rank {rank}]: %(message)s",
        stream=sys.stderr,
    )
    device = device_for(rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(_backend(), init_method=address, rank=rank, world_size=world)
    try:
        job(Context(rank, world, device))
    except MedsegError as error:
        kind = "interrupted" if isinstance(error, Interrupted) else "error"
        Path(errors, str(rank)).write_text(f"{kind}\n{error}")
        sys.exit(_USER_ERROR)
    finally:
        dist.destroy_process_group()
