"""dockyard's benchmark: the real ``inv`` program against the plain docker CLI, on the real engine.

Usage (with the project's venv python; the engine must be running, no registry is needed)::

    python bench/run.py                                  # every case, 5 measured rounds each
    python bench/run.py --rounds 3 --size-mib 256        # a quick check
    python bench/run.py --cases noop-httpd,list --out /tmp/bench.md
    python bench/run.py --cases exec --rounds 2            # one case
    python bench/run.py --help                           # options, and every case with its target

Options:
    --rounds N      measured rounds per side (default 5). Each side also runs one warm-up
                    round first, which is shown in the samples but left out of the medians.
                    clean-200 uses at most 3 rounds (each round needs 200 fresh containers);
                    list uses 4 x N (a run takes ~0.3 s, so noise weighs more).
    --cases a,b     run only these cases (default: all, in the registry's order).
    --out PATH      the markdown table (default bench/results/latest.md; git-ignored).
    --size-mib N    size of the image for export-1g and save-1g (default 1024).
    --context-mib N size of noop-big-context's build context, in 20,000 files (default 2048).

Where things are:
    bench/run.py             this entry point: options, each case in turn, cleanup, the report
    bench/cases/__init__.py  the registry: case name -> function, target, description
    bench/cases/build.py     noop-httpd, one-file-change(-buildkit), noop-big-context, noop-50, noop-500,
                             parallel-8
    bench/cases/run.py       run-until-page, exec
    bench/cases/startup.py   list
    bench/cases/artifacts.py export-1g, save-1g
    bench/cases/clean.py     clean-200
    bench/cases/services.py  up, down, up-noop
    bench/cases/registry.py  push (starts its own loopback docker-registry)
    bench/cases/swarm.py     deploy, deploy-overlay (makes the engine a single-node swarm when it is in none)
    bench/harness.py         measure one command (Sample), alternate rounds, a case's Row
    bench/workspace.py       Bench: the run's dybench-<random> names, its projects, cleanup
    bench/report.py          the markdown report, the hot-path ratios first

How it measures: every command is a child process (its output goes to a file); wall time is
taken around it, and dockyard's peak RSS is the child's own ``ru_maxrss`` from ``os.wait4``.
Rounds go round-robin in this one process: baseline, dockyard, bare Invoke, baseline, ...
Bare Invoke is ``python -m invoke noop`` over a tasks.py with one no-op task, in this venv: the
start-up no Invoke program can go below. Beside the gross ratio of median wall times, dockyard
/ baseline, the report gives the net ratio (dockyard - bare Invoke) / baseline and the net
seconds dockyard - bare Invoke. A case's target limits one of them (see bench/README.md).
dockyard's modules are compiled to bytecode first, as an installed package's are.

Everything it makes is named ``dybench-<random>...`` (projects, tags, containers) and lives
in a temporary directory; containers, images and files are removed at the end, also after a
failure, Ctrl-C or SIGTERM. A setup failure fails that case only; the others still run.
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import signal
import sys
import textwrap
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script, bench/ still imports as the package `bench`
from bench.cases import BY_NAME, CASES, Case  # noqa: E402
from bench.harness import CaseError, Row, docker, target_text  # noqa: E402
from bench.report import report  # noqa: E402
from bench.workspace import Bench  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "latest.md"


def case_list() -> str:
    """The registry as ``--help`` shows it: name, target, description."""
    lines = ["cases, in the order they run. Targets, on medians: `<= X` dockyard / baseline (gross); `net <= X`",
             "(dockyard - bare Invoke) / baseline; `net <= X s` dockyard - bare Invoke, in seconds:"]
    for case in CASES:
        target = (f"target {target_text(case.target, case.rss_limit_mib, case.target_kind)}"
                  if case.target is not None else "no target")
        lines.append(f"  {case.name:<26}{target}{' (hot path)' if case.hot_path else ''}")
        lines.append(textwrap.fill(case.description, width=100, initial_indent=" " * 28,
                                   subsequent_indent=" " * 28, break_on_hyphens=False))
    return "\n".join(lines)


def run_case(case: Case, bench: Bench, rows: list[Row]) -> None:
    """Add its row, then any check rows it adds, to ``rows``, also when interrupted part-way.

    A failure marks the row and does not stop the run.
    """
    row = Row(case.name, target=case.target, target_kind=case.target_kind, rss_limit_mib=case.rss_limit_mib)
    rows.append(row)
    print(f"case {case.name}", flush=True)
    try:
        case.function(bench, row)
    except CaseError as e:
        first = str(e).splitlines()[0] if str(e) else "error"
        row.status = f"**failed**: {first}"
        print(f"  {case.name} FAILED: {e}", flush=True)
    except Exception as e:  # noqa: BLE001 - a bug in one case must not stop the others
        row.status = f"**failed**: {type(e).__name__}: {e}"
        print(f"  {case.name} FAILED:", flush=True)
        traceback.print_exc()
    finally:
        rows.extend(row.extra)


def compile_dockyard() -> None:
    """Write dockyard's bytecode once, as `pip install` does for an installed package.

    An editable install run with PYTHONDONTWRITEBYTECODE set (as some CI and sandbox shells
    do) would otherwise compile every dockyard module from source in every measured `inv`
    run, a cost no installed dockyard has and the baseline (Invoke alone, compiled by pip)
    never pays.
    """
    import subprocess

    where = subprocess.run([sys.executable, "-c", "import dockyard, os; print(os.path.dirname(dockyard.__file__))"],
                           capture_output=True, text=True, check=False).stdout.strip()
    if where:
        subprocess.run([sys.executable, "-m", "compileall", "-q", where], capture_output=True, check=False)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    names = [case.name for case in CASES]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=case_list(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per side (default 5), after a warm-up")
    parser.add_argument("--cases", default=",".join(names), help=f"comma-separated, from: {', '.join(names)}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the markdown table (default bench/results/latest.md)")
    parser.add_argument("--size-mib", type=int, default=1024, help="image size for export-1g and save-1g (default 1024)")
    parser.add_argument("--context-mib", type=int, default=2048,
                        help="noop-big-context's context size, in 20,000 files (default 2048)")
    args = parser.parse_args(argv)
    wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in BY_NAME]
    if unknown or args.rounds < 1 or args.size_mib < 16 or args.context_mib < 1:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(names)}" if unknown
                     else "--rounds must be >= 1, --size-mib >= 16 and --context-mib >= 1")
    if shutil.which("docker") is None or not docker("version", "--format", "{{.Server.Version}}", check=False).strip():
        print("the docker CLI cannot reach an engine: start dockerd first", file=sys.stderr)
        return 2

    compile_dockyard()
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM cleans up like Ctrl-C
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    bench = Bench(args)
    started, clock = datetime.datetime.now().astimezone(), time.monotonic()
    print(f"dybench: prefix {bench.prefix}, work dir {bench.work}, inv {' '.join(bench.inv)}", flush=True)
    rows: list[Row] = []
    interrupted = False
    try:
        for case in CASES:
            if case.name in wanted:
                run_case(case, bench, rows)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: cleaning up", file=sys.stderr, flush=True)
    finally:
        print("cleanup: removing containers, images and files", flush=True)
        bench.cleanup()
    hot_paths = {case.name: case.hot_path for case in CASES if case.hot_path}
    text = report(rows, args, started, time.monotonic() - clock, hot_paths)
    if interrupted:
        text = text.replace("# dockyard benchmark", "# dockyard benchmark (INTERRUPTED: partial)", 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print("\n" + text)
    print(f"written to {args.out}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
