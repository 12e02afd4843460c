"""Tasks of one image's namespace: ``inv httpd.build``, ``inv httpd.run``, ...

Generic functions of ``(c, target, flags...)``; ``collection.namespace`` binds them to each
image. Each parses its flags, calls the Project API and prints; docker-py is imported only
when a task body runs.
"""

from __future__ import annotations

import sys

from ..config import is_loopback
from ..errors import DockyardError
from .core import (choose, engine_line, number_setting, parse_env, parse_number, print_json,
                   remainder_args, stdin_is_data, task_options, warn)
from .services import watch_turns
from .swarm import deploy_rows

BUILD_HELP = {
    "force": "Rebuild even when up to date (the images asked for, not their prerequisites).",
    "no-cache": "Do not use the engine's layer cache (implies a rebuild).",
    "pull": "Pull newer versions of the external base images its FROM lines name (implies a rebuild).",
    "quiet": "Show only the results, not the build output (setting: dockyard.quiet).",
    "json": "Print the outcome of each image as JSON (build output goes to stderr).",
}


@task_options(help=BUILD_HELP)
def build(c, target, force=False, no_cache=False, pull=False, quiet=False, json_=False):
    """Build this image, after the project images its FROM lines name; skip if up to date."""
    project = target.project(c)
    quiet, _ = choose(c, quiet, "quiet")
    outcomes = project.build([target.key], force=force, no_cache=no_cache, pull=pull, quiet=bool(quiet),
                             output=sys.stderr if json_ else None, check=False)
    if json_:
        print_json(outcomes)
    failed = [o for o in outcomes if o["status"] in ("failed", "skipped")]
    if failed:
        raise DockyardError(failed[0]["detail"])


@task_options(iterable=["env"], help={
    "port": "Publish on this host port instead of the configured one (first mapping).",
    "env": "Add KEY=VALUE to the environment for this run, or KEY for its value here (repeatable).",
    "attach": "Run in the foreground, following the output; Ctrl-C stops the container "
              "(the default for an image that publishes no port and has no readiness check); "
              "piped standard input is passed to it.",
    "detach": "Run in the background even if the image publishes no port.",
    "no-build": "Do not build the image first, even if it is missing or out of date.",
    "quiet-build": "Hide the build output of the prerequisite build (setting: dockyard.quiet).",
    "ready-timeout": "Seconds to wait for the readiness check (setting: dockyard.ready_timeout).",
    "json": "Print the container's id, name, ports and URL as JSON (with --watch: one line of JSON per turn).",
    "watch": "Then keep watching the image's files: sync, rebuild and replace it on each change, until "
             "Ctrl-C (docs/watch.md).",
    "debounce": "With --watch: milliseconds the files must stay quiet before a turn starts "
                "(setting: dockyard.watch_debounce; 100).",
})
def run(c, target, port=None, env=None, attach=False, detach=False, no_build=False, quiet_build=False,
        ready_timeout=None, json_=False, watch=False, debounce=None):
    """Start the container (replacing our previous one) and wait until it answers.

    Words after `--` replace the image's command: inv tool.run -- a b c.
    """
    project = target.project(c)
    if attach and detach:
        raise DockyardError("--attach and --detach contradict each other; give one")
    quiet, _ = choose(c, quiet_build, "quiet")
    if debounce is not None and not watch:
        raise DockyardError("--debounce is for --watch: give both, or neither")
    if watch:
        if attach or no_build:
            raise DockyardError(f"--watch keeps a server running and builds what changed: it does not go with "
                                f"{'--attach' if attach else '--no-build'}")
        watch_turns(c, lambda **options: project.watch(image=target.key, port=parse_number("--port", port, 1, 65535),
                                                       env=parse_env(env or []), args=remainder_args(c), **options),
                    ready_timeout, debounce, json_, stop_with=f"inv {target.key}.stop")
        return
    result = project.run(
        target.key, port=parse_number("--port", port, 1, 65535), env=parse_env(env or []),
        args=remainder_args(c), build=not no_build, quiet_build=bool(quiet),
        attach=True if attach else False if detach else None,
        ready_timeout=number_setting(c, ready_timeout, "ready_timeout", 1, 86400), stdin=stdin_is_data(),
    )
    if json_:
        print_json(result)
    if result.get("exit_code"):
        raise DockyardError(f"{result['name']} exited with code {result['exit_code']}",
                            code=result["exit_code"])
    if json_ or "exit_code" in result and not detach:  # attached: its output said it all
        return
    print(f"\nContainer id: {result['id']}\n")
    if "exit_code" in result:  # run in the background (--detach), and finished already
        print(f"{result['name']} exited (code {result['exit_code']})\n")
        return
    if result["url"]:
        # localhost is where this machine reaches it; say when other machines can too.
        everywhere = any(not is_loopback(p["host_ip"]) for p in result["ports"])
        print(f"Point your browser to: {result['url']}"
              f"{' (published on every interface: other machines reach it too)' if everywhere else ''}\n")
    print(f"Stop with: inv {target.key}.stop\n")


