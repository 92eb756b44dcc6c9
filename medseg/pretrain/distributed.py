"""Data-parallel pretraining: one process per device, started by the command itself or by torchrun.

Under torchrun (RANK and WORLD_SIZE set) each process joins the group torchrun describes.
Otherwise `launch` runs the job in this process when one process is wanted, or spawns one per
device on this machine (NCCL on GPUs, gloo on CPU) and forwards SIGTERM/SIGINT to them.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence
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
