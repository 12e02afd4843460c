"""Containers of a project's images: run, stop, start, logs, shell, exec, status.

A container is ours when it carries this project's ``dockyard.owner`` label; dockyard
replaces or removes only those, and says so when a name is taken by someone else's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.client
import json
import os
import re
import select
import shlex
import signal
import socket
import sys
import termios
import threading
import time
import tty
import urllib.parse
from dataclasses import dataclass
from typing import Callable, Iterator

from . import engine, interrupts, resources, turns
from .config import ImageSpec, PortMapping, ProjectSpec, RunSpec, size_bytes
from .engine import ports as engine_ports
from .errors import DockyardError
from .labels import IMAGE, OWNER, SETTINGS, container_is_ours, container_labels, container_owner

inspect = engine.inspect_container


def owned(project: ProjectSpec, spec: ImageSpec, *, required: bool = True) -> dict | None:
    """The image's container if it exists and is ours; a clear refusal if it is someone else's."""
    container = inspect(spec.run.name)
    if container is None:
        if required:
            raise DockyardError(f"no container named '{spec.run.name}'; start one with `inv {spec.key}.run`")
        return None
    if not container_is_ours(container, project.name):
        raise DockyardError(
            f"a container named '{spec.run.name}' exists and was made by {container_owner(container)}, not project "
            f"'{project.name}'; dockyard leaves it alone. Remove it yourself, or set "
            f"images.{spec.key}.run.name in {project.path.name}"
        )
    return container


@dataclass
class RunOverrides:
    """What one `run` changes from the configuration: a host port, more environment, the
    arguments given after `--` (they replace the configured command)."""

    port: int | None = None
    env: tuple[tuple[str, str], ...] = ()
    args: tuple[str, ...] = ()
    stdin: bool = False  # keep its stdin open for an attached run to write into
    # Directories made anonymous volumes (a copy of the image's content there), the only
    # places a watch's sync may write while the root filesystem stays read-only (dockyard.watch).
    writable: tuple[str, ...] = ()


def ports_of(spec: ImageSpec, container: dict) -> list[PortMapping]:
    """The configured mappings as this container actually publishes them (after --port)."""
    if spec.run.network == "host":
        return on_host_network(spec.run.ports)
    ports = []
    for p in spec.run.ports:
        bound = engine_ports.binding_of(container, p)
        host_ip = bound.host_ip if bound and bound.host_ip else p.host_ip
        host_port = bound.host_port if bound and bound.host_port is not None else p.host_port
        ports.append(PortMapping(host_ip, host_port, p.container_port, p.protocol))
    return ports


def on_host_network(ports: tuple[PortMapping, ...]) -> list[PortMapping]:
    """What a container on the host's network publishes: no mapping at all (the engine drops
    them); its server's own port, on every interface of the host."""
    return [PortMapping("0.0.0.0", p.container_port, p.container_port, p.protocol) for p in ports]


def browser_url(ports: list[PortMapping]) -> str | None:
    """Where to point a browser at a run's server: its first published port, on this machine."""
    return f"http://localhost:{ports[0].host_port}" if ports else None


def published_ports(spec: ImageSpec, overrides: RunOverrides) -> list[PortMapping]:
    if spec.run.network == "host":
        if overrides.port is not None:
            raise DockyardError(f"--port: images.{spec.key}.run.network is 'host': the container listens on the "
                                "host's own ports, which no mapping can move")
        return on_host_network(spec.run.ports)
    ports = list(spec.run.ports)
    if overrides.port is not None:
        if not ports:
            raise DockyardError(f"--port: images.{spec.key}.run.ports publishes no port to override")
        first = ports[0]
        ports[0] = PortMapping(first.host_ip, overrides.port, first.container_port, first.protocol)
    return ports


def privileges(run: RunSpec) -> dict:
    """The host config of least privilege, as the Engine API takes it: what containers.toml
    allows the container, and no more (docs/security.md)."""
    settings: dict = {
        "CapDrop": list(run.cap_drop) or None,
        "CapAdd": list(run.granted_capabilities) or None,
        "SecurityOpt": ["no-new-privileges:true"] if run.no_new_privileges else None,
        "Privileged": run.privileged or None,
        "ReadonlyRootfs": run.read_only or None,
        "Tmpfs": dict(mount.partition(":")[::2] for mount in run.tmpfs) or None,  # PATH: OPTIONS
        "Memory": size_bytes(run.memory) if run.memory else None,
        "PidsLimit": run.pids,
        "NanoCpus": int(run.cpus * 1e9) if run.cpus else None,
    }
    # Rotation for the engine's default driver when it takes these options, or when this
    # process has not asked yet (`_create` asks once the engine refuses them): a `docker info`
    # on every run would cost 20 ms or more, for the rare engine with another driver.
    if engine.known_log_driver() in (None, *ROTATING_LOG_DRIVERS):
        settings["LogConfig"] = {"Type": "", "Config": {"max-size": run.log_max_size,
                                                        "max-file": str(run.log_max_files)}}
    return settings


