"""Tasks of one image's namespace: ``inv httpd.build``, ``inv httpd.run``, ...

Each task is thin: it finds its image from the collection config, calls the engine
layer and prints. docker-py is imported only when a task body runs.
"""

from __future__ import annotations

import json
import sys

from invoke import Context, task

from ..config import ImageSpec, ProjectSpec, load
from ..errors import DockyardError


def spec_of(c: Context) -> tuple[ProjectSpec, ImageSpec]:
    """The project and this namespace's image, from the collection's config."""
    project = load(c.config.dockyard.config)
    return project, project.image(c.config.dockyard_image)


def parse_env(pairs: list[str]) -> tuple[tuple[str, str], ...]:
    parsed = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DockyardError(f"--env {pair!r}: expected KEY=VALUE")
        parsed.append((key, value))
    return tuple(parsed)


def parse_number(flag: str, value: str | None, low: int, high: int) -> int | None:
    """A whole-number flag, checked here: Invoke's own int() would end in a traceback."""
    if value is None:
        return None
    if not str(value).isdigit() or not low <= int(value) <= high:
        raise DockyardError(f"--{flag} {value!r}: expected a whole number from {low} to {high}")
    return int(value)


def ensure_built(project: ProjectSpec, spec: ImageSpec, *, quiet: bool) -> None:
    """Make's prerequisite step: build the image (and its parents) if missing or out of date."""
    from ..builder import BuildOptions, Output, build, failures

    outcomes = build(project, [spec.key], BuildOptions(quiet=quiet), Output(stream=sys.stderr))
    failed = failures(outcomes)
    if failed:
        raise DockyardError(f"cannot run {spec.key}: {failed[0].detail}")


BUILD_HELP = {
    "force": "Rebuild even when up to date (the images asked for, not their prerequisites).",
    "no-cache": "Do not use the engine's layer cache (implies a rebuild).",
    "pull": "Pull newer versions of external base images (implies a rebuild).",
    "quiet": "Show only the results, not the build output.",
}


@task(help=BUILD_HELP)
def build(c, force=False, no_cache=False, pull=False, quiet=False):
    """Build this image, after the project images its FROM lines name; skip if up to date."""
    from ..builder import BuildOptions, build as build_images, failures

    project, spec = spec_of(c)
    outcomes = build_images(project, [spec.key], BuildOptions(force=force, no_cache=no_cache, pull=pull, quiet=quiet))
    failed = failures(outcomes)
    if failed:
        raise DockyardError(failed[0].detail)


@task(iterable=["env"], help={
    "port": "Publish on this host port instead of the configured one (first mapping).",
    "env": "Add KEY=VALUE to the environment for this run (repeatable).",
    "attach": "Run in the foreground, following the output; Ctrl-C stops the container "
              "(the default for an image that publishes no port and has no readiness check).",
    "detach": "Run in the background even if the image publishes no port.",
    "no-build": "Do not build the image first, even if it is missing or out of date.",
    "quiet-build": "Hide the build output of the prerequisite build.",
})
def run(c, port=None, env=None, attach=False, detach=False, no_build=False, quiet_build=False):
    """Start the container (replacing our previous one) and wait until it answers."""
    from .. import containers

    project, spec = spec_of(c)
    if attach and detach:
        raise DockyardError("--attach and --detach contradict each other; give one")
    overrides = containers.RunOverrides(port=parse_number("port", port, 1, 65535), env=parse_env(env or []))
    if no_build:
        from ..builder import inspect_image

        if inspect_image(spec.ref) is None:
            raise DockyardError(f"image {spec.ref} does not exist; build it with `inv {spec.key}.build` or drop --no-build")
    else:
        ensure_built(project, spec, quiet=quiet_build)
    ports = containers.published_ports(spec, overrides)
    container_id = containers.create(project, spec, overrides)
    containers.start(spec, container_id, ports)
    # A one-shot image (the tutorial's my-app) is run like `docker run`: in the foreground.
    if attach or (not detach and not ports and spec.run.ready is None):
        code = containers.attach(spec, container_id)
        if code:
            raise DockyardError(f"{spec.run.name} exited with code {code}", code=code)
        return
    try:
        containers.wait_ready(spec, container_id, ports)
    except KeyboardInterrupt:
        raise DockyardError(f"interrupted while waiting for {spec.run.name}; it is left running "
                            f"(`inv {spec.key}.logs`, `inv {spec.key}.stop`)", code=130) from None
    print(f"\nContainer id: {container_id}\n")
    if ports:
        print(f"Point your browser to: http://localhost:{ports[0].host_port}\n")
    print(f"Stop with: inv {spec.key}.stop\n")


