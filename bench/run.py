"""dockyard's benchmark: the real ``inv`` program against the plain docker CLI, on the real engine.

Usage (with the project's venv python; the engine must be running, no registry is needed)::

    python bench/run.py                                  # every case, 5 measured rounds each
    python bench/run.py --rounds 3 --size-mib 256        # a quick check
    python bench/run.py --cases noop-httpd,list --out /tmp/bench.md

Options:
    --rounds N      measured rounds per side (default 5). Each side also runs one warm-up
                    round first, which is shown in the samples but left out of the medians.
                    clean-200 uses at most 3 rounds (each round needs 200 fresh containers);
                    list uses 4 x N (a run takes ~0.3 s, so noise weighs more).
    --cases a,b     run only these cases (default: all, in the order below).
    --out PATH      the markdown table (default bench/results/latest.md; git-ignored).
    --size-mib N    size of the image for export-1g and save-1g (default 1024).

Cases (dockyard vs baseline; target is the ratio of median wall times dockyard/baseline):
    noop-httpd       ``inv httpd.build`` with everything up to date vs the tutorial's
                     build-httpd.sh (``docker rmi $tag; docker build -t $tag .``).      <= 0.2
    one-file-change  one file of images/busybox-httpd changed (different content every round,
                     on both sides): ``inv httpd.build`` vs ``docker build -t TAG dir``.   <= 1.1
    run-until-page   ``inv httpd.run`` (it waits for readiness) vs run-httpd.sh followed by
                     a python poll loop until /cgi-bin/hello-world answers 200.          <= 1.2
    list             ``inv --list`` in the project vs ``inv --list`` over a tasks.py with one
                     no-op task (invoke exits 1 on a tasks.py without tasks).            <= 1.3
    noop-50          50 images in chains (depth 5) and branches, all built: ``inv build`` vs
                     50 cached ``docker build`` in dependency order.                     <= 0.1
                     Then one leaf changes: ``inv build`` must rebuild that leaf only (check row).
    parallel-8       8 independent images, each with a changed file every round and a RUN that
                     writes 20 MiB: ``inv build --jobs 4`` vs 8 ``docker build`` one after another
                     (no target: on 2 cores the daemon may be the limit).
    export-1g        ``inv big.export -o X --force`` vs ``docker export -o Y`` of dockyard's own
                     container of a --size-mib image.             time ratio <= 1.11, RSS < 100 MiB
    save-1g          ``inv big.save -o X --force`` vs ``docker save -o Y TAG``.   same targets
    clean-200        200 stopped containers of the project each round: ``inv clean --yes`` vs
                     ``docker rm $(docker ps -aq --filter label=dockyard.owner=P)``.     <= 1.0
    The artifact cases run only when ``inv --list`` shows the tasks; else "not available".

How it measures: every command is a child process (its output goes to a file); wall time is
taken around it, and dockyard's peak RSS is the child's own ``ru_maxrss`` from ``os.wait4``.
Rounds alternate dockyard, baseline, dockyard, baseline, ... in this one process.

Everything it makes is named ``dybench-<random>...`` (projects, tags, containers) and lives
in a temporary directory; containers, images and files are removed at the end, also after a
failure, Ctrl-C or SIGTERM. A setup failure fails that case only; the others still run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from example_project import ISOLATED_TOML  # noqa: E402 - the tests' unique-names project
DEFAULT_OUT = REPO / "bench" / "results" / "latest.md"
CASES = ["noop-httpd", "one-file-change", "run-until-page", "list", "noop-50", "parallel-8",
         "export-1g", "save-1g", "clean-200"]
ARTIFACT_RATIO, ARTIFACT_RSS_MIB = 1 / 0.9, 100.0


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


def measure(argv: list[str], cwd: Path, timeout: float = 900) -> Sample:
    """Run one command as its own process group; wall time, its peak RSS, exit code, output."""
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        # Own session: Ctrl-C reaches only us, and we kill the child's whole group ourselves.
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def inv_argv() -> list[str]:
    """The real `inv` program of this venv, as a user runs it."""
    script = Path(sys.executable).parent / "inv"
    return [str(script)] if script.exists() else [sys.executable, "-m", "invoke"]


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


# The baseline's readiness loop, run as its own python process (stdlib only, hence -S).
POLL = """
import sys, time, urllib.request
url, deadline = sys.argv[1], time.monotonic() + 30
while True:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("no answer from " + url)
    time.sleep(0.1)
