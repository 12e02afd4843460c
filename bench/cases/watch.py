"""Watch cases: the time from a file's write to its new content being served.

dockyard's side is a running `inv httpd.run --watch` (started once, untimed): each round
appends a line to images/busybox-httpd/index.html and polls the page until it has that line.
The baseline is the loop a person runs by hand with the docker CLI, as one script: the same
edit, `docker build`, `docker rm -f`, `docker run`, then a poll until the page has the line.

watch-sync: index.html is synced (the example's `[images.httpd.watch]`): copied into the
running container. watch-rebuild: the same edit with the sync table left out of containers.toml,
so each round rebuilds httpd and replaces its container.
"""

from __future__ import annotations

import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.harness import CaseError, Row, Sample, alternate, checked, docker, measure
from bench.workspace import Bench

# The baseline's poll, its own python process (stdlib only, hence -S): until the page has the line.
POLL_FOR = """
import sys, time, urllib.request
url, line, deadline = sys.argv[1], sys.argv[2], time.monotonic() + 60
while True:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if line in r.read().decode():
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("the page never showed " + line)
    time.sleep(0.01)
"""

CLI_LOOP_SH = """set -e
echo "$1" >> images/busybox-httpd/index.html
docker build -q -t {tag} images/busybox-httpd >/dev/null
docker rm -f {name} >/dev/null 2>&1 || true
docker run -d --name {name} --init -p 127.0.0.1:{port}:{port} -e HTTPD_PORT={port} {tag} >/dev/null
{python} -S -c '{poll}' http://127.0.0.1:{port}/ "$1"
"""


def _served(url: str, line: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if line in response.read().decode():
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise CaseError(f"{url} never showed {line!r}")
        time.sleep(0.01)


def watch_sync(bench: Bench, row: Row) -> None:
    _write_to_served(bench, row, bench.main_project(), "synced into the running container")


def watch_rebuild(bench: Bench, row: Row) -> None:
    main = bench.main_project()
    root = bench.work / "watch-rebuild"  # the same project (names, images), without its sync table
    if not root.exists():
        import shutil

        shutil.copytree(main, root)
        toml = (root / "containers.toml").read_text()
        (root / "containers.toml").write_text(re.sub(r"\[images\.httpd\.watch\]\nsync = [^\n]*\n", "", toml))
    _write_to_served(bench, row, root, "httpd rebuilt and replaced")


def _write_to_served(bench: Bench, row: Row, root: Path, how: str) -> None:
    token = secrets.token_hex(4)
    name, cli_name = f"{bench.name}-httpd", f"{bench.cli_name}-httpd"
    script = bench.work / "cli-loop.sh"
    script.write_text(CLI_LOOP_SH.format(tag=bench.tag("httpd", bench.cli_name), name=cli_name, port=bench.cli_port,
                                         python=sys.executable, poll=POLL_FOR))
    log = (bench.work / f"{row.case}.log").open("w")
    watch = subprocess.Popen(bench.inv_cmd("httpd.run", "--watch", "--json"), cwd=root, stdout=log,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{bench.port}/"
    try:
        _served(url, "</html>", within=120)
        time.sleep(0.5)  # the watcher is set up once the first turn has said so

        def dockyard(i: int) -> Sample:
            line = f"<!-- dockyard {row.case} round {i} {token} -->"
            started = time.perf_counter()
            with (root / "images/busybox-httpd/index.html").open("a") as f:
                f.write(line + "\n")
            _served(url, line)
            seconds = time.perf_counter() - started
            if watch.poll() is not None:
                raise CaseError(f"the watch exited {watch.returncode}: see {log.name}")
            time.sleep(0.3)  # the turn's last steps (the old container's removal) are not the next round's
            return Sample(seconds, 0, 0, "")

        def baseline(i: int) -> Sample:
            line = f"<!-- baseline {row.case} round {i} {token} -->"
            return checked(measure(["bash", str(script), line], bench.cli), "the docker CLI loop")

        alternate(row, bench.args.rounds, dockyard, baseline, bench.bare_invoke)
        turns = (bench.work / f"{row.case}.log").read_text().count('"changed"')
        row.note = (f"write of index.html to the page showing it: {how} by a running `inv httpd.run --watch` "
                    f"({turns} turns in its log); baseline: the edit, `docker build -q`, "
                    "`docker rm -f`, `docker run -d`, a python -S poll")
    finally:
        watch.send_signal(signal.SIGINT)
        try:
            watch.wait(timeout=30)
        except subprocess.TimeoutExpired:
            watch.kill()
        log.close()
        docker("rm", "-f", "-v", name, cli_name, check=False)
