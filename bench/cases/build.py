"""Build cases: ``inv httpd.build`` and ``inv build`` against ``docker build``.

noop-httpd (nothing changed), one-file-change (one file of the httpd image changed, against
the classic ``docker build``), one-file-change-buildkit (the same against Debian's 20.10 CLI
with ``DOCKER_BUILDKIT=1``), noop-big-context (nothing changed in a --context-mib context of
20,000 files), noop-50 and noop-500 (a tree of 50 or 500 images, all up to date, then one leaf
changed), parallel-8 (8 independent images, ``--jobs 4`` against one ``docker build`` after
another).
"""

from __future__ import annotations

import os
import re
import secrets
import time
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

    alternate(row, bench.args.rounds, dockyard, baseline, bench.bare_invoke)
    row.note = row.note or "baseline rebuilds after its rmi (the tutorial's script): not a no-op"


def append_line(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(f"<!-- {text} -->\n")


def one_file_change(bench: Bench, row: Row) -> None:
    """Against the classic builder: ``docker build`` (the CLI on PATH, without buildx)."""
    one_file_change_against(bench, row, ["docker", "build"], bench.tag("httpd", bench.cli_name), {})


# Debian's 20.10 CLI builds with BuildKit itself; the newer CLI earlier on PATH wants buildx.
BUILDKIT_CLI = Path("/usr/bin/docker")


def one_file_change_buildkit(bench: Bench, row: Row) -> None:
    """Against ``DOCKER_BUILDKIT=1 /usr/bin/docker build``, under a tag of its own."""
    if not BUILDKIT_CLI.exists():
        raise CaseError(f"{BUILDKIT_CLI} (Debian's docker.io 20.10 CLI) is not installed")
    one_file_change_against(bench, row, [str(BUILDKIT_CLI), "build"], bench.tag("httpd-buildkit", bench.cli_name),
                            {"DOCKER_BUILDKIT": "1"})


def one_file_change_against(bench: Bench, row: Row, build: list[str], cli_tag: str, env: dict[str, str]) -> None:
    root = bench.main_project()
    token = secrets.token_hex(4)
    builders: set[str] = set()

    def dockyard(i: int) -> Sample:
        append_line(root / "images/busybox-httpd/index.html", f"dockyard {row.case} round {i} {token}")
        s = checked(measure(bench.inv_cmd("httpd.build"), root), "inv httpd.build")
        if f"built {bench.tag('httpd')}" not in s.output:
            raise CaseError(f"inv httpd.build did not rebuild after a change:\n{s.output[-800:]}")
        builders.add("BuildKit" if "with BuildKit" in s.output else "the classic builder")
        return s

    def baseline(i: int) -> Sample:
        append_line(bench.cli / "images/busybox-httpd/index.html", f"baseline {row.case} round {i} {token}")
        s = checked(measure([*build, "-t", cli_tag, "images/busybox-httpd"], bench.cli, env=env), " ".join(build))
        bench.record(cli_tag)
        return s

    alternate(row, bench.args.rounds, dockyard, baseline, bench.bare_invoke)
    row.note = (f"index.html changed on both sides every round (each side's own text); dockyard built with "
                f"{' and '.join(sorted(builders))}; baseline `{' '.join(f'{k}={v}' for k, v in env.items())}"
                f"{' ' if env else ''}{' '.join(build)}`")


CONTEXT_FILES = 20_000


def write_context(directory: Path, total_bytes: int, files: int) -> None:
    """``files`` files of ``total_bytes`` in all, 200 to a directory, each with its own content."""
    pool = secrets.token_bytes(4 << 20)  # slices of one random pool: quick to write, not all alike
    size = total_bytes // files
    for n in range(files):
        sub = directory / f"d{n // 200:03d}"
        if n % 200 == 0:
            sub.mkdir(parents=True)
        start = (n * 7919) % (len(pool) - size) if size < len(pool) else 0
        (sub / f"f{n:05d}").write_bytes(f"{n}\n".encode() + pool[start:start + size])


def noop_big_context(bench: Bench, row: Row) -> None:
    """A no-op `inv big.build` over a context of --context-mib in 20,000 files."""
    bench.main_project()
    mib = bench.args.context_mib
    root = bench.generated_project("ctx", {"big": (bench.base, "COPY files /files\n")})
    context = root / "images/big"
    clock = time.monotonic()
    write_context(context / "files", mib << 20, CONTEXT_FILES)
    made = time.monotonic() - clock
    print(f"setup: wrote {mib} MiB in {CONTEXT_FILES} files in {made:.1f} s; building it with dockyard "
          "and with the docker CLI", flush=True)
    cli_tag = bench.tag("big-context", bench.cli_name)
    # The tutorial's build script without its `docker rmi`, which would make it a full rebuild.
    script = bench.work / "build-big.sh"
    script.write_text(f'set -e\ntag={cli_tag}\ndocker build -f Dockerfile -t "$tag" .\n')
    first = checked(measure(bench.inv_cmd("big.build", "--quiet"), root, timeout=1800), "setup inv big.build")
    first_cli = checked(measure(["bash", str(script)], context, timeout=1800), "setup build-big.sh")
    bench.record(cli_tag)

    def dockyard(i: int) -> Sample:
        s = checked(measure(bench.inv_cmd("big.build"), root, timeout=1800), "inv big.build")
        if "up to date" not in s.output:
            raise CaseError(f"inv big.build was not a no-op:\n{s.output[-800:]}")
        return s

    def baseline(i: int) -> Sample:
        s = checked(measure(["bash", str(script)], context, timeout=1800), "build-big.sh")
        bench.record(cli_tag)
        return s

    alternate(row, bench.args.rounds, dockyard, baseline, bench.bare_invoke)
    row.note = (f"context of {mib} MiB in {CONTEXT_FILES} files (written in {made:.1f} s; first builds: dockyard "
                f"{first.seconds:.1f} s, docker CLI {first_cli.seconds:.1f} s); baseline: the tutorial's build "
                "script without its rmi, `docker build` of the unchanged context (the classic builder sends it all)")


def tree_images(parent_of: Callable[[str], str], trees: int) -> dict[str, tuple[str, str]]:
    """``trees`` trees of 10: a chain of depth 5 (n0..n4) and branches off it (n5..n9)."""
    shape = {"n0": None, "n1": "n0", "n2": "n1", "n3": "n2", "n4": "n3",
             "n5": "n0", "n6": "n0", "n7": "n1", "n8": "n2", "n9": "n5"}
    images = {}
    for t in range(trees):
        for node, parent in shape.items():
            key = f"t{t}{node}"
            images[key] = (parent_of(f"t{t}{parent}" if parent else ""),
                           f"COPY payload.txt /payload/{key}.txt\n")
    return images


def noop_50(bench: Bench, row: Row) -> None:
    noop_tree(bench, row, trees=5)


def noop_500(bench: Bench, row: Row) -> None:
    noop_tree(bench, row, trees=50)


def noop_tree(bench: Bench, row: Row, trees: int) -> None:
    """A no-op `inv build` of ``trees`` x 10 images against as many cached `docker build`."""
    bench.main_project()
    count = trees * 10
    suffix = f"t{count}"
    project = f"{bench.prefix}-{suffix}"
    cli_project = f"{bench.prefix}-{suffix}cli"
    images = tree_images(lambda key: bench.tag(key, project) if key else bench.base, trees)
    root = bench.generated_project(suffix, images)
    for key in images:
        (root / "images" / key / "payload.txt").write_text(f"{key} dockyard\n")
    # The baseline: the same tree under its own tags, as a shell script of docker builds.
    cli_root = bench.work / f"{suffix}cli"
    lines = ["set -e"]
    cli_images = tree_images(lambda key: bench.tag(key, cli_project) if key else bench.tag("busybox", bench.cli_name),
                             trees)
    for key, (parent, body) in cli_images.items():
        directory = cli_root / key
        directory.mkdir(parents=True)
        (directory / "Dockerfile").write_text(f"FROM {parent}\n{body}")
        (directory / "payload.txt").write_text(f"{key} baseline\n")
        lines.append(f"docker build -t {bench.tag(key, cli_project)} {key}")
    script = cli_root / "build-all.sh"
    script.write_text("\n".join(lines) + "\n")
    print(f"setup: building the {count}-image tree with dockyard (--jobs 2) and with the docker CLI", flush=True)
    checked(measure(bench.inv_cmd("build", "--jobs", "2", "--quiet"), root, timeout=3600), f"setup inv build ({suffix})")
    checked(measure(["bash", str(script)], cli_root, timeout=3600), f"setup build-all.sh ({suffix})")
    bench.record(*[bench.tag(k, cli_project) for k in images])

    def dockyard(i: int) -> Sample:
        s = checked(measure(bench.inv_cmd("build"), root), f"inv build ({suffix})")
        if f"{count} up to date" not in s.output:
            raise CaseError(f"inv build was not a no-op:\n{s.output[-800:]}")
        return s

    alternate(row, bench.args.rounds, dockyard,
              lambda i: checked(measure(["bash", str(script)], cli_root, timeout=3600), f"build-all.sh ({suffix})"),
              bench.bare_invoke)
    row.note = f"baseline: {count} cached `docker build` in dependency order (bash script)"

    # One leaf changes: only it may be rebuilt.
    check_row = Row(f"{row.case} leaf rebuild (check)")
    row.extra.append(check_row)
    leaf = "t2n4"
    (root / "images" / leaf / "payload.txt").write_text(f"{leaf} dockyard changed {secrets.token_hex(4)}\n")
    s = checked(measure(bench.inv_cmd("build"), root), "inv build after a leaf change")
    check_row.dockyard.append(s)
    statuses = dict(re.findall(r"^  (\S+)\s+(built|up to date|failed|skipped)\s+[\d.]+s", s.output, re.MULTILINE))
    built = sorted(k for k, v in statuses.items() if v == "built")
    ok = built == [leaf] and len(statuses) == count
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

    alternate(row, bench.args.rounds, dockyard, baseline, bench.bare_invoke)
    row.note = f"{os.cpu_count()} cores; each image: a changed file + RUN writing 20 MiB of urandom"