"""


# --- results --------------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    dockyard: list[Sample] = field(default_factory=list)
    baseline: list[Sample] = field(default_factory=list)
    target: float | None = None
    rss_limit_mib: float | None = None
    status: str = ""  # "" measured; otherwise "failed: ...", "not available: ...", or a check result
    note: str = ""
    extra: list[Row] = field(default_factory=list)  # rows a case adds after its own (checks)

    def median(self, samples: list[Sample]) -> float | None:
        measured = samples[1:] if len(samples) > 1 else samples  # the first is a warm-up
        return statistics.median(s.seconds for s in measured) if measured else None

    @property
    def ratio(self) -> float | None:
        d, b = self.median(self.dockyard), self.median(self.baseline)
        return d / b if d is not None and b else None

    @property
    def peak_rss_mib(self) -> float | None:
        return max(s.maxrss_kib for s in self.dockyard) / 1024 if self.dockyard else None

    def met(self) -> str:
        if self.status:
            return self.status
        if self.target is None or self.ratio is None:
            return "n/a"
        ok = self.ratio <= self.target
        if self.rss_limit_mib is not None and self.peak_rss_mib is not None:
            ok = ok and self.peak_rss_mib < self.rss_limit_mib
        return "yes" if ok else "**NO**"

    def cells(self) -> list[str]:
        def secs(value: float | None) -> str:
            return f"{value:.3f} s" if value is not None else "-"

        target = "-" if self.target is None else f"<= {self.target:.2f}"
        if self.rss_limit_mib is not None:
            target += f", RSS < {self.rss_limit_mib:g} MiB"
        rss = f"{self.peak_rss_mib:.1f} MiB" if self.peak_rss_mib is not None else "-"
        ratio = f"{self.ratio:.2f}" if self.ratio is not None else "-"
        cells = [self.case, secs(self.median(self.dockyard)), secs(self.median(self.baseline)), ratio,
                 target, self.met(), rss]
        return [cell.replace("|", "\\|") for cell in cells]


def alternate(row: Row, rounds: int, dockyard_round: Callable[[int], Sample],
              baseline_round: Callable[[int], Sample]) -> None:
    """Warm-up plus ``rounds`` rounds: dockyard, baseline, dockyard, baseline, ..."""
    for i in range(rounds + 1):
        row.dockyard.append(dockyard_round(i))
        row.baseline.append(baseline_round(i))
        d, b = row.dockyard[-1], row.baseline[-1]
        label = "warm-up" if i == 0 else f"round {i}"
        print(f"  {row.case} {label}: dockyard {d.seconds:.3f}s ({d.maxrss_kib / 1024:.0f} MiB), "
              f"baseline {b.seconds:.3f}s", flush=True)


# --- the bench: its names, projects and cleanup -------------------------------------------------


BUILD_HTTPD_SH = """set -e
tag={tag}
name=$(basename "$tag")
docker rmi "$tag" >&/dev/null || true
docker build -f Dockerfile -t "$tag" .
"""

RUN_HTTPD_SH = """set -e
tag={tag}
name={name}
port={port}
docker rm -f "$name" >&/dev/null || true
id=$(docker run -d --name="$name" -p "127.0.0.1:$port:$port" -e HTTPD_PORT="$port" "$tag")
echo "
Container id: $id

Point your browser to: http://localhost:$port

