"""Artifact cases: streamed archives of a --size-mib image, against the docker CLI's ``-o``.

export-1g (``inv big.export`` vs ``docker export -o``) and save-1g (``inv big.save`` vs
``docker save -o``), both on one generated project whose image holds --size-mib of random data.
"""

from __future__ import annotations

from pathlib import Path

from bench.harness import CaseError, Row, Sample, alternate, checked, measure
from bench.workspace import Bench


def big_project(bench: Bench) -> Path:
    """Project ``<prefix>-art``: a --size-mib image and its running container, made once for both cases."""
    existing = bench.work / "art"
    if existing.exists():
        return existing
    bench.main_project()
    files = max(1, bench.args.size_mib // 16)
    body = ("RUN mkdir /data && i=0 && while [ $i -lt " + str(files) + " ]; do "
            "head -c 16777216 /dev/urandom > /data/f$i; i=$((i+1)); done\n")
    root = bench.generated_project("art", {"big": (bench.base, body)},
                                   extra={"big": ', command = "sleep 3600"'})
    print(f"setup: building a {files * 16} MiB image and starting its container with dockyard", flush=True)
    checked(measure(bench.inv_cmd("big.build", "--quiet"), root, timeout=1800), "setup inv big.build")
    checked(measure(bench.inv_cmd("big.run", "--detach", "--no-build"), root), "setup inv big.run --detach")
    return root


def export_1g(bench: Bench, row: Row) -> None:
    archive_case(bench, row, "export")


def save_1g(bench: Bench, row: Row) -> None:
    archive_case(bench, row, "save")


def archive_case(bench: Bench, row: Row, task: str) -> None:
    """``inv big.<task> -o X --force`` against ``docker <task> -o Y`` of the same container or image."""
    bench.main_project()
    names = bench.task_names(bench.main)
    if f"httpd.{task}" not in names:
        row.mark_not_available(f"`inv --list` shows no httpd.{task} task yet")
        return
    root = big_project(bench)
    project = f"{bench.prefix}-art"
    out_dir = bench.work / "tars"
    out_dir.mkdir(exist_ok=True)
    mine, theirs = out_dir / "dockyard.tar", out_dir / "baseline.tar"
    if task == "export":
        cli = ["docker", "export", "-o", str(theirs), f"{project}-big"]
    else:
        cli = ["docker", "save", "-o", str(theirs), bench.tag("big", project)]
    sizes: dict[str, int] = {}

    def side(argv: list[str], path: Path, what: str) -> Sample:
        path.unlink(missing_ok=True)
        s = checked(measure(argv, root, timeout=1800), what)
        size = path.stat().st_size if path.exists() else 0
        if size < bench.args.size_mib * (1 << 20) * 0.9:
            raise CaseError(f"{what} wrote {size} bytes to {path}, expected about {bench.args.size_mib} MiB")
        sizes[what] = size
        path.unlink()
        return s

    alternate(row, bench.args.rounds,
              lambda i: side(bench.inv_cmd(f"big.{task}", "-o", str(mine), "--force"), mine, f"inv big.{task}"),
              lambda i: side(cli, theirs, " ".join(cli[:2])), bench.bare_invoke)
    mib = {k: v / (1 << 20) for k, v in sizes.items()}
    d, b = row.median(row.dockyard), row.median(row.baseline)
    rates = [f"{w}: {m:.0f} MiB" for w, m in mib.items()]
    row.note = (f"{', '.join(rates)}; throughput dockyard {mib[f'inv big.{task}'] / d:.0f} MiB/s vs "
                f"baseline {mib[' '.join(cli[:2])] / b:.0f} MiB/s")