ROTATING_LOG_DRIVERS = ("json-file", "local")  # the drivers that take max-size and max-file


# A replace makes the new container under a passing name, `NAME-dockyard-TOKEN`, and sets the
# old one aside as `NAME-dockyard-TOKEN-old` until the new one has started. What an
# interrupted replace leaves (a process killed, an engine gone) has those names.
PASSING = re.compile(r"-dockyard-[0-9a-f]{8}(-old)?$")


@contextlib.contextmanager
def turn_to_replace(project: ProjectSpec, spec: ImageSpec,
                    interrupted: Callable[[], bool] = lambda: False) -> Iterator[None]:
    """Within: this process's turn at the image's container on this engine (two `run`s of one
    image take turns, see ``turns``), with what an interrupted replace left put in order
    first (``recover``). ``replace_and_start`` is called within it. ``interrupted``: a
    thread's way to be told to stop waiting for the turn."""
    name = spec.run.name
    with turns.turn("replace", engine.endpoint(), name, what=f"waiting for another run of {name}",
                    on_wait=lambda: print(f"dockyard: waiting for another run of {name} on this engine",
                                          file=sys.stderr, flush=True), interrupted=interrupted):
        for line in recover(project, spec):
            print(f"dockyard: {line}", file=sys.stderr, flush=True)
        yield


def leftovers(project: ProjectSpec, spec: ImageSpec) -> list[dict]:
    """Our containers of this image that an interrupted replace left under a passing name
    (the engine's list rows, newest first)."""
    listing = engine.query("/containers/json", all=True,
                           filters={"label": [f"{OWNER}={project.name}", f"{IMAGE}={spec.key}"]})
    rows = engine.request("GET", listing, f"list the containers of {spec.key}") or []
    prefix = f"/{spec.run.name}-dockyard-"
    found = [row for row in rows if any(n.startswith(prefix) and PASSING.search(n) for n in row.get("Names") or [])]
    return sorted(found, key=lambda row: row.get("Created", 0), reverse=True)


def recover(project: ProjectSpec, spec: ImageSpec) -> list[str]:
    """Finish or roll back what interrupted replaces left, and say what was done: a new
    container that never got its name is removed; an old one set aside gets its name back
    when no container has it (the run that follows replaces or starts it), and is removed
    when the new one has it. Only within ``turn_to_replace``: no other run is under way."""
    done = []
    rows = leftovers(project, spec)
    for row in sorted(rows, key=lambda row: _row_name(row).endswith("-old")):  # new ones first
        name = _row_name(row)
        if not name.endswith("-old"):
            _remove(row["Id"], f"remove {name}")
            done.append(f"removed {name}, which an interrupted run of {spec.run.name} made and never started")
        elif (holder := inspect(spec.run.name)) is None:
            _rename(row["Id"], spec.run.name, f"put {name} back as {spec.run.name}")
            done.append(f"put {spec.run.name} back from {name}, where an interrupted run had set it aside")
        elif container_is_ours(holder, project.name):
            _remove(row["Id"], f"remove {name}")
            done.append(f"removed {name}, the old {spec.run.name} an interrupted run had already replaced")
        else:  # the name went to someone else's container meanwhile: ours stays, to be seen to
            done.append(f"left {name} as it is: the name {spec.run.name} is now {container_owner(holder)}'s")
    return done


def left_behind(project: ProjectSpec, spec: ImageSpec) -> list[dict]:
    """``leftovers``, for `status`: none while a run of the image holds its turn, since then
    the containers under passing names are that run's own, not left behind."""
    if turns.taken("replace", engine.endpoint(), spec.run.name):
        return []
    return leftovers(project, spec)


def _row_name(row: dict) -> str:
    return (row.get("Names") or ["/"])[0].lstrip("/")