@task(help={"timeout": "Seconds to wait before the engine kills it (default 10)."})
def stop(c, timeout=None):
    """Stop this image's container (ours only); a stopped or absent one is fine."""
    from .. import engine
    from ..containers import owned

    seconds = parse_number("timeout", timeout, 0, 3600)
    project, spec = spec_of(c)
    container = owned(project, spec, required=False)
    if container is None or not container["State"]["Running"]:
        print(f"{spec.run.name} is not running")
        return
    with engine.engine_errors(f"stop {spec.run.name}"):
        engine.client().api.stop(container["Id"], timeout=10 if seconds is None else seconds)
    print(f"stopped {spec.run.name}")


@task(help={"attach": "Attach to its output (and input) like `docker start -a -i`."})
def start(c, attach=False):
    """Start this image's existing, stopped container again, with its original command."""
    from .. import engine
    from ..containers import interactive, owned, start_attached

    project, spec = spec_of(c)
    container = owned(project, spec)
    if container["State"]["Running"]:
        print(f"{spec.run.name} is already running")
        return
    api = engine.client().api
    if not attach:
        with engine.engine_errors(f"start {spec.run.name}"):
            api.start(container["Id"])
        print(f"started {spec.run.name}")
        return
    if container["Config"].get("Tty"):
        code = interactive(container["Id"])
    else:
        code = start_attached(container["Id"])
    if code:
        raise DockyardError(f"{spec.run.name} exited with code {code}", code=code)


@task
def restart(c):
    """Restart this image's container and wait until it answers again."""
    from .. import containers, engine

    project, spec = spec_of(c)
    container = containers.owned(project, spec)
    with engine.engine_errors(f"restart {spec.run.name}"):
        engine.client().api.restart(container["Id"], timeout=10)
    containers.wait_ready(spec, container["Id"], containers.ports_of(spec, container))
    print(f"restarted {spec.run.name}")


@task(help={"follow": "Keep printing new output until Ctrl-C.", "tail": "Only the last N lines."})
def logs(c, follow=False, tail=None):
    """Print this image's container output."""
    from ..containers import owned, stream_logs

    lines = parse_number("tail", tail, 0, 10**9)
    project, spec = spec_of(c)
    container = owned(project, spec)
    try:
        stream_logs(container["Id"], follow=follow, tail="all" if lines is None else lines)
    except KeyboardInterrupt:
        pass


@task(help={"user": "Run the shell as this user (default: the image's).",
            "command": "The shell to run (default: sh).",
            "no-build": "Do not build the image first, even if it is missing or out of date."})
def shell(c, user=None, command="sh", no_build=False):
    """An interactive shell in a fresh, throwaway container of this image."""
    from .. import engine
    from ..containers import container_labels, interactive

    project, spec = spec_of(c)
    if not no_build:
        ensure_built(project, spec, quiet=True)
    api = engine.client().api
    with engine.engine_errors(f"create a shell container from {spec.ref}"):
        created = api.create_container(
            spec.ref, command=command, user=user, stdin_open=True, tty=sys.stdin.isatty(),
            labels=container_labels(project, spec),
            environment=dict(spec.run.environment), host_config=api.create_host_config(auto_remove=False),
        )
    try:
        code = interactive(created["Id"])
    finally:
        api.remove_container(created["Id"], force=True)
    if code:
        raise DockyardError(f"shell exited with code {code}", code=code)


@task(name="exec", help={"command": "The command to run, through `sh -c`.",
                         "user": "Run it as this user."})
def exec_(c, command, user=None):
    """Run a command in this image's running container and print its output."""
    from .. import engine
    from ..containers import owned

    project, spec = spec_of(c)
    container = owned(project, spec)
    if not container["State"]["Running"]:
        raise DockyardError(f"{spec.run.name} is not running; start it with `inv {spec.key}.run`")
    api = engine.client().api
    with engine.engine_errors(f"exec in {spec.run.name}"):
        created = api.exec_create(container["Id"], ["sh", "-c", command], user=user or "")
        for out, err in api.exec_start(created["Id"], stream=True, demux=True):
            for data, stream in ((out, sys.stdout), (err, sys.stderr)):
                if data:
                    stream.buffer.write(data)
                    stream.flush()
        code = api.exec_inspect(created["Id"])["ExitCode"]
    if code:
        raise DockyardError(f"`{command}` exited with code {code} in {spec.run.name}", code=code)


@task(help={"json": "Print the status as JSON."})
def status(c, json_=False):
    """State, ports, uptime and image of this image's container; is the image up to date?"""
    from ..status import image_status

    project, spec = spec_of(c)
    row = image_status(project, spec)
    if json_:
        print(json.dumps(row, indent=2))
    else:
        from ..status import format_rows

        print(format_rows([row]))


TASKS = [build, run, stop, start, restart, logs, shell, exec_, status]
