"""Services cases: ``inv up`` and ``inv down`` of the example's services against a bash
script doing the same with the docker CLI.

The baseline is what a user would write by hand: create the network, run the api (its
volume, its alias) and httpd on it, poll httpd's page; then ``rm -f`` both and remove the
network. It is made reentrant the cheapest way (``rm -f`` first, create the network only
when missing), so it can also be the peer of an ``inv up`` that finds nothing changed.

up: from nothing (each round starts after an untimed down) to every service ready.
down: of a running project (each round starts after an untimed up).
up-noop: ``inv up`` on the running, unchanged project vs the same script run again.
"""

from __future__ import annotations

import sys

from bench.cases.run import POLL, http_ok
from bench.harness import CaseError, Row, Sample, alternate, checked, docker, measure, run
from bench.workspace import Bench

UP_SH = """set -e
net={prefix}_default
docker rm -f {prefix}-api {prefix}-httpd >/dev/null 2>&1 || true
docker network inspect "$net" >/dev/null 2>&1 || docker network create "$net" >/dev/null
docker run -d --name {prefix}-api --network "$net" --network-alias api --init \\
    -v {prefix}_data:/data {api} >/dev/null
docker run -d --name {prefix}-httpd --network "$net" --network-alias httpd --init \\
    -p 127.0.0.1:{port}:{port} -e HTTPD_PORT={port} {httpd} >/dev/null
{python} -S -c '{poll}' {url}
"""

DOWN_SH = """set -e
docker rm -f {prefix}-api {prefix}-httpd >/dev/null
docker network rm {prefix}_default >/dev/null
"""


def _scripts(bench: Bench) -> tuple[str, str, str]:
    root = bench.main_project()
    if "up" not in bench.task_names(root):
        raise CaseError("`inv --list` shows no up task")
    prefix, port = bench.cli_name, bench.cli_port
    url = f"http://127.0.0.1:{port}/cgi-bin/from-api"
    up = bench.work / "up.sh"
    up.write_text(UP_SH.format(prefix=prefix, port=port, api=bench.tag("api", prefix),
                               httpd=bench.tag("httpd", prefix), python=sys.executable, poll=POLL, url=url))
    down = bench.work / "down.sh"
    down.write_text(DOWN_SH.format(prefix=prefix))
    return str(up), str(down), url


def _checked_page(url: str, what: str) -> None:
    if not http_ok(url):
        raise CaseError(f"{what} returned but {url} does not answer 200")


def _up(bench: Bench) -> Sample:
    s = checked(measure(bench.inv_cmd("up", "--quiet-build"), bench.main), "inv up")
    _checked_page(f"http://127.0.0.1:{bench.port}/cgi-bin/from-api", "inv up")
    return s


def _finish(bench: Bench) -> None:
    run(bench.inv_cmd("down", "--volumes"), cwd=bench.main, check=False)
    docker("rm", "-f", f"{bench.cli_name}-api", f"{bench.cli_name}-httpd", check=False)
    docker("network", "rm", f"{bench.cli_name}_default", check=False)
    docker("volume", "rm", f"{bench.cli_name}_data", check=False)


def up(bench: Bench, row: Row) -> None:
    up_sh, down_sh, url = _scripts(bench)
    try:
        def dockyard(i: int) -> Sample:
            run(bench.inv_cmd("down"), cwd=bench.main)
            return _up(bench)

        def baseline(i: int) -> Sample:
            run(["bash", down_sh], check=False)
            s = checked(measure(["bash", up_sh], bench.work), "up.sh")
            _checked_page(url, "up.sh")
            return s

        alternate(row, bench.args.rounds, dockyard, baseline, bench.bare_invoke)
        row.note = "from nothing (no containers, no network) to httpd's /cgi-bin/from-api answering 200"
    finally:
        _finish(bench)


def down(bench: Bench, row: Row) -> None:
    up_sh, down_sh, _ = _scripts(bench)
    try:
        def dockyard(i: int) -> Sample:
            _up(bench)
            return checked(measure(bench.inv_cmd("down"), bench.main), "inv down")

        def baseline(i: int) -> Sample:
            run(["bash", up_sh])
            return checked(measure(["bash", down_sh], bench.work), "down.sh")

        alternate(row, bench.args.rounds, dockyard, baseline, bench.bare_invoke)
        row.note = "two running services and the network; dockyard stops each (init forwards SIGTERM), the script kills"
    finally:
        _finish(bench)


def up_noop(bench: Bench, row: Row) -> None:
    up_sh, _, url = _scripts(bench)
    try:
        def dockyard(i: int) -> Sample:
            s = _up(bench)
            if i > 0 and "nothing changed" not in s.output:
                raise CaseError(f"inv up on an unchanged project changed something:\n{s.output[-400:]}")
            return s

        def baseline(i: int) -> Sample:
            s = checked(measure(["bash", up_sh], bench.work), "up.sh")
            _checked_page(url, "up.sh")
            return s

        alternate(row, bench.args.rounds, dockyard, baseline, bench.bare_invoke)
        row.note = "everything running and unchanged: dockyard checks and leaves it; the script replaces both"
    finally:
        _finish(bench)
