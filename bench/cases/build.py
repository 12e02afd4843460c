"""Build cases: ``inv httpd.build`` and ``inv build`` against ``docker build``.

noop-httpd (nothing changed), one-file-change (one file of the httpd image changed),
noop-50 (a 50-image tree, all up to date, then one leaf changed), parallel-8 (8 independent
images, ``--jobs 4`` against one ``docker build`` after another).
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Callable

from bench.harness import CaseError, Row, Sample, alternate, checked, measure
from bench.workspace import Bench


def noop_httpd(bench: Bench, row: Row) -> None:
    root = bench.main_project()
    context = bench.cli / "images/busybox-httpd"
    script = str(bench.work / "build-httpd.sh")

    def dockyard(i: int) -> Sample:
        s = checked(measure(bench.inv_cmd("httpd.build"), root), "inv httpd.build")
        if "building " in s.output:
            row.note = "dockyard rebuilt something in a no-op round (see output)"
        return s

    def baseline(i: int) -> Sample:
        s = checked(measure(["bash", script], context), "build-httpd.sh")
        bench.record(bench.tag("httpd", bench.cli_name))
        return s

    alternate(row, bench.args.rounds, dockyard, baseline)
    row.note = row.note or "baseline rebuilds after its rmi (the tutorial's script): not a no-op"


def append_line(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(f"<!-- {text} -->\n")


def one_file_change(bench: Bench, row: Row) -> None:
    root = bench.main_project()
    token = secrets.token_hex(4)

    def dockyard(i: int) -> Sample:
        append_line(root / "images/busybox-httpd/index.html", f"dockyard round {i} {token}")
        s = checked(measure(bench.inv_cmd("httpd.build"), root), "inv httpd.build")
        if f"built {bench.tag('httpd')}" not in s.output:
            raise CaseError(f"inv httpd.build did not rebuild after a change:\n{s.output[-800:]}")
        return s

    def baseline(i: int) -> Sample:
        append_line(bench.cli / "images/busybox-httpd/index.html", f"baseline round {i} {token}")
        s = checked(measure(["docker", "build", "-t", bench.tag("httpd", bench.cli_name), "images/busybox-httpd"],
                            bench.cli), "docker build")
        bench.record(bench.tag("httpd", bench.cli_name))
        return s

    alternate(row, bench.args.rounds, dockyard, baseline)
    row.note = "index.html changed on both sides every round (each side's own text)"



def tree_images(parent_of: Callable[[str], str]) -> dict[str, tuple[str, str]]:
    """5 trees of 10: a chain of depth 5 (n0..n4) and branches off it (n5..n9)."""
    shape = {"n0": None, "n1": "n0", "n2": "n1", "n3": "n2", "n4": "n3",
             "n5": "n0", "n6": "n0", "n7": "n1", "n8": "n2", "n9": "n5"}
    images = {}
    for t in range(5):
        for node, parent in shape.items():
            key = f"t{t}{node}"
            images[key] = (parent_of(f"t{t}{parent}" if parent else ""),
                           f"COPY payload.txt /payload/{key}.txt\n")
    return images


def noop_50(bench: Bench, row: Row) -> None:
    bench.main_project()
    project = f"{bench.prefix}-t50"
    cli_project = f"{bench.prefix}-t50cli"
    images = tree_images(lambda key: bench.tag(key, project) if key else bench.base)
    root = bench.generated_project("t50", images)
    for key in images:
        (root / "images" / key / "payload.txt").write_text(f"{key} dockyard\n")
    # The baseline: the same tree under its own tags, as a shell script of docker builds.
    cli_root = bench.work / "t50cli"
    lines = ["set -e"]
    cli_images = tree_images(lambda key: bench.tag(key, cli_project) if key else bench.tag("busybox", bench.cli_name))
    for key, (parent, body) in cli_images.items():
        directory = cli_root / key
        directory.mkdir(parents=True)
        (directory / "Dockerfile").write_text(f"FROM {parent}\n{body}")
        (directory / "payload.txt").write_text(f"{key} baseline\n")
        lines.append(f"docker build -t {bench.tag(key, cli_project)} {key}")
    script = cli_root / "build-all.sh"
    script.write_text("\n".join(lines) + "\n")
    print("setup: building the 50-image tree with dockyard (--jobs 2) and with the docker CLI", flush=True)
    checked(measure(bench.inv_cmd("build", "--jobs", "2", "--quiet"), root), "setup inv build (t50)")
    checked(measure(["bash", str(script)], cli_root), "setup build-all.sh (t50)")
    bench.record(*[bench.tag(k, cli_project) for k in images])

    def dockyard(i: int) -> Sample:
        s = checked(measure(bench.inv_cmd("build"), root), "inv build (t50)")
        if "50 up to date" not in s.output:
            raise CaseError(f"inv build was not a no-op:\n{s.output[-800:]}")
        return s

    alternate(row, bench.args.rounds, dockyard,
              lambda i: checked(measure(["bash", str(script)], cli_root), "build-all.sh (t50)"))
    row.note = "baseline: 50 cached `docker build` in dependency order (bash script)"

    # One leaf changes: only it may be rebuilt.
    check_row = Row("noop-50 leaf rebuild (check)")
    row.extra.append(check_row)
    leaf = "t2n4"
    (root / "images" / leaf / "payload.txt").write_text(f"{leaf} dockyard changed {secrets.token_hex(4)}\n")
    s = checked(measure(bench.inv_cmd("build"), root), "inv build after a leaf change")
    check_row.dockyard.append(s)
    statuses = dict(re.findall(r"^  (\S+)\s+(built|up to date|failed|skipped)\s+[\d.]+s", s.output, re.MULTILINE))
    built = sorted(k for k, v in statuses.items() if v == "built")
    ok = built == [leaf] and len(statuses) == 50
    check_row.status = "pass" if ok else "**FAIL**"
    check_row.note = (f"changed {leaf} (end of a depth-5 chain); `inv build` rebuilt {built or 'nothing'}, "
                      f"{sum(v == 'up to date' for v in statuses.values())} up to date, in {s.seconds:.2f} s")


P8_BODY = ("COPY round.txt /round.txt\n"
           "RUN dd if=/dev/urandom of=/x bs=1M count=20 2>/dev/null && sha256sum /x > /x.sum\n")


def parallel_8(bench: Bench, row: Row) -> None:
    bench.main_project()
    keys = [f"w{i}" for i in range(8)]
    root = bench.generated_project("p8", {key: (bench.base, P8_BODY) for key in keys})
    cli_project = f"{bench.prefix}-p8cli"
    cli_root = bench.work / "p8cli"
    for key in keys:
        (cli_root / key).mkdir(parents=True)
        (cli_root / key / "Dockerfile").write_text(f"FROM {bench.tag('busybox', bench.cli_name)}\n{P8_BODY}")
    script = cli_root / "build-all.sh"
    script.write_text("set -e\n" + "".join(f"docker build -t {bench.tag(k, cli_project)} {k}\n" for k in keys))
    token = secrets.token_hex(4)

    def dockyard(i: int) -> Sample:
        for key in keys:
            (root / "images" / key / "round.txt").write_text(f"dockyard {key} {i} {token}\n")
        s = checked(measure(bench.inv_cmd("build", "--jobs", "4"), root), "inv build --jobs 4")
        if "build summary: 8 built" not in s.output:
            raise CaseError(f"inv build --jobs 4 did not build all 8:\n{s.output[-800:]}")
        return s

    def baseline(i: int) -> Sample:
        for key in keys:
            (cli_root / key / "round.txt").write_text(f"baseline {key} {i} {token}\n")
        s = checked(measure(["bash", str(script)], cli_root), "8 x docker build")
        bench.record(*[bench.tag(k, cli_project) for k in keys])
        return s

    alternate(row, bench.args.rounds, dockyard, baseline)
    row.note = f"{os.cpu_count()} cores; each image: a changed file + RUN writing 20 MiB of urandom"

