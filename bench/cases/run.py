"""Run cases: ``inv httpd.run`` until the page answers, against the tutorial's run script.

run-until-page: dockyard waits for readiness itself; the baseline is run-httpd.sh followed by
a poll loop, so both sides end when /cgi-bin/hello-world answers 200.
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

        alternate(row, bench.args.rounds, dockyard, baseline)
        row.note = "both replace their running container each round; baseline = run-httpd.sh + a python -S poll loop"
    finally:
        docker("rm", "-f", f"{bench.name}-httpd", f"{bench.cli_name}-httpd", check=False)

