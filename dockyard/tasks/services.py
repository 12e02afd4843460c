"""Top-level tasks over the project's services: ``inv up``, ``inv down``, ``inv logs``."""

from __future__ import annotations

import json
import sys
import time

from ..errors import DockyardError
from .core import choose, counted, number_setting, parse_number, print_json, task_options


def names(only: str | None) -> list[str] | None:
    if only is None:
        return None
    listed = [n.strip() for n in only.split(",") if n.strip()]
    if not listed:
        raise DockyardError("--only: name at least one service, e.g. --only httpd")
    return listed


def outcome_line(outcome: dict) -> str:
    reason = f" ({outcome['reason']})" if outcome["reason"] else ""
    completed = ", completed" if outcome["exit_code"] == 0 else ""  # a step that ran to its end
    return f"{outcome['name']}: {outcome['action']}{reason}{completed}"


@task_options(help={
    "only": "Comma-separated services to start, with the services their `after` names; default: all.",
    "no-build": "Do not build first, even what is missing or out of date.",
    "quiet-build": "Hide the build output (setting: dockyard.quiet).",
    "ready-timeout": "Seconds to wait for each readiness check (setting: dockyard.ready_timeout).",
    "json": "Print one result per service as JSON (with --watch: one line of JSON per turn).",
    "watch": "Then keep watching the images' files and containers.toml: sync, rebuild and replace on "
             "each change, until Ctrl-C (docs/watch.md).",
    "debounce": "With --watch: milliseconds the files must stay quiet before a turn starts "
                "(setting: dockyard.watch_debounce; 100).",
})
def up(c, target, only=None, no_build=False, quiet_build=False, ready_timeout=None, json_=False, watch=False,
       debounce=None):
    """Build, then start every service in `after` order, each once what it needs answers.

    Reentrant: a running container whose image and settings are unchanged is left alone,
    one that changed is replaced; each service's line says which. A step (run.completes)
    runs to its end first, and again only if it changed or its last run failed.
    """
    project = target.project(c)
    quiet, _ = choose(c, quiet_build, "quiet")
    if debounce is not None and not watch:
        raise DockyardError("--debounce is for --watch: give both, or neither")
    if watch:
        if no_build:
            raise DockyardError("--watch builds what changed: it does not go with --no-build")
        watch_turns(c, lambda **options: project.watch(names(only), **options), ready_timeout, debounce, json_,
                    stop_with="inv down")
        return
    outcomes = project.up(names(only), build=not no_build, quiet_build=bool(quiet),
                          ready_timeout=number_setting(c, ready_timeout, "ready_timeout", 1, 86400),
                          report=None if json_ else lambda outcome: print(outcome_line(outcome), flush=True))
    if json_:
        print_json(outcomes)
        return
    changed = [o for o in outcomes if o["action"] != "unchanged"]
    if not changed:
        steps = sum(1 for o in outcomes if o["exit_code"] is not None)
        done = f", {counted(steps, 'step')} completed" if steps else ""
        print(f"nothing changed: {counted(len(outcomes) - steps, 'service')} running and ready{done}")
    else:
        counts = {}
        for o in changed:
            counts[o["action"]] = counts.get(o["action"], 0) + 1
        done = ", ".join(f"{n} {action}" for action, n in counts.items())
        print(f"up: {done}, {len(outcomes) - len(changed)} unchanged; stop with: inv down")


def watch_turns(c, watch, ready_timeout, debounce, as_json: bool, stop_with: str) -> None:
    """Run a watch (``watch(**options)``, a Project.watch), a line per turn, until Ctrl-C or
    SIGTERM; then say that the services stay, and how to stop them."""
    def report(turn: dict) -> None:
        print(json.dumps(turn) if as_json else turn_line(turn), flush=True)

    quiet_ms = number_setting(c, debounce, "watch_debounce", 0, 60000, "--debounce")
    ended = watch(debounce=None if quiet_ms is None else quiet_ms / 1000,
                  ready_timeout=number_setting(c, ready_timeout, "ready_timeout", 1, 86400), report=report)
    if ended["detail"]:
        print(f"dockyard: {ended['detail']}", file=sys.stderr, flush=True)
    print(f"dockyard: watch ended ({ended['ended_by']}); what it started keeps running: {stop_with} stops it",
          file=sys.stderr, flush=True)


