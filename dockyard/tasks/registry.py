"""Registry tasks: ``inv httpd.push``, ``inv httpd.pull``, and ``inv push``/``inv pull`` of the
project. Layer progress goes to stdout (stderr with --json); the results last."""

from __future__ import annotations

import sys

from ..config import registry_address
from ..errors import DockyardError
from .core import choose, counted, print_json, task_options

HELP = {
    "registry": "The registry, HOST[:PORT] (setting: dockyard.registry; else [project] registry).",
    "json": "Print the results as JSON (layer progress goes to stderr).",
}


def registry_flag(c, registry):
    """--registry, else the setting; checked here so that a bad one names where it came from."""
    value, source = choose(c, registry, "registry", "--registry")
    if not value:
        return None
    try:
        return registry_address(value)
    except ValueError as e:
        raise DockyardError(f"{source}: {e}") from None


def result_line(result: dict) -> str:
    if result["status"] == "not built":
        return f"{result['image']}: not built, not pushed"
    if result["status"] == "pushed":
        counts = _layers(result["layers_pushed"], "pushed", result["layers_existing"], "there")
        return f"{result['image']}: pushed {result['remote']} ({counts})"
    counts = _layers(result["layers_pulled"], "pulled", result["layers_existing"], "here")
    return f"{result['image']}: pulled {result['remote']} as {result['tag']} ({counts})"


def _layers(moved: int, verb: str, existing: int, where: str) -> str:
    """'2 layers pushed, 1 already there'; 'up to date' when the engine moved and counted none."""
    if not moved and not existing:
        return "up to date"
    return f"{counted(moved, 'layer')} {verb}, {existing} already {where}"


def show(results: list[dict], json_: bool) -> None:
    if json_:
        print_json(results)
    else:
        for result in results:
            print(result_line(result))


@task_options(help=HELP)
def push(c, target, registry=None, json_=False):
    """Push this image to a registry as REGISTRY/REPOSITORY:TAG; build it first."""
    results = target.project(c).push([target.key], registry=registry_flag(c, registry),
                                      output=sys.stderr if json_ else sys.stdout)
    print_json(results[0]) if json_ else show(results, False)


@task_options(help=HELP)
def pull(c, target, registry=None, json_=False):
    """Pull this image from a registry and tag it as its own tag (`run --no-build` runs it)."""
    results = target.project(c).pull([target.key], registry=registry_flag(c, registry),
                                      output=sys.stderr if json_ else sys.stdout)
    print_json(results[0]) if json_ else show(results, False)


@task_options(name="push", help=HELP)
def push_all(c, target, registry=None, json_=False):
    """Push every built image of the project to a registry."""
    show(target.project(c).push(registry=registry_flag(c, registry),
                                output=sys.stderr if json_ else sys.stdout), json_)


@task_options(name="pull", help=HELP)
def pull_all(c, target, registry=None, json_=False):
    """Pull every image of the project from a registry (each tagged as its own)."""
    show(target.project(c).pull(registry=registry_flag(c, registry),
                                output=sys.stderr if json_ else sys.stdout), json_)


IMAGE_TASKS = [push, pull]
PROJECT_TASKS = [push_all, pull_all]
