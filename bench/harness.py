"""The bench's machinery: run and time one command, and hold a case's samples and verdict.

``measure`` runs a command as a child process and returns a ``Sample`` (wall time, the child's
own peak RSS, exit code, output). ``alternate`` runs a case's baseline, its dockyard side and a
bare Invoke program round by round into a ``Row``, which knows its medians, its gross ratio
(dockyard / baseline), its net figures (dockyard less bare Invoke), its target and whether it
was met.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


class CaseError(Exception):
    """A case could not be set up or a command failed; the case is reported as failed."""


# --- running commands ---------------------------------------------------------------------


@dataclass
class Sample:
    seconds: float
    maxrss_kib: int
    returncode: int
    output: str


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def measure(argv: list[str], cwd: Path, timeout: float = 900, env: dict[str, str] | None = None) -> Sample:
    """Run one command as its own process group; wall time, its peak RSS, exit code, output.

    ``env``: variables to set for it, on top of ours.
    """
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        # Own session: Ctrl-C reaches only us, and we kill the child's whole group ourselves.
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, **env} if env else None)
        timer = threading.Timer(timeout, _kill_group, (proc.pid,))
        timer.daemon = True
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            _kill_group(proc.pid)
            proc.wait()
            raise
        finally:
            timer.cancel()
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read().decode("utf-8", "replace")
    return Sample(seconds, usage.ru_maxrss, proc.returncode, output)


def reason(output: str) -> str:
    """The most telling line of a failed command's output: its last error, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    telling = [line for line in lines if re.search(r"error|failed|unable|cannot|denied", line, re.IGNORECASE)]
    line = (telling or lines or ["(no output)"])[-1]
    # dockyard's final "build failed for X" says less than the line that names the cause.
    if len(telling) > 1 and "build failed for" in line:
        line = telling[-2]
    return line if len(line) <= 200 else line[:197] + "..."


def checked(sample: Sample, what: str) -> Sample:
    if sample.returncode != 0:
        tail = "\n".join(sample.output.rstrip().splitlines()[-8:])
        raise CaseError(f"{what} exited {sample.returncode}: {reason(sample.output)}\n{tail}")
    return sample


def run(argv: list[str], cwd: Path | None = None, check: bool = True, timeout: float = 900) -> str:
    """An untimed helper command (setup, checks, cleanup); its stdout, or CaseError."""
    try:
        result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise CaseError(f"{' '.join(argv[:4])} ... timed out after {timeout:g}s") from None
    if check and result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).rstrip().splitlines()[-8:])
        raise CaseError(f"`{' '.join(argv[:6])}` exited {result.returncode}:\n{tail}")
    return result.stdout


def docker(*args: str, check: bool = True, timeout: float = 900) -> str:
    return run(["docker", *args], check=check, timeout=timeout)


# --- results: one row of the report per case -----------------------------------------------


# What a target limits: the gross ratio, dockyard / baseline; the net ratio, (dockyard - bare
# Invoke) / baseline; or the net seconds, dockyard - bare Invoke. Net figures take away the
# start-up of Invoke itself, which no Invoke program can go below. "seconds": dockyard's own
# median (a running watch: no start-up in it).
TARGET_KINDS = ("gross", "net", "net seconds", "seconds")


