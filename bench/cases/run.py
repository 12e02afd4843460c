"""Run cases: ``inv httpd.run`` until the page answers, against the tutorial's run script, and
a command in the running container.

run-until-page: dockyard waits for readiness itself; the baseline is run-httpd.sh followed by
a poll loop, so both sides end when /cgi-bin/hello-world answers 200.
exec: ``inv httpd.exec true`` in dockyard's running httpd vs ``docker exec NAME true`` in the
baseline's, each started once (untimed) before the rounds.
"""

from __future__ import annotations

import sys
import urllib.request

from bench.harness import CaseError, Row, Sample, alternate, checked, docker, measure
from bench.workspace import Bench


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



def run_until_page(bench: Bench, row: Row) -> None:
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

        alternate(row, bench.args.rounds, dockyard, baseline, bench.bare_invoke)
        row.note = "both replace their running container each round; baseline = run-httpd.sh + a python -S poll loop"
    finally:
        docker("rm", "-f", f"{bench.name}-httpd", f"{bench.cli_name}-httpd", check=False)



def exec_true(bench: Bench, row: Row) -> None:
    root = bench.main_project()
    name, cli_name = f"{bench.name}-httpd", f"{bench.cli_name}-httpd"
    try:
        checked(measure(bench.inv_cmd("httpd.run"), root), "setup inv httpd.run")
        checked(measure(["bash", str(bench.work / "run-httpd.sh")], bench.work), "setup run-httpd.sh")
        alternate(row, bench.args.rounds,
                  lambda i: checked(measure(bench.inv_cmd("httpd.exec", "true"), root), "inv httpd.exec true"),
                  lambda i: checked(measure(["docker", "exec", cli_name, "true"], bench.work), "docker exec true"),
                  bench.bare_invoke)
        row.note = f"in running containers started once before the rounds ({name}, {cli_name}); dockyard runs `sh -c true`"
    finally:
        docker("rm", "-f", name, cli_name, check=False)
