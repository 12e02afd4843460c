"""Registry cases: ``inv httpd.push`` against ``docker push`` of the same image, to a registry
the case serves on loopback (Debian's docker-registry; the engine trusts loopback registries
without TLS).

push: every round first changes one file of the httpd image on both sides and rebuilds it
(untimed), so one layer is new and the others are already in the registry; then the push is
timed.

Where dockyard's time goes (measured in-process, 2026-11-30): the push itself, from the tag
request to the engine's last message, takes about what `docker push` takes; both push the
same layers (the build's two new ones; the others are already there), and dockyard adds one
request, the tag, which the baseline makes untimed. The rest is start-up: Python and Invoke
(the `list` case's baseline alone is about 0.2 s, more than 1.2 x this baseline) and
dockyard's modules. The push needs no docker-py on a local engine.
"""

from __future__ import annotations

import secrets
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from bench.cases.build import append_line
from bench.harness import CaseError, Row, Sample, alternate, checked, docker, measure, run
from bench.workspace import Bench, free_port

REGISTRY_BINARY = "/usr/bin/docker-registry"


@contextmanager
def loopback_registry(root: Path) -> Iterator[str]:
    """HOST:PORT of a docker-registry serving from ``root``, stopped on the way out."""
    if not Path(REGISTRY_BINARY).exists():
        raise CaseError("docker-registry is not installed (apt-get install docker-registry)")
    port = free_port()
    root.mkdir(parents=True)
    (root / "config.yml").write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
                                     f"http:\n  addr: 127.0.0.1:{port}\n")
    with (root / "log").open("w") as log:
        process = subprocess.Popen([REGISTRY_BINARY, "serve", str(root / "config.yml")],
                                   stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise CaseError(f"docker-registry did not answer: {(root / 'log').read_text()[-500:]}") from None
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def push(bench: Bench, row: Row) -> None:
    root = bench.main_project()
    if "httpd.push" not in bench.task_names(root):
        raise CaseError("`inv --list` shows no httpd.push task")
    token = secrets.token_hex(4)
    with loopback_registry(bench.work / "registry") as registry:
        cli_tag = bench.tag("httpd", bench.cli_name)
        remote = f"{registry}/{cli_tag}"

        def dockyard(i: int) -> Sample:
            append_line(root / "images/busybox-httpd/index.html", f"dockyard push round {i} {token}")
            checked(measure(bench.inv_cmd("httpd.build", "--quiet"), root), "inv httpd.build")
            s = checked(measure(bench.inv_cmd("httpd.push", "--registry", registry), root), "inv httpd.push")
            if "httpd: pushed" not in s.output:
                raise CaseError(f"inv httpd.push did not say it pushed:\n{s.output[-800:]}")
            return s

        def baseline(i: int) -> Sample:
            append_line(bench.cli / "images/busybox-httpd/index.html", f"baseline push round {i} {token}")
            run(["docker", "build", "-q", "-t", cli_tag, "images/busybox-httpd"], cwd=bench.cli)
            bench.record(cli_tag)
            docker("tag", cli_tag, remote)
            return checked(measure(["docker", "push", remote], bench.cli), "docker push")

        alternate(row, bench.args.rounds, dockyard, baseline, bench.bare_invoke)
    row.note = "index.html changed and rebuilt (untimed) on both sides every round: one new layer"