Stop with: docker stop $name
"
"""


def rewrite_from(dockerfile: Path, old: str, new: str) -> None:
    text = re.sub(rf"^FROM {re.escape(old)}\b", f"FROM {new}", dockerfile.read_text(), flags=re.MULTILINE)
    dockerfile.write_text(text)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.prefix = f"dybench-{secrets.token_hex(4)}"
        self.work = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        self.inv = inv_argv()
        self.projects: list[str] = []  # dockyard project names we made
        self.image_ids: set[str] = set()  # images the baseline built (they may be dangling later)
        self.main: Path | None = None
        self.cli: Path | None = None
        self.port = free_port()
        self.cli_port = free_port()
        self.base_id: str | None = None
        self.names_cache: dict[Path, set[str]] = {}

    # names
    @property
    def name(self) -> str:
        return self.prefix

    def tag(self, key: str, project: str | None = None) -> str:
        return f"{project or self.prefix}/{key}:latest"

    @property
    def base(self) -> str:
        return self.tag("busybox")

    @property
    def cli_name(self) -> str:
        return f"{self.prefix}-cli"

    def inv_cmd(self, *args: str) -> list[str]:
        return [*self.inv, *args]

    def record(self, *tags: str) -> None:
        """Remember the baseline's images by id: the next build may leave them dangling."""
        out = docker("image", "inspect", "--format", "{{.Id}}", *tags, check=False)
        self.image_ids.update(line.strip() for line in out.splitlines() if line.strip())

    def task_names(self, project: Path) -> set[str]:
        if project not in self.names_cache:
            out = run(self.inv_cmd("--list"), cwd=project)
            self.names_cache[project] = {line.split()[0] for line in out.splitlines()
                                         if line.startswith("  ") and line.strip()}
        return self.names_cache[project]

    # the example project, and the baseline's copy of it
    def main_project(self) -> Path:
        """The example project with our names, built; the CLI copy with the same base, built."""
        if self.main is not None:
            return self.main
        root = self.work / "main"
        shutil.copytree(REPO / "images", root / "images")
        shutil.copy(REPO / "tasks.py", root / "tasks.py")
        rewrite_from(root / "images/my-app/Dockerfile", "busybox", self.base)
        rewrite_from(root / "images/busybox-httpd/Dockerfile", "my-app", self.tag("my-app"))
        (root / "containers.toml").write_text(ISOLATED_TOML.format(name=self.name, port=self.port))
        self.projects.append(self.name)
        print(f"setup: building the example project {self.name} with dockyard", flush=True)
        checked(measure(self.inv_cmd("build"), root), f"setup `inv build` in {root}")
        self.base_id = docker("image", "inspect", "--format", "{{.Id}}", self.base).strip()

        cli = self.work / "cli"
        shutil.copytree(REPO / "images", cli / "images")
        rewrite_from(cli / "images/my-app/Dockerfile", "busybox", self.tag("busybox", self.cli_name))
        rewrite_from(cli / "images/busybox-httpd/Dockerfile", "my-app", self.tag("my-app", self.cli_name))
        # The baseline's Dockerfiles name the base by its own tag: the same image, tagged again.
        docker("tag", self.base, self.tag("busybox", self.cli_name))
        print("setup: building the baseline's copy with the docker CLI", flush=True)
        docker("build", "-t", self.tag("my-app", self.cli_name), str(cli / "images/my-app"))
        docker("build", "-t", self.tag("httpd", self.cli_name), str(cli / "images/busybox-httpd"))
        self.record(self.tag("my-app", self.cli_name), self.tag("httpd", self.cli_name))
        (self.work / "build-httpd.sh").write_text(BUILD_HTTPD_SH.format(tag=self.tag("httpd", self.cli_name)))
        (self.work / "run-httpd.sh").write_text(RUN_HTTPD_SH.format(
            tag=self.tag("httpd", self.cli_name), name=f"{self.cli_name}-httpd", port=self.cli_port))
        self.main, self.cli = root, cli
        return root

    def generated_project(self, suffix: str, images: dict[str, tuple[str, str]],
                          extra: dict[str, str] | None = None) -> Path:
        """A dockyard project ``<prefix>-<suffix>``: {key: (FROM ref, Dockerfile body)}."""
        name = f"{self.prefix}-{suffix}"
        root = self.work / suffix
        (root / "images").mkdir(parents=True)
        shutil.copy(REPO / "tasks.py", root / "tasks.py")
        toml = [f'[project]\nname = "{name}"\n']
        for key, (parent, body) in images.items():
            directory = root / "images" / key
            directory.mkdir()
            (directory / "Dockerfile").write_text(f"FROM {parent}\n{body}")
            toml.append(f'[images.{key}]\ntag = "{name}/{key}:latest"\ndir = "images/{key}"\n'
                        f'run = {{ name = "{name}-{key}"{(extra or {}).get(key, "")} }}\n')
        (root / "containers.toml").write_text("\n".join(toml))
        self.projects.append(name)
        return root

    # cleanup
    def cleanup(self) -> None:
        """Remove every container and image we made, then the temporary directory."""
        # Finish cleaning even on a second Ctrl-C or SIGTERM.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._remove_containers()
            self._remove_images()
        except Exception as e:  # noqa: BLE001 - report, and still remove the files
            print(f"cleanup: {e}", file=sys.stderr)
        finally:
            shutil.rmtree(self.work, ignore_errors=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _remove_containers(self) -> None:
        ids: set[str] = set()
        filters = [f"name={self.prefix}"] + [f"label=dockyard.owner={p}" for p in self.projects]
        if self.base_id:
            filters.append(f"ancestor={self.base_id}")
        for flt in filters:
            ids.update(docker("ps", "-aq", "--no-trunc", "--filter", flt, check=False).split())
        for chunk in _chunks(sorted(ids), 100):
            docker("rm", "-f", *chunk, check=False)

    def _remove_images(self) -> None:
        ids = set(self.image_ids)
        for project in self.projects:
            ids.update(docker("images", "-aq", "--no-trunc", "--filter", f"label=dockyard.project={project}",
                              check=False).split())
        tags = []
        for line in docker("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}",
                           check=False).splitlines():
            ref, _, image_id = line.partition(" ")
            if ref.startswith(self.prefix):
                tags.append(ref)
                ids.add(image_id)
        parents = _parents()
        if self.base_id:  # every image built on our base is ours: the base is unique to this run
            ids.add(self.base_id)
            changed = True
            while changed:
                grown = {child for child, parent in parents.items() if parent in ids and child not in ids}
                ids |= grown
                changed = bool(grown)
        for chunk in _chunks(tags, 100):
            docker("rmi", *chunk, check=False)
        remaining = {i for i in ids if i}
        for _ in range(6):  # children before parents
            if not remaining:
                break
            depth = {i: _depth(i, parents) for i in remaining}
            for image_id in sorted(remaining, key=lambda i: -depth[i]):
                docker("rmi", "-f", image_id, check=False)
            still = set(docker("images", "-aq", "--no-trunc", check=False).split())
            remaining &= still
        if remaining:
            print(f"cleanup: could not remove {len(remaining)} images: {sorted(remaining)[:5]}", file=sys.stderr)


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _parents() -> dict[str, str]:
    """image id -> parent id, for every image (the legacy builder records parents)."""
    ids = docker("images", "-aq", "--no-trunc", check=False).split()
    parents: dict[str, str] = {}
    for chunk in _chunks(sorted(set(ids)), 200):
        out = docker("image", "inspect", "--format", "{{.Id}} {{.Parent}}", *chunk, check=False)
        for line in out.splitlines():
            image_id, _, parent = line.partition(" ")
            if parent.strip():
                parents[image_id] = parent.strip()
    return parents


def _depth(image_id: str, parents: dict[str, str]) -> int:
    depth = 0
    while image_id in parents and depth < 1000:
        image_id = parents[image_id]
        depth += 1
    return depth


# --- the cases ----------------------------------------------------------------------------------


def case_noop_httpd(bench: Bench, row: Row) -> None:
    row.target = 0.2
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


def case_one_file_change(bench: Bench, row: Row) -> None:
    row.target = 1.1
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


def case_run_until_page(bench: Bench, row: Row) -> None:
    row.target = 1.2
    root = bench.main_project()
    url = f"http://127.0.0.1:{bench.port}/cgi-bin/hello-world"
    cli_url = f"http://127.0.0.1:{bench.cli_port}/cgi-bin/hello-world"
    script = bench.work / "run-and-poll.sh"
    script.write_text(f"set -e\nbash {bench.work / 'run-httpd.sh'}\n"
                      f"{sys.executable} -S -c '{POLL}' {cli_url}\n")
    try:
        def dockyard(i: int) -> Sample:
            s = checked(measure(bench.inv_cmd("httpd.run"), root), "inv httpd.run")
            if not http_ok(url):
                raise CaseError(f"inv httpd.run returned but {url} does not answer 200")
            return s

        def baseline(i: int) -> Sample:
            s = checked(measure(["bash", str(script)], bench.work), "run-httpd.sh + poll")
            if not http_ok(cli_url):
                raise CaseError(f"run-httpd.sh + poll returned but {cli_url} does not answer 200")
            return s

        alternate(row, bench.args.rounds, dockyard, baseline)
        row.note = "both replace their running container each round; baseline = run-httpd.sh + a python -S poll loop"
    finally:
        docker("rm", "-f", f"{bench.name}-httpd", f"{bench.cli_name}-httpd", check=False)


def case_list(bench: Bench, row: Row) -> None:
    row.target = 1.3
    root = bench.main_project()
    empty = bench.work / "plain-invoke"
    empty.mkdir(exist_ok=True)
    (empty / "tasks.py").write_text("from invoke import task\n\n\n@task\ndef noop(c):\n    pass\n")
    rounds = 4 * bench.args.rounds  # ~0.3 s a run: more rounds against the noise, still quick
    alternate(row, rounds,
              lambda i: checked(measure(bench.inv_cmd("--list"), root), "inv --list"),
              lambda i: checked(measure(bench.inv_cmd("--list"), empty), "inv --list (plain)"))
    row.note = f"baseline: invoke itself over a tasks.py with one no-op task; {rounds} rounds"


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


def case_noop_50(bench: Bench, row: Row) -> None:
    row.target = 0.1
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


def case_parallel_8(bench: Bench, row: Row) -> None:
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


def big_project(bench: Bench) -> Path:
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


def artifact_case(bench: Bench, row: Row, task: str) -> None:
    bench.main_project()
    names = bench.task_names(bench.main)
    if f"httpd.{task}" not in names:
        row.status = "not available"
        row.note = f"`inv --list` shows no httpd.{task} task yet"
        return
    row.target, row.rss_limit_mib = ARTIFACT_RATIO, ARTIFACT_RSS_MIB
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
              lambda i: side(cli, theirs, " ".join(cli[:2])))
    mib = {k: v / (1 << 20) for k, v in sizes.items()}
    d, b = row.median(row.dockyard), row.median(row.baseline)
    rates = [f"{w}: {m:.0f} MiB" for w, m in mib.items()]
    row.note = (f"{', '.join(rates)}; throughput dockyard {mib[f'inv big.{task}'] / d:.0f} MiB/s vs "
                f"baseline {mib[' '.join(cli[:2])] / b:.0f} MiB/s")