def turn_line(turn: dict) -> str:
    """One line a turn: what changed, what was done, how long it took, where to look; a failed
    turn's error follows, and says that what ran before keeps serving."""
    changed = turn["changed"]
    what = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "") if changed \
        else "start"
    done = [f"synced {', '.join(turn['synced'])}"] if turn["synced"] else []
    done += [f"built {', '.join(turn['built'])}"] if turn["built"] else []
    done += [f"{', '.join(turn['replaced'])}"] if turn["replaced"] else []
    done += [f"restarted {', '.join(turn['restarted'])}"] if turn["restarted"] else []
    said = "; ".join(done) or "up to date, nothing to do"
    if turn["error"]:
        error = turn["error"].replace("\n", "\n  ")
        return (f"[{time.strftime('%H:%M:%S')}] {what}: {'; '.join(done + ['failed'])} ({turn['seconds']:.2f}s)\n"
                f"  {error}\n  what ran before keeps serving; watching for the next change")
    url = f" {turn['url']}" if turn["url"] else ""
    return f"[{time.strftime('%H:%M:%S')}] {what}: {said} ({turn['seconds']:.2f}s){url}"


@task_options(help={
    "volumes": "Also remove the project's named volumes (not external ones, nor one another container uses).",
    "timeout": "Seconds each container has to stop before it is killed (setting: dockyard.stop_timeout; 10).",
    "json": "Print what was removed as JSON.",
})
def down(c, target, volumes=False, timeout=None, json_=False):
    """Stop and remove the project's containers and network; --volumes: its volumes too."""
    seconds = number_setting(c, timeout, "stop_timeout", 0, 3600, "--timeout")
    project = target.project(c)
    result = project.down(volumes=volumes, timeout=10 if seconds is None else seconds)
    deployed = project.deployed()  # Swarm services are `undeploy`'s: down leaves them, and says so
    if json_:
        print_json(result | {"deployed": deployed})
        return
    for name in result["containers"]:
        print(f"removed container {name}")
    if result["network"] != "absent":
        print(f"network: {result['network']}")
    for volume in result["volumes"]:
        print(f"volume {volume['name']}: {volume['status']}")
    if not result["containers"] and result["network"] == "absent" and not result["volumes"]:
        print("nothing to remove")
    if deployed:
        print(f"{counted(len(deployed), 'service')} {'stays' if len(deployed) == 1 else 'stay'} deployed on the swarm "
              f"({', '.join(deployed)}); `inv undeploy` removes them")


@task_options(help={
    "only": "Comma-separated services; default: all.",
    "follow": "Keep following new output until Ctrl-C or every container stops (default; --no-follow: print and exit).",
    "tail": "Only the last N lines of each.",
})
def logs(c, target, only=None, follow=True, tail=None):
    """Follow every service's output, each line prefixed by its container's name."""
    target.project(c).service_logs(names(only), follow=follow, tail=parse_number("--tail", tail, 0, 10**9))


def format_volumes(rows: list[dict]) -> str:
    """The volumes table under `inv status`."""
    shown = [{"VOLUME": r["volume"], "NAME": r["name"] + (" (external)" if r["external"] else ""),
              "STATE": r["state"], "USED BY": ", ".join(r["used_by"])} for r in rows]
    widths = {k: max(len(k), *(len(r[k]) for r in shown)) for k in shown[0]}
    lines = ["  ".join(k.ljust(w) for k, w in widths.items())]
    lines += ["  ".join(r[k].ljust(w) for k, w in widths.items()) for r in shown]
    return "\n".join(line.rstrip() for line in lines)


TASKS = [up, down, logs]
