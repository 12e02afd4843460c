"""Start-up cases: what a Python process with Invoke and dockyard costs before any work.

list: ``inv --list`` in the example project against Invoke over a one-task ``tasks.py``.
"""

from __future__ import annotations

from bench.harness import Row, alternate, checked, measure
from bench.workspace import Bench


def list_tasks(bench: Bench, row: Row) -> None:
    root = bench.main_project()
    empty = bench.bare_project
    rounds = 4 * bench.args.rounds  # ~0.3 s a run: more rounds against the noise, still quick
    alternate(row, rounds,
              lambda i: checked(measure(bench.inv_cmd("--list"), root), "inv --list"),
              lambda i: checked(measure(bench.inv_cmd("--list"), empty), "inv --list (plain)"), bench.bare_invoke)
    row.note = f"baseline: invoke itself over a tasks.py with one no-op task; {rounds} rounds"

