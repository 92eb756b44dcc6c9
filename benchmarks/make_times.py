"""Time `make install`, `make test` and `make demo` on a fresh clone of the repository.

    python3 benchmarks/make_times.py --write-docs          # on an otherwise idle machine

Clones the repository's committed HEAD into a temporary folder (uncommitted work is not in the
clone), then runs there, one after the other and each timed by the wall clock: `make install`
(creates .venv, installs the package with its test extras), `make test` (the lint checks and the
test suite) and `make demo` (the workflow on the synthetic demo). Each step's output goes to a log
beside the clone; a failing step stops the script with the end of its log and writes nothing. The
clone is removed at the end unless `--keep` is given. Needs only Python, git and make (no torch).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from timings_doc import REPO, add_option, machine, publish, table


@dataclass
class Step:
    target: str
    seconds: float
    log: Path


def minutes(seconds: float) -> str:
    """`3 min 45 s`."""
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60} s"


def run(clone: Path, target: str, make_vars: list[str], logs: Path) -> Step:
    """Run `make TARGET` in the clone, its output into a log; stop with the log's end if it fails."""
    log = logs / f"make-{target}.log"
    start = time.perf_counter()
    with log.open("w") as out:
        status = subprocess.run(["make", target, *make_vars], cwd=clone, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if status.returncode:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:])
        raise SystemExit(f"{tail}\nmake {target} failed with status {status.returncode} (log: {log})")
    print(f"make {target}: {minutes(seconds)}", flush=True)
    return Step(target, seconds, log)


def last_match(pattern: str, log: Path) -> re.Match | None:
    matches = list(re.finditer(pattern, log.read_text(errors="replace")))
    return matches[-1] if matches else None


def test_summary(log: Path) -> str:
    """`461 passed, 2 skipped` from pytest's last line."""
    counts = [m.group(0) for word in ("passed", "skipped") if (m := last_match(rf"\d+ {word}", log))]
    return ", ".join(counts) or "pytest's summary not found in the log"


def demo_summary(log: Path) -> str:
    """`72 of 72 steps` from Snakemake's last progress line."""
    done = last_match(r"(\d+) of (\d+) steps \(100%\) done", log)
    return f"{done.group(1)} of {done.group(2)} jobs" if done else "Snakemake's progress not found in the log"


def torch_version(clone: Path) -> str:
    """The torch version installed in the clone's venv."""
    python = clone / ".venv" / "bin" / "python"
    found = subprocess.run([python, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True)
    return found.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=2, help="CORES= for make demo (default: 2, as the Makefile)")
    parser.add_argument("--python", default="python3.11", help="PYTHON= for make (default: python3.11)")
    parser.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    add_option(parser)
    args = parser.parse_args()
    before = machine()  # the load before the steps add their own
    folder = Path(tempfile.mkdtemp(prefix="medseg-make-times-"))
    clone = folder / "medseg"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    make_vars = [f"PYTHON={args.python}", f"CORES={args.cores}"]
    print(f"timing make in {clone} ({' '.join(make_vars)})", flush=True)
    steps = [run(clone, target, make_vars, folder) for target in ("install", "test", "demo")]
    here = f"{before}; torch {torch_version(clone)}"
    notes = {
        "install": "creates .venv and installs the package with its test extras",
        "test": test_summary(steps[1].log),
        "demo": demo_summary(steps[2].log),
    }
    rows = [[f"`make {step.target}`", minutes(step.seconds), notes[step.target]] for step in steps]
    if args.write_docs:
        settings = f"a fresh clone of the committed HEAD, {' '.join(make_vars)}, the steps in this order"
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True)
        # --keep changes nothing measured, so it does not name a section of its own.
        argv = [arg for arg in sys.argv if arg != "--keep"]
        body = table(["step", "wall time", "what it did"], rows)
        publish(here, settings, body, argv, commit=f"commit {commit.stdout.strip()}")
    if args.keep:
        print(f"kept {folder}")
    else:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