def replace_and_start(project: ProjectSpec, spec: ImageSpec, overrides: RunOverrides,
                      ports: list[PortMapping], starter: Callable[[str], object] | None = None,
                      ready: Callable[[str], object] | None = None) -> str:
    """Create and start the container for ``spec`` in place of our old one of the same name,
    never leaving less than before: the new container is made first (under a passing name),
    the old one is stopped and set aside, and removed only once the new one has started; if
    the new one cannot start, or an interrupt comes first, the old one gets its name back and
    runs again as it did. Interrupts are deferred (``interrupts.Deferred``): each request is
    answered before one is raised between the steps, so the roll back knows what the engine
    did, and another cannot cut the roll back short. ``starter(container_id)`` starts it
    instead of ``start`` (an attached run attaches first), with signals as usual.
    ``ready(container_id)``, with signals as usual too, is asked before the old one is removed:
    if it raises (the new one exits or does not answer, an interrupt), the old one is put back
    and runs as it did (a watch keeps serving what worked). Called within ``turn_to_replace``."""
    old = owned(project, spec, required=False)  # refuses a name someone else's container has
    name = spec.run.name
    passing = f"{name}-dockyard-{os.urandom(4).hex()}"
    undoing = f"putting {name} back as it was" if old else f"removing the new {name}"
    with interrupts.Deferred(say=f"interrupted; {undoing} once the step under way is done") as signals:
        new_id = None
        try:
            new_id = _create(project, spec, overrides, name=passing, ports=ports, interactive=False)
            signals.check()
            if old is not None:
                if old["State"]["Running"]:
                    stop(spec, old["Id"], 10)
                    signals.check()
                _rename(old["Id"], f"{passing}-old", f"set the old {name} aside")
                signals.check()
            _rename(new_id, name, f"replace {name}")
            signals.check()
            if starter is None:
                start(spec, new_id, ports)  # removes the new container when the engine refuses it
                signals.check()
            else:
                with signals.released():
                    starter(new_id)
            if ready is not None:
                with signals.released():
                    ready(new_id)
                signals.check()
        except BaseException as e:
            signals.say = f"{undoing} first"  # for a signal that comes during the roll back
            _roll_back(spec, new_id or passing, old, say=isinstance(e, KeyboardInterrupt))
            raise
        if old is not None:
            _remove(old["Id"], f"remove the old container {name}")
    return new_id


def _roll_back(spec: ImageSpec, new: str, old: dict | None, *, say: bool) -> None:
    """Remove the new container (``new``: its id, or its passing name when the create failed),
    give the old one its name back and, if it ran, run it again. A failure here is said, not
    raised: the error that caused the roll back is the one to read, and the next run finishes
    the job (``recover``)."""
    name = spec.run.name
    try:
        with contextlib.suppress(engine.Refused):  # start() may have removed it already
            _remove(new, f"remove the new {name}")
        if old is None:
            return
        current = inspect(old["Id"])
        if current is None:
            print(f"dockyard: the old {name} was removed by someone else meanwhile; it cannot be put back",
                  file=sys.stderr, flush=True)
            return
        if current["Name"].lstrip("/") != name:
            _rename(old["Id"], name, f"put the old {name} back")
        if old["State"]["Running"]:
            start_again(spec, old["Id"])  # 304 if its stop failed and it still runs
        if say:
            print(f"dockyard: {name} is back as it was", file=sys.stderr, flush=True)
    except DockyardError as e:
        print(f"dockyard: could not put the old {name} back ({e}); the next `run` or `up` of it "
              "will", file=sys.stderr, flush=True)


def _rename(container_id: str, name: str, what: str) -> None:
    engine.request("POST", engine.query(f"/containers/{container_id}/rename", name=name), what, ok=(204,))


def create_throwaway(project: ProjectSpec, spec: ImageSpec, command: list[str] | str,
                     user: str | None) -> str:
    """A nameless container of the image with its run settings (environment, user, workdir,
    volumes) but no published ports, for `shell`: removed by the caller when done."""
    overrides = RunOverrides(args=tuple(command) if isinstance(command, list) else ())
    return _create(project, spec, overrides, name=None, ports=[], interactive=True,
                   command=command, user=user)