def case_clean_200(bench: Bench, row: Row) -> None:
    bench.main_project()
    if "clean" not in bench.task_names(bench.main):
        row.status = "not available"
        row.note = "`inv --list` shows no clean task yet"
        return
    row.target = 1.0
    root = bench.generated_project("cl", {"httpd": (bench.base, 'CMD ["sh"]\n')})
    project = f"{bench.prefix}-cl"
    checked(measure(bench.inv_cmd("build", "--quiet"), root), "setup inv build (clean project)")
    tag = bench.tag("httpd", project)
    count = 200

    def ours() -> list[str]:
        return docker("ps", "-aq", "--filter", f"label=dockyard.owner={project}").split()

    def make_containers() -> None:
        script = (f"seq {count} | xargs -P 8 -I{{}} docker create --label dockyard.owner={project} "
                  f"--label dockyard.image=httpd {tag} >/dev/null")
        run(["bash", "-c", script])
        made = len(ours())
        if made != count:
            raise CaseError(f"setup made {made} containers, expected {count}")

    def side(argv: list[str], what: str) -> Sample:
        make_containers()
        s = checked(measure(argv, root), what)
        left = len(ours())
        if left:
            raise CaseError(f"{what} left {left} of the {count} stopped containers")
        return s

    rounds = min(bench.args.rounds, 3)
    alternate(row, rounds,
              lambda i: side(bench.inv_cmd("clean", "--yes"), "inv clean --yes"),
              lambda i: side(["bash", "-c", f"docker rm $(docker ps -aq --filter label=dockyard.owner={project})"],
                             "docker rm $(docker ps -aq ...)"))
    row.note = f"{count} created (never started) containers per round on each side; {rounds} rounds"


