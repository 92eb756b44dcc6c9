"""Write a benchmark's results into docs/timings.md, with the machine and the command that produced them.

Each benchmark script takes `--write-docs`. Its results then replace the text between

    <!-- benchmarks/NAME.py ARGS -->
    ...
    <!-- end -->

where `benchmarks/NAME.py ARGS` is the command that ran, without `--write-docs`; a command without
a section of its own gets one appended at the end of the page. So every number in a section
comes from the command its marker names. Torch-free: `make_times.py` uses it outside any venv.
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "timings.md"
END = "<!-- end -->"
OPTION = "--write-docs"


def add_option(parser) -> None:
    """The `--write-docs` flag every benchmark script takes."""
    parser.add_argument(
        OPTION,
        action="store_true",
        help=f"also write the results into {DOC.relative_to(REPO)}, in the section of this command",
    )


def command(argv: Sequence[str] | None = None) -> str:
    """`benchmarks/NAME.py ARGS`: the command that ran, relative to the repository, without --write-docs."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve()
    name = script.relative_to(REPO).as_posix() if script.is_relative_to(REPO) else script.name
    return shlex.join([name, *(arg for arg in argv[1:] if arg != OPTION)])


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine(torch_version: str | None = None, device: str | None = None) -> str:
    """One line naming the machine now: CPU, cores, load, Python, torch and the device used."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parts = [
        f"{cpu_model()}, {os.cpu_count()} logical cores ({usable} usable)",
        f"load average {os.getloadavg()[0]:.1f}",
        f"Python {platform.python_version()}",
    ]
    if torch_version:
        parts.append(f"torch {torch_version}")
    if device:
        parts.append(f"device {device}")
    return "; ".join(parts)


def revision() -> str:
    """The repository's commit, marked when the working tree has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return f"commit {commit}" + (" with uncommitted changes" if dirty else "")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table of the printed values (strings, so the page holds exactly what was printed)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def section(name: str, machine_line: str, settings: str, body: str, commit: str | None = None) -> str:
    """The text of a section: what ran, where and when (`commit`: what was measured, else this tree), the results."""
    return (
        f"`{name}` on {datetime.date.today().isoformat()} ({commit or revision()}).\n"
        f"Machine: {machine_line}.\nSettings: {settings}.\n\n{body.strip()}\n"
    )


def replace_section(page: str, name: str, text: str) -> str:
    """`page` with the text between `name`'s markers replaced by `text` (the section appended if new)."""
    start = f"<!-- {name} -->"
    lines = page.splitlines(keepends=True)
    begin = next((i for i, line in enumerate(lines) if line.strip() == start), None)
    if begin is None:
        return page.rstrip("\n") + f"\n\n{start}\n{text.rstrip()}\n{END}\n"
    end = next((i for i in range(begin + 1, len(lines)) if lines[i].strip() == END), None)
    if end is None:
        raise SystemExit(f"{DOC}: the section {start} has no {END} line after it")
    return "".join(lines[: begin + 1]) + text.rstrip("\n") + "\n" + "".join(lines[end:])


def publish(
    machine_line: str,
    settings: str,
    body: str,
    argv: Sequence[str] | None = None,
    doc: Path = DOC,
    commit: str | None = None,
) -> None:
    """Write `body` into `doc` as the section of the command that ran, and say where."""
    name = command(argv)
    doc.write_text(replace_section(doc.read_text(), name, section(name, machine_line, settings, body, commit)))
    print(f"wrote the section <!-- {name} --> of {doc}")
