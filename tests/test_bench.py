"""The benchmark's own arithmetic, engine-free: rounds go baseline, dockyard, bare Invoke; the
net figures take bare Invoke's median from dockyard's; a target judges the figure it names."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

sys.path.insert(0, str(REPO))
from bench.cases import CASES  # noqa: E402
from bench.harness import TARGET_KINDS, Row, Sample, alternate  # noqa: E402


def sample(seconds: float) -> Sample:
    return Sample(seconds, 1024, 0, "")


def filled_row(target: float, kind: str) -> Row:
    """Medians (the first round is a warm-up): dockyard 1.0 s, baseline 2.0 s, bare Invoke 0.25 s."""
    row = Row("case", target=target, target_kind=kind)
    row.dockyard = [sample(s) for s in (9.0, 0.9, 1.1)]
    row.baseline = [sample(s) for s in (9.0, 1.9, 2.1)]
    row.bare = [sample(s) for s in (9.0, 0.2, 0.3)]
    return row


def test_alternate_runs_baseline_dockyard_and_bare_invoke_in_turn_each_round():
    order: list[str] = []

    def side(name: str):
        def one_round(i: int) -> Sample:
            order.append(f"{name}{i}")
            return sample(0.1)
        return one_round

    row = Row("case")
    alternate(row, 2, side("dockyard"), side("baseline"), side("bare"))
    assert order == ["baseline0", "dockyard0", "bare0", "baseline1", "dockyard1", "bare1",
                     "baseline2", "dockyard2", "bare2"]
    assert (len(row.dockyard), len(row.baseline), len(row.bare)) == (3, 3, 3)


def test_net_figures_take_bare_invokes_median_from_dockyards():
    row = filled_row(1.0, "gross")
    assert row.ratio == 0.5
    assert row.net_seconds == 0.75
    assert row.net_ratio == 0.375
    cells = row.cells()
    assert cells[1:7] == ["1.000 s", "2.000 s", "0.250 s", "0.50", "0.375", "0.750 s"]


def test_a_target_judges_the_figure_it_names():
    # gross 0.5, net ratio 0.375, net 0.75 s
    assert filled_row(0.4, "gross").met() == "**NO**"
    assert filled_row(0.4, "net").met() == "yes"
    assert filled_row(0.5, "net seconds").met() == "**NO**"
    assert filled_row(0.8, "net seconds").met() == "yes"
    assert filled_row(0.8, "net seconds").cells()[7] == "net <= 0.80 s"
    assert filled_row(0.4, "net").cells()[7] == "net <= 0.40"
    # seconds: dockyard's own median (a running watch has no start-up in it)
    assert filled_row(0.9, "seconds").met() == "**NO**" and filled_row(1.0, "seconds").met() == "yes"
    assert filled_row(1.0, "seconds").cells()[7] == "<= 1.00 s"


def test_every_case_names_a_known_target_kind_and_the_new_cases_are_registered():
    assert {case.target_kind for case in CASES} <= set(TARGET_KINDS)
    names = [case.name for case in CASES]
    for name in ("exec", "noop-500", "noop-big-context", "one-file-change-buildkit", "watch-sync", "watch-rebuild"):
        assert name in names


def test_run_help_lists_every_case_with_its_target():
    result = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "noop-big-context          target net <= 0.15 s" in result.stdout
    assert "one-file-change-buildkit  target net <= 1.00" in result.stdout


def test_the_report_gives_the_size_of_the_engine_s_buildkit_databases(tmp_path, monkeypatch):
    # A long-used engine's BuildKit databases slow every BuildKit build, on both sides: a
    # reader must be able to tell one run's engine from another's.
    from bench import report

    (tmp_path / "buildkit").mkdir()
    (tmp_path / "buildkit" / "cache.db").write_bytes(b"\0" * (3 << 20))
    (tmp_path / "buildkit" / "snapshots.db").write_bytes(b"\0" * (1 << 20))
    (tmp_path / "buildkit" / "other.txt").write_bytes(b"\0" * (5 << 20))
    monkeypatch.setattr(report, "docker", lambda *args, **kwargs: f"{tmp_path}\n")
    assert report.buildkit_metadata() == "4 MiB"
    monkeypatch.setattr(report, "docker", lambda *args, **kwargs: "/nonexistent/root\n")
    assert report.buildkit_metadata() == "?"  # a remote engine's data root is not here
    monkeypatch.setattr(report, "docker", lambda *args, **kwargs: "")
    assert report.buildkit_metadata() == "?"
