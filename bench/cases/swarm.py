"""Swarm cases: ``inv httpd.deploy --replicas 3`` against ``docker service create`` of the same
image with the same settings, each until every task answers on its own host port.

The engine must be a swarm manager: when it is in no swarm, the case makes it one (`docker
swarm init --advertise-addr 127.0.0.1`) and leaves the swarm again at the end (removing the
docker_gwbridge network that `swarm leave` keeps). Both sides publish in host mode with no
fixed port (the ingress routing mesh needs IPVS, which a kernel may lack).

deploy: from no service (each round starts after an untimed removal) to 3 tasks running and
each answering /cgi-bin/hello-world.
deploy-overlay: the same, with the baseline also creating an attachable overlay network and
attaching the service to it, as dockyard does for the project's services (reported, no target:
it shows what the network itself costs).
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from typing import Iterator

from bench.cases.run import http_ok
from bench.harness import CaseError, Row, Sample, alternate, checked, docker, measure, run
from bench.workspace import Bench

REPLICAS = 3

# The baseline's readiness loop: the docker CLI's task list until every task runs and answers.
POLL = """
import subprocess, sys, time, urllib.request
service, replicas, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + 60
while True:
    out = subprocess.run(["docker", "service", "ps", service, "--filter", "desired-state=running",
                          "--format", "{{.CurrentState}} {{.Ports}}"], capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines() if line.strip()]
    # The first address of a task is its IPv4 binding (the IPv6 one may be another port).
    ports = {row[-1].split("->")[0].rsplit(":", 1)[1] for row in rows if "->" in row[-1]}
    answered = 0
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/cgi-bin/hello-world", timeout=2) as r:
                answered += r.status == 200
        except OSError:
            pass
    if len(rows) == replicas and all(row[0] == "Running" for row in rows) and answered == replicas:
        break
    if time.monotonic() > deadline:
        sys.exit(f"not all of {replicas} tasks answer: {out}")
    time.sleep(0.1)
"""

DEPLOY_SH = """set -e
{network}docker service create --detach --quiet --name {name} --mode replicated --replicas {replicas} \\
    --publish mode=host,target={port} --env HTTPD_PORT={port} --init --no-resolve-image \\
    --cap-drop ALL --cap-add CAP_SETUID --cap-add CAP_SETGID {attach}{image} >/dev/null
{python} -S -c '{poll}' {name} {replicas}
"""

HOST_MODE = '\n[images.httpd.deploy]\npublish = "host"\n'


@contextmanager
def swarm_manager() -> Iterator[None]:
    """The engine as a swarm manager for the case; a swarm it made is left afterwards."""
    info = json.loads(docker("info", "--format", "{{json .Swarm}}"))
    made = info.get("LocalNodeState") == "inactive"
    if made:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    elif not info.get("ControlAvailable"):
        raise CaseError("the engine is in a swarm but not a manager")
    try:
        yield
    finally:
        if made:
            docker("swarm", "leave", "--force", check=False)
            docker("network", "rm", "docker_gwbridge", check=False)


def _remove_service(name: str) -> None:
    """Remove a service and wait until its tasks' containers are gone (untimed)."""
    docker("service", "rm", name, check=False)
    deadline = time.monotonic() + 60
    while docker("ps", "-aq", "--filter", f"label=com.docker.swarm.service.name={name}", check=False).strip():
        if time.monotonic() > deadline:
            raise CaseError(f"the tasks of service {name} did not go away within 60 s")
        time.sleep(0.2)


def _answering_ports(output: str) -> list[int]:
    """The host ports of deploy's task lines, `0.0.0.0:PORT->TARGET/tcp` (bound on every interface)."""
    return [int(word.split("->")[0].rpartition(":")[2]) for word in output.split()
            if word.startswith("0.0.0.0:") and "->" in word]


def deploy(bench: Bench, row: Row) -> None:
    _deploy(bench, row, overlay=False)


def deploy_overlay(bench: Bench, row: Row) -> None:
    _deploy(bench, row, overlay=True)


def _deploy(bench: Bench, row: Row, overlay: bool) -> None:
    root = bench.main_project()
    if "httpd.deploy" not in bench.task_names(root):
        raise CaseError("`inv --list` shows no httpd.deploy task")
    config = root / "containers.toml"
    if "[images.httpd.deploy]" not in config.read_text():
        config.write_text(config.read_text() + HOST_MODE)
    service, cli_service = f"{bench.name}-httpd", f"{bench.cli_name}-httpd"
    network = f"{bench.cli_name}_swarm"
    script = bench.work / f"deploy{'-overlay' if overlay else ''}.sh"
    script.write_text(DEPLOY_SH.format(
        name=cli_service, replicas=REPLICAS, port=bench.cli_port, image=bench.tag("httpd", bench.cli_name),
        python=sys.executable, poll=POLL,
        network=f"docker network create --driver overlay --attachable {network} >/dev/null\n" if overlay else "",
        attach=f"--network {network} " if overlay else ""))
    with swarm_manager():
        try:
            def dockyard(i: int) -> Sample:
                run(bench.inv_cmd("httpd.undeploy"), cwd=root)
                _remove_service(service)
                s = checked(measure(bench.inv_cmd("httpd.deploy", "--replicas", str(REPLICAS), "--quiet-build"),
                                    root), "inv httpd.deploy")
                ports = _answering_ports(s.output)
                if len(ports) != REPLICAS or not all(http_ok(f"http://127.0.0.1:{p}/cgi-bin/hello-world")
                                                     for p in ports):
                    raise CaseError(f"inv httpd.deploy returned but not {REPLICAS} tasks answer:\n{s.output[-800:]}")
                return s

            def baseline(i: int) -> Sample:
                _remove_service(cli_service)
                if overlay:
                    docker("network", "rm", network, check=False)
                return checked(measure(["bash", str(script)], bench.work), "docker service create + poll")

            alternate(row, bench.args.rounds, dockyard, baseline, bench.bare_invoke)
            row.note = (f"from no service to {REPLICAS} host-mode tasks each answering /cgi-bin/hello-world; "
                        + ("both sides create an overlay network and attach the service to it" if overlay else
                           "dockyard also creates the project's overlay network and attaches the tasks to it"))
        finally:
            run(bench.inv_cmd("undeploy"), cwd=root, check=False)
            _remove_service(cli_service)
            if overlay:
                docker("network", "rm", network, check=False)
