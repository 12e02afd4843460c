"""The markdown report: the machine, the hot-path ratios, every case's row, notes and samples."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import sys
from pathlib import Path

from bench.harness import Row, docker, run
from bench.workspace import REPO


def machine() -> dict[str, str]:
    mem = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    server = docker("version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})", check=False).strip()
    commit = run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], check=False).strip()
    dirty = run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"], check=False).strip()
    try:
        from importlib.metadata import version

        libs = f"invoke {version('invoke')}, docker-py {version('docker')}"
    except Exception:  # noqa: BLE001 - informational only
        libs = "?"
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return {"nproc": str(os.cpu_count()), "RAM": mem, "load avg (1/5/15 min, at the end)": load, "kernel": platform.release(),
            "docker server": server or "?", "BuildKit metadata": buildkit_metadata(), "python": platform.python_version(), "libraries": libs,
            "dockyard commit": f"{commit}{' (modified)' if dirty else ''}" or "?"}


def buildkit_metadata() -> str:
    """The size of the engine's BuildKit databases, when its data root is on this machine and
    readable. They are bolt files, which never shrink; grown large (hundreds of MiB after a
    few thousand builds and prunes), every commit a build makes rewrites their free lists,
    and BuildKit builds of the example took 0.47 to 0.58 s instead of 0.27 to 0.34 s, for
    the docker CLI as for dockyard (bench/README.md, "Latest run")."""
    root = docker("info", "--format", "{{.DockerRootDir}}", check=False).strip()
    try:
        size = sum(path.stat().st_size for path in Path(root, "buildkit").glob("*.db")) if root else 0
    except OSError:
        size = 0
    return f"{size / (1 << 20):.0f} MiB" if size else "?"


def hot_path_table(rows: list[Row], hot_paths: dict[str, str]) -> list[str]:
    """The ratios the issue tracks, on their own above the full table: {case name: label}."""
    picked = [(hot_paths[row.case], row) for row in rows if row.case in hot_paths]
    if not picked:
        return []
    lines = ["Hot paths (the figures the issue tracks; every case is in the table below):", "",
             "| hot path | gross ratio | net ratio | net | target | met? |", "|---|---|---|---|---|---|"]
    for label, row in picked:
        _, _, _, _, gross, net_ratio, net, target, met, _ = row.cells()
        lines.append(f"| {label} | {gross} | {net_ratio} | {net} | {target} | {met} |")
    return lines + [""]


def report(rows: list[Row], args: argparse.Namespace, started: datetime.datetime, elapsed: float,
           hot_paths: dict[str, str]) -> str:
    info = machine()
    head = ["case", "dockyard median", "baseline median", "bare Invoke median", "gross ratio", "net ratio", "net",
            "target", "met?", "dockyard peak RSS"]
    lines = ["# dockyard benchmark", "",
             f"- date: {started.isoformat(timespec='seconds')} (took {elapsed / 60:.1f} min)",
             "- machine: " + ", ".join(f"{k} {v}" for k, v in info.items()),
             f"- command: `{' '.join(['python', 'bench/run.py', *sys.argv[1:]])}`"
             f" (rounds {args.rounds}, size {args.size_mib} MiB, context {args.context_mib} MiB)", ""]
    lines += hot_path_table(rows, hot_paths)
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    lines += ["", "Notes:",
              "- Wall times are medians of the measured rounds; each round runs baseline, dockyard, bare Invoke in "
              "turn; the first round is a warm-up, left out of the medians (it is in the samples below).",
              "- bare Invoke: `python -m invoke noop` over a tasks.py with one no-op task, in the same venv: the "
              "start-up no Invoke program can go below.",
              "- gross ratio = dockyard / baseline; net ratio = (dockyard - bare Invoke) / baseline; net = dockyard - "
              "bare Invoke, in seconds (all of medians).",
              "- met? compares the figure the target names (`<= X` gross ratio, `net <= X` net ratio, `net <= X s` "
              "net seconds) and peak RSS under its limit.",
              "- Peak RSS: ru_maxrss of the `inv` process itself (os.wait4), the highest of its runs.", ""]
    lines += [f"- {row.case}: {row.note}" for row in rows if row.note]
    lines += ["", "Samples (seconds; first = warm-up):", ""]
    for row in rows:
        if row.dockyard or row.baseline:
            d = ", ".join(f"{s.seconds:.3f}" for s in row.dockyard)
            b = ", ".join(f"{s.seconds:.3f}" for s in row.baseline)
            bare = ", ".join(f"{s.seconds:.3f}" for s in row.bare)
            lines.append(f"- {row.case}: dockyard [{d}]; baseline [{b}]; bare Invoke [{bare}]")
    return "\n".join(lines) + "\n"

