"""A long job's clean stop: SIGTERM/SIGINT become a flag that the training loops check between steps."""

from __future__ import annotations

import signal


class StopSignals:
    """Turn SIGTERM/SIGINT into a flag checked between optimizer updates.

    Repeated signals do not escalate: Slurm signals every process of a job while the launcher
    also forwards its own, so a process may get the same signal twice. SIGKILL still kills.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self.previous: dict = {}

    def _handle(self, signum: int, _frame) -> None:
        self.received = self.received or signal.Signals(signum).name

    def __enter__(self) -> StopSignals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *_) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