def _create(project: ProjectSpec, spec: ImageSpec, overrides: RunOverrides, *, name: str | None,
            ports: list[PortMapping], interactive: bool, command: list[str] | str | None = None,
            user: str | None = None) -> str:
    """The one place a container of ours is made: run's and shell's share every setting."""
    body = creation(project, spec, overrides, name=name, ports=ports, interactive=interactive,
                    command=command, user=user)
    network = body["HostConfig"]["NetworkMode"]
    resources.prepare(project, spec, network=network)
    what = f"create container {name} from {spec.ref}" if name else f"create a container from {spec.ref}"
    path = engine.query("/containers/create", **({"name": name} if name else {}))
    try:
        created = engine.request("POST", path, what, body=body, ok=(201,))
    except engine.Refused as e:
        # Rotation options sent to an engine whose default logging driver was not asked yet:
        # another driver (journald, syslog) refuses them (400). Ask it, and create without.
        if e.status != 400 or "LogConfig" not in body["HostConfig"] or engine.known_log_driver() is not None \
                or engine.default_log_driver() in ROTATING_LOG_DRIVERS:
            raise
        del body["HostConfig"]["LogConfig"]
        created = engine.request("POST", path, what, body=body, ok=(201,))
    if spec.run.networks:
        try:
            resources.join_networks(spec, created["Id"], network)
        except BaseException:
            _remove(created["Id"], f"remove the container just made from {spec.ref}")
            raise
    return created["Id"]


def _remove(container_id: str, what: str) -> None:
    # v: its anonymous volumes go with it (a watch's writable directories, an image's VOLUME);
    # nobody else can reach them, and a replace would leave one more behind each time.
    engine.request("DELETE", engine.query(f"/containers/{container_id}", force=True, v=True), what, missing=True)


def creation(project: ProjectSpec, spec: ImageSpec, overrides: RunOverrides, *, name: str | None,
             ports: list[PortMapping], interactive: bool, command: list[str] | str | None = None,
             user: str | None = None) -> dict:
    """The body of the Engine API's container create that `_create` sends, with its hash in
    the dockyard.settings label, which `up` compares with a running container's to see if its
    settings changed. A container joins the image's network (by default the project's, so
    `shell` reaches the services by name); only a named one answers there to its image key
    and aliases, lest a shell take a share of a service's name."""
    environment = dict(spec.run.environment)
    environment.update(overrides.env)
    restart = None
    if spec.run.restart != "no" and not interactive:
        policy, _, count = spec.run.restart.partition(":")
        restart = {"Name": policy, "MaximumRetryCount": int(count or 0)}
    network = resources.network_mode(project, spec)
    host_config = {
        "PortBindings": engine_ports.port_bindings(ports) or None,
        "Binds": resources.binds(project, spec) or None,
        "RestartPolicy": restart,
        # A server as PID 1 (busybox httpd) ignores SIGTERM; an init forwards it, so stop is quick.
        "Init": (spec.run.init and not interactive) or None,
        **privileges(spec.run),
        "NetworkMode": network,
        "Mounts": [{"Type": "volume", "Target": path} for path in overrides.writable] or None,
    }
    if command is None:
        command = list(overrides.args) if overrides.args else \
            list(spec.run.command) if isinstance(spec.run.command, tuple) else spec.run.command
    labels = container_labels(project.name, spec.key)
    labels[SETTINGS] = settings_hash(project, spec, overrides, ports=ports, interactive=interactive,
                                     command=command, user=user, named=name is not None)
    if isinstance(command, str):  # as `docker run` splits it
        command = shlex.split(command)
    # Not detached with stdin open: stdin closes once, so our EOF is the container's.
    attached = interactive or overrides.stdin
    body = {
        "Image": spec.ref, "Cmd": command, "Env": [f"{k}={v}" for k, v in environment.items()],
        "User": user or spec.run.user, "WorkingDir": spec.run.workdir,
        "ExposedPorts": engine_ports.exposed_ports(ports) or None,
        "Labels": labels,
        "OpenStdin": attached, "StdinOnce": attached, "AttachStdin": attached,
        "AttachStdout": attached, "AttachStderr": attached,
        "Tty": interactive and sys.stdin.isatty(),
        "HostConfig": {key: value for key, value in host_config.items() if value is not None},
    }
    if network == resources.network_name(project) and name:
        body["NetworkingConfig"] = {"EndpointsConfig": {network: {"Aliases": [spec.key, *spec.run.aliases]}}}
    return {key: value for key, value in body.items() if value is not None}


