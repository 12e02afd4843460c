"""Swarm tasks: ``inv httpd.deploy``, ``inv httpd.scale N``, ``inv httpd.undeploy``, and
``inv deploy`` / ``inv undeploy`` of the project's services (in `after` order, as `up`)."""

from __future__ import annotations

import sys

from ..errors import DockyardError
from .core import choose, counted, number_setting, parse_number, print_json, task_options
from .registry import registry_flag

DEPLOY_HELP = {
    "replicas": "How many tasks to run, for this deploy (default: [deploy] replicas, whatever `scale` set).",
    "push": "Push the image to the registry first and deploy its digest (a swarm of several nodes needs it).",
    "registry": "The registry for --push, HOST[:PORT] (setting: dockyard.registry; else [deploy] or [project] registry).",
    "no-build": "Do not build first, even what is missing or out of date.",
    "quiet-build": "Hide the build output (setting: dockyard.quiet).",
    "ready-timeout": "Seconds to wait for every task to answer (setting: dockyard.ready_timeout; default 60).",
    "json": "Print the result as JSON (tasks with node, state and ports).",
}


def outcome_lines(outcome: dict) -> list[str]:
    """The service's line, then one per task: node, state and published address."""
    from ..swarm import report_lines

    reason = f" ({outcome['reason']})" if outcome["reason"] else ""
    head = f"{outcome['service']}: {outcome['action']}{reason}, {counted(outcome['replicas'], 'replica')}"
    return [head, *report_lines(outcome)]


def _deploy(c, target, keys, replicas, push, registry, no_build, quiet_build, ready_timeout, json_):
    project = target.project(c)
    quiet, _ = choose(c, quiet_build, "quiet")

    def warn(warning: str) -> None:  # on stderr, beside `config`'s and `status`'s warnings
        print(f"dockyard: warning: {warning}", file=sys.stderr, flush=True)

    def report(outcome: dict) -> None:
        if not json_:
            print("\n".join(outcome_lines(outcome)), flush=True)

    outcomes = project.deploy(
        keys, replicas=parse_number("--replicas", replicas, 0, 1000), push=push,
        registry=registry_flag(c, registry), build=not no_build, quiet_build=bool(quiet),
        ready_timeout=number_setting(c, ready_timeout, "ready_timeout", 1, 86400),
        output=sys.stderr if json_ else None, report=report, warn=warn)
    return outcomes


@task_options(help=DEPLOY_HELP)
def deploy(c, target, replicas=None, push=False, registry=None, no_build=False, quiet_build=False,
           ready_timeout=None, json_=False):
    """Deploy this image as a Swarm service; wait until every task answers.

    An existing service whose image or settings changed is rolled over (see [deploy] update).
    """
    outcomes = _deploy(c, target, [target.key], replicas, push, registry, no_build, quiet_build, ready_timeout,
                       json_)
    if json_:
        print_json(outcomes[0])
    else:
        print(f"Remove with: inv {target.key}.undeploy")


@task_options(positional=["replicas"], help={
    "replicas": "How many tasks the service runs from now on (until a deploy sets [deploy] replicas again).",
    "ready-timeout": "Seconds to wait for every task to answer (setting: dockyard.ready_timeout; default 60).",
    "json": "Print the result as JSON.",
})
def scale(c, target, replicas, ready_timeout=None, json_=False):
    """Run N tasks of this image's Swarm service; wait until they answer."""
    count = parse_number("replicas", replicas, 0, 1000)
    result = target.project(c).scale(target.key, count,
                                     ready_timeout=number_setting(c, ready_timeout, "ready_timeout", 1, 86400))
    if json_:
        print_json(result)
        return
    from ..swarm import report_lines

    print(f"{result['service']}: {result['before']} -> {counted(result['replicas'], 'replica')}")
    for line in report_lines(result):
        print(line)


def _undeploy(c, target, keys, json_):
    result = target.project(c).undeploy(keys)
    if json_:
        print_json(result)
        return
    for name in result["services"]:
        print(f"removed service {name}")
    if result["network"] != "absent":
        print(f"network: {result['network']}")
    if not result["services"] and result["network"] == "absent":
        print("nothing deployed")


@task_options(help={"json": "Print what was removed as JSON."})
def undeploy(c, target, json_=False):
    """Remove this image's Swarm service (ours only)."""
    _undeploy(c, target, [target.key], json_)


@task_options(name="deploy", help=DEPLOY_HELP | {
    "replicas": "How many tasks each service runs, for this deploy (default: each one's [deploy] replicas).",
    "push": "Push each image to the registry first and deploy its digest (a swarm of several nodes needs it).",
})
def deploy_all(c, target, replicas=None, push=False, registry=None, no_build=False, quiet_build=False,
               ready_timeout=None, json_=False):
    """Deploy every service to the swarm, in `after` order."""
    outcomes = _deploy(c, target, None, replicas, push, registry, no_build, quiet_build, ready_timeout, json_)
    if json_:
        print_json(outcomes)
    else:
        print("Remove with: inv undeploy")


@task_options(name="undeploy", help={"json": "Print what was removed as JSON."})
def undeploy_all(c, target, json_=False):
    """Remove the project's Swarm services and overlay network."""
    _undeploy(c, target, None, json_)


def deploy_rows(rows: list[dict]) -> str:
    """The service tasks under `status`: one line per task."""
    if not rows:
        raise DockyardError("no service is deployed")
    lines = []
    for row in rows:
        ports = ", ".join(f"{p['host_port']}->{p['container_port']}/{p['protocol']}" if p["host_port"]
                          else f"{p['container_port']}/{p['protocol']}" for p in row["published"])
        publish = f"publish {row['publish']} {ports}" if row["published"] else "publishes no port"
        lines.append(f"service {row['service']}: {row['running']}/{row['replicas']} running, {publish}"
                     + (f", update {row['update']}" if row["update"] else ""))
        from ..swarm import report_lines

        lines += report_lines(row)
    return "\n".join(lines)


IMAGE_TASKS = [deploy, scale, undeploy]
PROJECT_TASKS = [deploy_all, undeploy_all]