@dataclass
class Row:
    case: str
    dockyard: list[Sample] = field(default_factory=list)
    baseline: list[Sample] = field(default_factory=list)
    bare: list[Sample] = field(default_factory=list)  # a bare Invoke program running one no-op task
    target: float | None = None
    target_kind: str = "gross"  # TARGET_KINDS
    rss_limit_mib: float | None = None
    status: str = ""  # "" measured; otherwise "failed: ...", "not available: ...", or a check result
    note: str = ""
    extra: list[Row] = field(default_factory=list)  # rows a case adds after its own (checks)

    def median(self, samples: list[Sample]) -> float | None:
        measured = samples[1:] if len(samples) > 1 else samples  # the first is a warm-up
        return statistics.median(s.seconds for s in measured) if measured else None

    @property
    def ratio(self) -> float | None:
        """The gross ratio: dockyard / baseline."""
        d, b = self.median(self.dockyard), self.median(self.baseline)
        return d / b if d is not None and b else None

    @property
    def net_seconds(self) -> float | None:
        """dockyard's time past Invoke's own start-up: dockyard - bare Invoke."""
        d, bare = self.median(self.dockyard), self.median(self.bare)
        return d - bare if d is not None and bare is not None else None

    @property
    def net_ratio(self) -> float | None:
        """(dockyard - bare Invoke) / baseline."""
        net, b = self.net_seconds, self.median(self.baseline)
        return net / b if net is not None and b else None

    def judged(self) -> float | None:
        """The figure the target limits."""
        return {"gross": self.ratio, "net": self.net_ratio, "net seconds": self.net_seconds,
                "seconds": self.median(self.dockyard)}[self.target_kind]

    @property
    def peak_rss_mib(self) -> float | None:
        return max(s.maxrss_kib for s in self.dockyard) / 1024 if self.dockyard else None

    def mark_not_available(self, note: str) -> None:
        """dockyard has no task for this case yet: nothing measured, so no target to meet."""
        self.status, self.note = "not available", note
        self.target = self.rss_limit_mib = None

    def met(self) -> str:
        if self.status:
            return self.status
        figure = self.judged()
        if self.target is None or figure is None:
            return "n/a"
        ok = figure <= self.target
        if self.rss_limit_mib is not None and self.peak_rss_mib is not None:
            ok = ok and self.peak_rss_mib < self.rss_limit_mib
        return "yes" if ok else "**NO**"

    def cells(self) -> list[str]:
        """case, dockyard, baseline, bare Invoke, gross, net ratio, net s, target, met?, RSS."""
        def secs(value: float | None) -> str:
            return f"{value:.3f} s" if value is not None else "-"

        def ratio(value: float | None, places: int = 2) -> str:
            return f"{value:.{places}f}" if value is not None else "-"

        target = target_text(self.target, self.rss_limit_mib, self.target_kind)
        rss = f"{self.peak_rss_mib:.1f} MiB" if self.peak_rss_mib is not None else "-"
        cells = [self.case, secs(self.median(self.dockyard)), secs(self.median(self.baseline)),
                 # three places for the net ratio: its targets go down to 0.05
                 secs(self.median(self.bare)), ratio(self.ratio), ratio(self.net_ratio, 3), secs(self.net_seconds),
                 target, self.met(), rss]
        return [cell.replace("|", "\\|") for cell in cells]


def target_text(target: float | None, rss_limit_mib: float | None = None, kind: str = "gross") -> str:
    """A target as the report and ``--help`` show it: ``<= 0.20, RSS < 100 MiB``, ``net <= 1.00``,
    ``net <= 0.15 s``."""
    if target is None:
        text = "-"
    elif kind == "net seconds":
        text = f"net <= {target:.2f} s"
    elif kind == "seconds":
        text = f"<= {target:.2f} s"
    else:
        text = f"{'net ' if kind == 'net' else ''}<= {target:.2f}"
    if rss_limit_mib is not None:
        text += f", RSS < {rss_limit_mib:g} MiB"
    return text


def alternate(row: Row, rounds: int, dockyard_round: Callable[[int], Sample],
              baseline_round: Callable[[int], Sample], bare_round: Callable[[int], Sample]) -> None:
    """Warm-up plus ``rounds`` rounds, each in turn: baseline, dockyard, bare Invoke.

    Bare Invoke runs in every round of every case, so its median is taken under the same load
    as the two sides it is subtracted from.
    """
    for i in range(rounds + 1):
        row.baseline.append(baseline_round(i))
        row.dockyard.append(dockyard_round(i))
        row.bare.append(bare_round(i))
        d, b, bare = row.dockyard[-1], row.baseline[-1], row.bare[-1]
        label = "warm-up" if i == 0 else f"round {i}"
        print(f"  {row.case} {label}: baseline {b.seconds:.3f}s, dockyard {d.seconds:.3f}s "
              f"({d.maxrss_kib / 1024:.0f} MiB), bare Invoke {bare.seconds:.3f}s", flush=True)