# What a container is made from but does not change it: `up` leaves a container alone when only
# these differ. The name is left out because `run` creates under a passing name first. An
# env_file's variables are in `environment`, which is hashed: a changed value replaces the
# container, a moved file does not. The hash is a sha256 prefix, so it shows no value (and the
# engine shows a container's environment to whoever may read its labels anyway).
NOT_HASHED = frozenset({"name", "ready", "service", "completes", "after", "env_file", "secrets"})


def settings_hash(project: ProjectSpec, spec: ImageSpec, overrides: RunOverrides, *, ports: list[PortMapping],
                  interactive: bool, command: list[str] | str | None = None, user: str | None = None,
                  named: bool = True) -> str:
    """The hash of what a container is created with (label dockyard.settings), from dockyard's
    own description of it: every RunSpec field but ``NOT_HASHED``, as this run resolves them
    (overrides, the project's volume names, the network), the image, and the labels. No
    engine and no docker-py: a no-op `up` compares it with each container's label. A new
    RunSpec field is hashed unless it is added to ``NOT_HASHED``."""
    described = {field.name: getattr(spec.run, field.name) for field in dataclasses.fields(spec.run)
                 if field.name not in NOT_HASHED}
    if command is None:
        command = list(overrides.args) if overrides.args else spec.run.command
    described.update(
        image=spec.ref, labels=container_labels(project.name, spec.key),
        command=list(command) if isinstance(command, (list, tuple)) else command,
        environment=dict(spec.run.environment) | dict(overrides.env),
        user=user or spec.run.user,
        cap_add=spec.run.granted_capabilities,
        ports=[str(p) for p in ports],
        volumes=resources.binds(project, spec),
        network=resources.network_mode(project, spec) if named else None,
        interactive=interactive, stdin=overrides.stdin,
    )
    if overrides.writable:  # said only when there are some: the hash of every other container stays
        described["writable"] = list(overrides.writable)
    text = json.dumps(described, sort_keys=True, default=str).encode()
    return hashlib.sha256(text).hexdigest()[:32]


def start(spec: ImageSpec, container_id: str, ports: list[PortMapping]) -> None:
    """Start a container; a port clash is named, and the container we just made is removed."""
    try:
        start_again(spec, container_id)
        return
    except engine.Refused as e:
        refusal = e.explanation
    # Remove what we just made before saying why the engine refused; if that fails too,
    # the refusal is still what the user needs to read (the leftover is ours: `clean`).
    with contextlib.suppress(engine.Refused):
        _remove(container_id, f"remove {spec.run.name}")
    refusal = refusal.replace(container_id, spec.run.name)
    if engine.port_in_use(refusal):
        taken = ", ".join(f"{p.host_ip}:{p.host_port}" for p in ports)
        raise DockyardError(
            f"cannot start {spec.run.name}: port {taken} is already in use ({refusal}). "
            f"Stop what uses it, or run with --port N"
        )
    raise DockyardError(f"cannot start {spec.run.name}: {refusal}")


# How long a port check waits, once connected, for the engine's userland proxy to hang up
# (nothing listens inside) before it takes the silence for a server that waits for its client.
# The proxy hangs up within a millisecond on a local engine (0.5 ms median, 33 ms at most on
# two busy cores); a server that is still starting is looked at again and again, and each look
# needs the margin. One that `up` found running, unchanged, has had its time to start: its
# first look waits less, and only a look that found it not answering makes it wait the more.
PEEK_STARTING = 0.3
PEEK_SETTLED = 0.05


def wait_ready(spec: ImageSpec, container_id: str, ports: list[PortMapping],
               timeout: float | None = None, abandon: threading.Event | None = None,
               settled: bool = False) -> bool:
    """Wait for the readiness check (``timeout`` replaces the configured one); on timeout or
    exit, show the last log lines and fail. True once ready; False when ``abandon`` was set
    first (`up` stops waiting for the others when one service fails). ``settled``: the
    container was running before, unchanged (a no-op `up`): a port check's first look waits
    less for a hang-up (``PEEK_SETTLED``)."""
    ready = spec.run.ready
    if ready is None:
        _ensure_running(spec, container_id)
        return True
    seconds = ready.timeout if timeout is None else timeout
    deadline = time.monotonic() + seconds
    url = _ready_url(spec, ports) if ready.url else None
    pause = 0.01  # most servers answer within milliseconds: look again soon, then less often
    peek = PEEK_SETTLED if settled else PEEK_STARTING
    while True:
        state = _ensure_running(spec, container_id)
        answer = _answers(url, ready.port, ports, peek)
        if state and answer is True:
            return True
        peek = PEEK_STARTING
        if time.monotonic() > deadline:
            target = url or f"port {ready.port}"
            said = f" (last answer: {answer})" if isinstance(answer, str) else ""
            raise DockyardError(
                f"{spec.run.name} did not answer on {target} within {seconds:g}s{said}; "
                f"last log lines:\n{tail_logs(container_id)}"
            )
        if abandon is None:
            time.sleep(pause)
        elif abandon.wait(pause):
            return False
        pause = min(pause * 2, 0.2)