# --- report --------------------------------------------------------------------------------------


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
            "docker server": server or "?", "python": platform.python_version(), "libraries": libs,
            "dockyard commit": f"{commit}{' (modified)' if dirty else ''}" or "?"}


def report(rows: list[Row], args: argparse.Namespace, started: datetime.datetime, elapsed: float) -> str:
    info = machine()
    head = ["case", "dockyard median", "baseline median", "ratio", "target", "met?", "dockyard peak RSS"]
    lines = ["# dockyard benchmark", "",
             f"- date: {started.isoformat(timespec='seconds')} (took {elapsed / 60:.1f} min)",
             "- machine: " + ", ".join(f"{k} {v}" for k, v in info.items()),
             f"- command: `{' '.join(['python', 'bench/run.py', *sys.argv[1:]])}`"
             f" (rounds {args.rounds}, size {args.size_mib} MiB)", "",
             "| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    lines += ["", "Notes:",
              "- Wall times are medians of the measured rounds; rounds alternate dockyard, baseline, dockyard, ...; "
              "the first round of each side is a warm-up, left out of the medians (it is in the samples below).",
              "- ratio = dockyard median / baseline median; met? = ratio <= target (and peak RSS under its limit).",
              "- Peak RSS: ru_maxrss of the `inv` process itself (os.wait4), the highest of its runs.", ""]
    lines += [f"- {row.case}: {row.note}" for row in rows if row.note]
    lines += ["", "Samples (seconds; first = warm-up):", ""]
    for row in rows:
        if row.dockyard or row.baseline:
            d = ", ".join(f"{s.seconds:.3f}" for s in row.dockyard)
            b = ", ".join(f"{s.seconds:.3f}" for s in row.baseline)
            lines.append(f"- {row.case}: dockyard [{d}]; baseline [{b}]")
    return "\n".join(lines) + "\n"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per side (default 5), after a warm-up")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from: {', '.join(CASES)}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the markdown table (default bench/results/latest.md)")
    parser.add_argument("--size-mib", type=int, default=1024, help="image size for export-1g and save-1g (default 1024)")
    args = parser.parse_args(argv)
    wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in CASES]
    if unknown or args.rounds < 1 or args.size_mib < 16:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}" if unknown
                     else "--rounds must be >= 1 and --size-mib >= 16")
    if shutil.which("docker") is None or not docker("version", "--format", "{{.Server.Version}}", check=False).strip():
        print("the docker CLI cannot reach an engine: start dockerd first", file=sys.stderr)
        return 2

    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM cleans up like Ctrl-C
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    bench = Bench(args)
    started, clock = datetime.datetime.now().astimezone(), time.monotonic()
    print(f"dybench: prefix {bench.prefix}, work dir {bench.work}, inv {' '.join(bench.inv)}", flush=True)
    rows: list[Row] = []
    plan: list[tuple[str, Callable[[Bench, Row], None]]] = [
        ("noop-httpd", case_noop_httpd), ("one-file-change", case_one_file_change),
        ("run-until-page", case_run_until_page), ("list", case_list),
        ("noop-50", case_noop_50), ("parallel-8", case_parallel_8),
        ("export-1g", lambda b, r: artifact_case(b, r, "export")),
        ("save-1g", lambda b, r: artifact_case(b, r, "save")), ("clean-200", case_clean_200),
    ]
    interrupted = False
    try:
        for name, function in plan:
            if name not in wanted:
                continue
            row = Row(name)
            rows.append(row)
            print(f"case {name}", flush=True)
            try:
                function(bench, row)
            except CaseError as e:
                first = str(e).splitlines()[0] if str(e) else "error"
                row.status = f"**failed**: {first}"
                print(f"  {name} FAILED: {e}", flush=True)
            except Exception as e:  # noqa: BLE001 - a bug in one case must not stop the others
                row.status = f"**failed**: {type(e).__name__}: {e}"
                print(f"  {name} FAILED:", flush=True)
                traceback.print_exc()
            finally:
                rows.extend(row.extra)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: cleaning up", file=sys.stderr, flush=True)
    finally:
        print("cleanup: removing containers, images and files", flush=True)
        bench.cleanup()
    text = report(rows, args, started, time.monotonic() - clock)
    if interrupted:
        text = text.replace("# dockyard benchmark", "# dockyard benchmark (INTERRUPTED: partial)", 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print("\n" + text)
    print(f"written to {args.out}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