@task_options(help={"timeout": "Seconds to wait before the engine kills it (setting: dockyard.stop_timeout; 10).",
                    "json": "Print the result as JSON."})
def stop(c, target, timeout=None, json_=False):
    """Stop this image's container (ours only); a stopped or absent one is fine."""
    seconds = number_setting(c, timeout, "stop_timeout", 0, 3600, "--timeout")
    result = target.project(c).stop(target.key, timeout=10 if seconds is None else seconds)
    if json_:
        print_json(result)
    else:
        print(f"stopped {result['name']}" if result["stopped"] else f"{result['name']} is not running")


@task_options(help={"attach": "Attach to its output (and input) like `docker start -a -i`.",
                    "json": "Print the result as JSON."})
def start(c, target, attach=False, json_=False):
    """Start this image's existing, stopped container again, with its original command."""
    result = target.project(c).start(target.key, attach=attach)
    if json_:
        print_json(result)
    elif not result["started"]:
        print(f"{result['name']} is already running")
    elif not attach:
        print(f"started {result['name']}")
    if result.get("exit_code"):
        raise DockyardError(f"{result['name']} exited with code {result['exit_code']}", code=result["exit_code"])


@task_options(help={"timeout": "Seconds to wait for it to stop (setting: dockyard.stop_timeout; 10).",
                    "ready-timeout": "Seconds to wait for the readiness check (setting: dockyard.ready_timeout).",
                    "json": "Print the result as JSON."})
def restart(c, target, timeout=None, ready_timeout=None, json_=False):
    """Restart this image's container and wait until it answers again."""
    seconds = number_setting(c, timeout, "stop_timeout", 0, 3600, "--timeout")
    result = target.project(c).restart(target.key, timeout=10 if seconds is None else seconds,
                                       ready_timeout=number_setting(c, ready_timeout, "ready_timeout", 1, 86400))
    print_json(result) if json_ else print(f"restarted {result['name']}")


@task_options(help={"follow": "Keep printing new output until Ctrl-C.", "tail": "Only the last N lines."})
def logs(c, target, follow=False, tail=None):
    """Print this image's container output."""
    lines = parse_number("--tail", tail, 0, 10**9)
    target.project(c).logs(target.key, follow=follow, tail=lines)


@task_options(help={"user": "Run the shell as this user (default: the run settings', else the image's).",
                    "command": "The shell to run (default: sh).",
                    "no-build": "Do not build the image first, even if it is missing or out of date."})
def shell(c, target, user=None, command="sh", no_build=False):
    """An interactive shell in a fresh, throwaway container of this image.

    Words after `--` are the command instead: inv httpd.shell -- ls -l /www.
    """
    argv = remainder_args(c)
    code = target.project(c).shell(target.key, command=argv or command, user=user, build=not no_build)
    if code:
        raise DockyardError(f"shell exited with code {code}", code=code)


@task_options(name="exec", positional=["command"], help={
    "command": "The command to run, through `sh -c`; words after `--` are its $1, $2, ... "
               "Piped standard input is passed to it.",
    "user": "Run it as this user.",
    "json": "Capture the output; print the exit code, stdout and stderr as JSON.",
})
def exec_(c, target, command, user=None, json_=False):
    """Run a command in this image's running container; its exit code is ours."""
    argv = ["sh", "-c", command]
    args = remainder_args(c)
    if args:
        argv += ["sh", *args]  # $0, then $1...
    result = target.project(c).exec(target.key, argv, user=user, capture=json_, stdin=stdin_is_data())
    if json_:
        print_json(result)
    if result["exit_code"]:
        raise DockyardError(f"`{command}` exited with code {result['exit_code']} in {result['name']}",
                            code=result["exit_code"])


@task_options(help={"json": "Print the status as JSON."})
def status(c, target, json_=False):
    """State, ports, uptime and image of this image's container; is the image up to date?"""
    from ..status import format_rows

    project = target.project(c)
    rows = project.status([target.key])
    warn(project.spec, deployed=[row["image"] for row in rows if row["service"]])
    if json_:
        print_json(rows[0])
        return
    print(engine_line(project.engine(target.key)))  # the image's own engine, as the row's
    print(format_rows(rows))
    if any(row["service"] for row in rows):  # Swarm services of ours: each task's node, state, address
        print("\n" + deploy_rows([row["service"] for row in rows if row["service"]]))


TASKS = [build, run, stop, start, restart, logs, shell, exec_, status]