def _ensure_running(spec: ImageSpec, container_id: str) -> bool:
    state = _state(spec, container_id, "start and answer")
    if not state.get("Running"):
        code = state.get("ExitCode")
        raise DockyardError(
            f"{spec.run.name} exited (code {code}) instead of staying up; last log lines:\n{tail_logs(container_id)}"
        )
    return True


def exit_code(spec: ImageSpec, container_id: str) -> int | None:
    """A one-shot container's exit code once it has exited, None while it runs. A non-zero
    exit is an error with the last log lines, whose exit status is the container's."""
    state = _state(spec, container_id, "finish")
    if state.get("Running") or state.get("Status") == "created":
        return None
    code = state.get("ExitCode") or 0
    if code:
        raise DockyardError(f"{spec.run.name} exited (code {code}); last log lines:\n{tail_logs(container_id)}",
                            code=code)
    return 0


def wait_completed(spec: ImageSpec, container_id: str, abandon: threading.Event) -> bool:
    """Wait until a step (``run.completes``) exits, as long as it takes: True once it exited
    0, False when ``abandon`` was set first; a non-zero exit is an error (``exit_code``)."""
    pause = 0.01  # a quick step ends within milliseconds: look again soon, then less often
    while exit_code(spec, container_id) is None:
        if abandon.wait(pause):
            return False
        pause = min(pause * 2, 0.2)
    return True


def _state(spec: ImageSpec, container_id: str, waited_for: str) -> dict:
    """The container's state, inspected for a wait; a container removed meanwhile is an error."""
    with engine.doing(f"waiting for {spec.run.name} to {waited_for}"):
        container = inspect(container_id)
    if container is None:
        raise DockyardError(f"{spec.run.name} was removed while dockyard waited for it to {waited_for} "
                            "(by another run or a `docker rm`?)")
    return container["State"]


def _ready_url(spec: ImageSpec, ports: list[PortMapping]) -> str:
    """The configured URL, with its port moved if --port moved the mapping it names."""
    url = spec.run.ready.url
    for configured, actual in zip(spec.run.ports, ports):
        if configured.host_port != actual.host_port:
            url = url.replace(f":{configured.host_port}/", f":{actual.host_port}/", 1)
            if url.endswith(f":{configured.host_port}"):
                url = url[: -len(str(configured.host_port))] + str(actual.host_port)
    return url


def _answers(url: str | None, port: int | None, ports: list[PortMapping],
             peek: float = PEEK_STARTING) -> bool | str:
    """True when ready; False, or what the server said (e.g. 'HTTP 404'), when not. ``peek``:
    how long a port check waits for a hang-up."""
    if url:
        try:
            status = _http_status(url)
        except (OSError, http.client.HTTPException):
            return False
        return 200 <= status < 400 or f"HTTP {status}"
    mapping = next(p for p in ports if p.container_port == port)
    host = "127.0.0.1" if mapping.host_ip in ("0.0.0.0", "") else mapping.host_ip
    try:
        with socket.create_connection((host, mapping.host_port), timeout=1) as conn:
            # The engine's userland proxy accepts at once and hangs up if nothing listens inside.
            conn.settimeout(peek)
            try:
                return conn.recv(1, socket.MSG_PEEK) != b""
            except socket.timeout:
                return True
    except OSError:
        return False


def _http_status(url: str) -> int:
    """The status of a GET of ``url``, straight to the server it names (no proxy: the URL
    is the container's, usually on this machine); a redirect counts as an answer."""
    parts = urllib.parse.urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname, parts.port, timeout=2)
    try:
        connection.request("GET", urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, "")),
                           headers={"Connection": "close"})
        return connection.getresponse().status
    finally:
        connection.close()


def stop(spec: ImageSpec, container_id: str, timeout: int) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; a stopped or gone container is fine."""
    engine.request("POST", engine.query(f"/containers/{container_id}/stop", t=timeout), f"stop {spec.run.name}",
                   ok=(204, 304), missing=True, longer_by=timeout)


def start_again(spec: ImageSpec, container_id: str) -> None:
    engine.request("POST", f"/containers/{container_id}/start", f"start {spec.run.name}", ok=(204, 304))


def restart(spec: ImageSpec, container_id: str, timeout: int) -> None:
    engine.request("POST", engine.query(f"/containers/{container_id}/restart", t=timeout),
                   f"restart {spec.run.name}", ok=(204,), longer_by=timeout)


def remove(spec: ImageSpec, container_id: str, *, force: bool) -> None:
    engine.request("DELETE", engine.query(f"/containers/{container_id}", force=force, v=True),
                   f"remove {spec.run.name}", ok=(204,))


def wait(container_id: str, what: str) -> int:
    """The exit code of a container, once it has exited: as long as that takes."""
    answer = engine.request("POST", f"/containers/{container_id}/wait", what, ok=(200,), longer_by=None)
    return (answer or {}).get("StatusCode", 0)


def remove_throwaway(container_id: str) -> None:
    """Remove a `shell` container; a failure here must not hide how the shell ended."""
    with contextlib.suppress(DockyardError):
        _remove(container_id, "remove the shell's container")


def exec_in(spec: ImageSpec, container_id: str, argv: list[str], *, user: str | None,
            capture: bool, stdin: bool = False) -> tuple[int, bytes, bytes]:
    """Run ``argv`` in the running container: its exit code, and its output when captured
    (else it goes to our stdout and stderr as it comes). ``stdin``: it reads ours."""
    what = f"exec in {spec.run.name}"
    created = engine.request("POST", f"/containers/{container_id}/exec", what, ok=(201,), body={
        "Cmd": argv, "User": user or "", "AttachStdin": stdin, "AttachStdout": True,
        "AttachStderr": True, "Tty": False})
    captured = {engine.STDOUT: bytearray(), engine.STDERR: bytearray()}
    connection = engine.exec_start(created["Id"], what)
    try:
        if stdin:
            _pump(connection, sys.stdin.fileno(), framed=True)
        else:
            streams = {engine.STDOUT: sys.stdout, engine.STDERR: sys.stderr}
            for stream, data in connection.output():
                if capture:
                    captured[stream] += data
                else:
                    streams[stream].buffer.write(data)
                    streams[stream].flush()
    finally:
        connection.close()
    code = engine.request("GET", f"/exec/{created['Id']}/json", what, ok=(200,))["ExitCode"]
    return code, bytes(captured[engine.STDOUT]), bytes(captured[engine.STDERR])


def tail_logs(container_id: str, lines: int = 20) -> str:
    """The last lines of output, indented, for a failure message; never itself an error."""
    try:
        text = b"".join(data for _, data in engine.logs(container_id, "logs", follow=False, tail=lines))
    except DockyardError as e:  # gone, or the engine went away: the message says so
        return f"  (no logs: {e})"
    lines_said = text.decode("utf-8", "replace").rstrip().splitlines()
    return "\n".join(f"  {line}" for line in lines_said) or "  (no output)"


def stream_logs(container_id: str, *, follow: bool, tail: str | int = "all") -> None:
    """Copy the container's output to ours as it comes; Ctrl-C ends a follow quietly. A
    follow ends when the container stops; if it ends because the engine went away, that
    is an error, not the end of the logs."""
    out = sys.stdout.buffer
    container = inspect(container_id)
    name = container["Name"].lstrip("/") if follow and container else engine.short_id(container_id)
    what = f"follow the logs of {name}" if follow else f"logs of {name}"
    tty = bool(container and container["Config"].get("Tty"))
    with contextlib.closing(engine.logs(container_id, what, follow=follow, tail=tail, tty=tty)) as output:
        for _, data in output:
            out.write(data)
            out.flush()
    if follow:
        _check_stream_end(what, container_id)


def _name(container_id: str) -> str:
    container = inspect(container_id)
    return container["Name"].lstrip("/") if container else engine.short_id(container_id)


def _check_stream_end(what: str, container_id: str) -> None:
    """An output stream ended: fine if the container stopped or was removed; an engine
    that went away (or dropped the stream of a running container) is said so."""
    try:
        container = inspect(container_id)
    except DockyardError:
        raise DockyardError(engine.lost(what)) from None
    if container is not None and container["State"].get("Running"):
        raise DockyardError(f"{what}: the Docker engine at {engine.endpoint()} ended the stream "
                            "while the container still runs (was the engine restarted?)")


def start_attached(container_id: str) -> int:
    """`docker start -a`: attach first, so we see this run's output and only this run's."""
    out = sys.stdout.buffer
    name = _name(container_id)
    what = f"start {name} attached"
    connection = engine.attach(container_id, what, stdin=False)
    try:  # from the start on: a Ctrl-C before the first byte stops it too
        engine.request("POST", f"/containers/{container_id}/start", what, ok=(204, 304))
        for _, data in connection.output():
            out.write(data)
            out.flush()
    except KeyboardInterrupt:
        print("\nstopping the container", file=sys.stderr)
        _stop_after_interrupt(container_id, name)
    finally:
        connection.close()
    _check_stream_end(what, container_id)
    return wait(container_id, what)


def _stop_after_interrupt(container_id: str, name: str) -> None:
    """Stop an attached container that Ctrl-C left: SIGTERM, then SIGKILL after 10 s. (In a
    run, a second Ctrl-C meanwhile is noted by the replace, ``interrupts.Deferred.released``.)"""
    engine.request("POST", engine.query(f"/containers/{container_id}/stop", t=10), f"stop {name}",
                   ok=(204, 304), missing=True, longer_by=10)


def interactive(container_id: str, *, started: bool = False, stop_on_interrupt: bool = False) -> int:
    """Bridge our terminal to a TTY container until it exits; returns its exit code.

    As `docker run -it`: attach to it, put the local terminal in raw mode, and copy bytes
    both ways, keeping the container's TTY the size of ours.
    ``stop_on_interrupt``: Ctrl-C stops the container (a service run or started attached)
    and its exit code is returned; otherwise the interrupt goes on to the caller.
    """
    container = inspect(container_id)
    if container is None:
        raise DockyardError(f"attach: no container {engine.short_id(container_id)}; was it removed meanwhile?")
    tty_mode = bool(container["Config"].get("Tty"))
    connection = engine.attach(container_id, "attach", stdin=True)
    stdin = sys.stdin.fileno()
    is_tty = os.isatty(stdin)
    saved = termios.tcgetattr(stdin) if is_tty else None

    def resize(*_: object) -> None:
        if is_tty:
            size = os.get_terminal_size(stdin)
            path = engine.query(f"/containers/{container_id}/resize", h=size.lines, w=size.columns)
            with contextlib.suppress(DockyardError):  # a TTY of the wrong size is no reason to fail
                engine.request("POST", path, "resize the container's terminal", ok=(200,))

    try:
        if not started:
            engine.request("POST", f"/containers/{container_id}/start", "start", ok=(204, 304))
        if is_tty:
            tty.setraw(stdin, termios.TCSANOW)  # TCSAFLUSH would drop typed-ahead input
            resize()
            signal.signal(signal.SIGWINCH, resize)
        try:
            _pump(connection, stdin, framed=not tty_mode)
        except KeyboardInterrupt:  # a terminal in raw mode sends Ctrl-C to the container instead
            if not stop_on_interrupt:
                raise
            print("\nstopping the container", file=sys.stderr)
            _stop_after_interrupt(container_id, _name(container_id))
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        connection.close()
    return wait(container_id, "attach")


def _pump(connection: engine.Hijacked, stdin: int, *, framed: bool) -> None:
    """Copy stdin to the connection and the container's output to our stdout and stderr
    until it ends (``framed``: multiplexed, as the engine sends it without a TTY)."""
    outputs = {engine.STDOUT: sys.stdout.fileno(), engine.STDERR: sys.stderr.fileno()}
    frames = engine.Frames(tty=not framed)
    stdin_open = True
    while True:
        if connection.buffered():
            readable = [connection.socket]
        else:
            readable, _, _ = select.select([connection.socket] + ([stdin] if stdin_open else []), [], [])
        if connection.socket in readable:
            data = connection.receive()
            if not data:
                return
            for stream, piece in frames.feed(data):
                os.write(outputs[stream], piece)
        if stdin_open and stdin in readable:
            data = os.read(stdin, 65536)
            if data:
                connection.send(data)
            else:  # our stdin closed: tell the container, keep reading its output
                stdin_open = False
                connection.end_input()
