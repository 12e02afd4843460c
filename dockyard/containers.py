"""Containers of a project's images: run, stop, start, logs, shell, exec, status.

A container is ours when it carries this project's ``dockyard.owner`` label; dockyard
replaces or removes only those, and says so when a name is taken by someone else's.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import struct
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone

from . import engine
from .config import ImageSpec, PortMapping, ProjectSpec
from .errors import DockyardError
from .labels import IMAGE, OWNER


def inspect(name: str) -> dict | None:
    import docker

    with engine.engine_errors(f"inspect container {name}"):
        try:
            return engine.client().api.inspect_container(name)
        except docker.errors.NotFound:
            return None


def container_labels(project: ProjectSpec, spec: ImageSpec) -> dict[str, str]:
    return {OWNER: project.name, IMAGE: spec.key}


def is_ours(container: dict, project: ProjectSpec) -> bool:
    labels = container.get("Config", {}).get("Labels") or {}
    return labels.get(OWNER) == project.name


def owned(project: ProjectSpec, spec: ImageSpec, *, required: bool = True) -> dict | None:
    """The image's container if it exists and is ours; a clear refusal if it is someone else's."""
    container = inspect(spec.run.name)
    if container is None:
        if required:
            raise DockyardError(f"no container named '{spec.run.name}'; start one with `inv {spec.key}.run`")
        return None
    if not is_ours(container, project):
        labels = container.get("Config", {}).get("Labels") or {}
        owner = labels.get(OWNER)
        who = f"dockyard project '{owner}'" if owner else "something other than dockyard"
        raise DockyardError(
            f"a container named '{spec.run.name}' exists and was made by {who}, not project "
            f"'{project.name}'; dockyard leaves it alone. Remove it yourself, or set "
            f"images.{spec.key}.run.name in {project.path.name}"
        )
    return container


@dataclass
class RunOverrides:
    port: int | None = None
    env: tuple[tuple[str, str], ...] = ()


def ports_of(spec: ImageSpec, container: dict) -> list[PortMapping]:
    """The configured mappings as this container actually publishes them (after --port)."""
    bindings = (container.get("HostConfig") or {}).get("PortBindings") or {}
    ports = []
    for p in spec.run.ports:
        bound = (bindings.get(f"{p.container_port}/{p.protocol}") or [{}])[0]
        host_port = int(bound.get("HostPort") or p.host_port)
        ports.append(PortMapping(bound.get("HostIp") or p.host_ip, host_port, p.container_port, p.protocol))
    return ports


def published_ports(spec: ImageSpec, overrides: RunOverrides) -> list[PortMapping]:
    ports = list(spec.run.ports)
    if overrides.port is not None:
        if not ports:
            raise DockyardError(f"--port: images.{spec.key}.run.ports publishes no port to override")
        first = ports[0]
        ports[0] = PortMapping(first.host_ip, overrides.port, first.container_port, first.protocol)
    return ports


def create(project: ProjectSpec, spec: ImageSpec, overrides: RunOverrides, *, interactive: bool = False) -> str:
    """Create (not start) the container for ``spec``, replacing our old one of the same name."""
    api = engine.client().api
    old = owned(project, spec, required=False)
    if old is not None:
        with engine.engine_errors(f"remove the old container {spec.run.name}"):
            api.remove_container(old["Id"], force=True)
    ports = published_ports(spec, overrides)
    environment = dict(spec.run.environment)
    environment.update(overrides.env)
    restart = None
    if spec.run.restart != "no":
        policy, _, count = spec.run.restart.partition(":")
        restart = {"Name": policy, "MaximumRetryCount": int(count or 0)}
    host_config = api.create_host_config(
        port_bindings={f"{p.container_port}/{p.protocol}": (p.host_ip, p.host_port) for p in ports},
        binds=list(spec.run.volumes) or None,
        restart_policy=restart,
        # A server as PID 1 (busybox httpd) ignores SIGTERM; an init forwards it, so stop is quick.
        init=spec.run.init or None,
    )
    command = list(spec.run.command) if isinstance(spec.run.command, tuple) else spec.run.command
    with engine.engine_errors(f"create container {spec.run.name} from {spec.ref}"):
        created = api.create_container(
            spec.ref, command=command, name=spec.run.name, environment=environment,
            user=spec.run.user, working_dir=spec.run.workdir,
            ports=[(p.container_port, p.protocol) for p in ports], host_config=host_config,
            labels=container_labels(project, spec),
            detach=not interactive, stdin_open=interactive, tty=interactive,
        )
    return created["Id"]


def start(spec: ImageSpec, container_id: str, ports: list[PortMapping]) -> None:
    """Start a container; a port clash is named, and the container we just made is removed."""
    import docker

    api = engine.client().api
    try:
        api.start(container_id)
    except docker.errors.APIError as e:
        text = engine.explanation(e)
        if engine.port_in_use(text):
            api.remove_container(container_id, force=True)
            taken = ", ".join(f"{p.host_ip}:{p.host_port}" for p in ports)
            raise DockyardError(
                f"cannot start {spec.run.name}: port {taken} is already in use ({text}). "
                f"Stop what uses it, or run with --port N"
            ) from None
        api.remove_container(container_id, force=True)
        raise DockyardError(f"cannot start {spec.run.name}: {text}") from None
    except Exception as e:  # a dropped connection mid-start
        raise engine.unreachable(engine.endpoint(), e) from None


def wait_ready(spec: ImageSpec, container_id: str, ports: list[PortMapping]) -> None:
    """Wait for the readiness check; on timeout or exit, show the last log lines and fail."""
    ready = spec.run.ready
    if ready is None:
        _ensure_running(spec, container_id)
        return
    deadline = time.monotonic() + ready.timeout
    url = _ready_url(spec, ports) if ready.url else None
    while True:
        state = _ensure_running(spec, container_id)
        answer = _answers(url, ready.port, ports)
        if state and answer is True:
            return
        if time.monotonic() > deadline:
            target = url or f"port {ready.port}"
            said = f" (last answer: {answer})" if isinstance(answer, str) else ""
            raise DockyardError(
                f"{spec.run.name} did not answer on {target} within {ready.timeout:g}s{said}; "
                f"last log lines:\n{tail_logs(container_id)}"
            )
        time.sleep(0.1)


def _ensure_running(spec: ImageSpec, container_id: str) -> bool:
    container = inspect(container_id)
    state = (container or {}).get("State", {})
    if not state.get("Running"):
        code = state.get("ExitCode")
        raise DockyardError(
            f"{spec.run.name} exited (code {code}) instead of staying up; last log lines:\n{tail_logs(container_id)}"
        )
    return True


def _ready_url(spec: ImageSpec, ports: list[PortMapping]) -> str:
    """The configured URL, with its port moved if --port moved the mapping it names."""
    url = spec.run.ready.url
    for configured, actual in zip(spec.run.ports, ports):
        if configured.host_port != actual.host_port:
            url = url.replace(f":{configured.host_port}/", f":{actual.host_port}/", 1)
            if url.endswith(f":{configured.host_port}"):
                url = url[: -len(str(configured.host_port))] + str(actual.host_port)
    return url


def _answers(url: str | None, port: int | None, ports: list[PortMapping]) -> bool | str:
    """True when ready; False, or what the server said (e.g. 'HTTP 404'), when not."""
    if url:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return 200 <= response.status < 400 or f"HTTP {response.status}"
        except urllib.error.HTTPError as e:
            e.close()
            return f"HTTP {e.code}"
        except (urllib.error.URLError, ConnectionError, OSError):
            return False
    mapping = next(p for p in ports if p.container_port == port)
    host = "127.0.0.1" if mapping.host_ip in ("0.0.0.0", "") else mapping.host_ip
    try:
        with socket.create_connection((host, mapping.host_port), timeout=1) as conn:
            # The engine's userland proxy accepts at once and hangs up if nothing listens inside.
            conn.settimeout(0.3)
            try:
                return conn.recv(1, socket.MSG_PEEK) != b""
            except socket.timeout:
                return True
    except OSError:
        return False


def tail_logs(container_id: str, lines: int = 20) -> str:
    try:
        text = engine.client().api.logs(container_id, tail=lines).decode("utf-8", "replace")
    except Exception:
        return "  (no logs)"
    return "\n".join(f"  {line}" for line in text.rstrip().splitlines()) or "  (no output)"


def stream_logs(container_id: str, *, follow: bool, tail: str | int = "all") -> None:
    """Copy the container's output to ours as it comes; Ctrl-C ends a follow quietly."""
    api = engine.client().api
    out = sys.stdout.buffer
    with engine.engine_errors("logs"):
        for chunk in api.logs(container_id, stream=True, follow=follow, tail=tail):
            out.write(chunk)
            out.flush()


def start_attached(container_id: str) -> int:
    """`docker start -a`: attach first, so we see this run's output and only this run's."""
    api = engine.client().api
    out = sys.stdout.buffer
    with engine.engine_errors("start"):
        stream = api.attach(container_id, stdout=True, stderr=True, stream=True, logs=False)
        api.start(container_id)
        try:
            for chunk in stream:
                out.write(chunk)
                out.flush()
        except KeyboardInterrupt:
            print("\nstopping the container", file=sys.stderr)
            api.stop(container_id, timeout=10)
        return api.wait(container_id).get("StatusCode", 0)


def attach(spec: ImageSpec, container_id: str) -> int:
    """Follow a started container in the foreground; Ctrl-C stops it. Returns its exit code."""
    api = engine.client().api
    try:
        stream_logs(container_id, follow=True)
    except KeyboardInterrupt:
        print(f"\nstopping {spec.run.name}", file=sys.stderr)
        api.stop(container_id, timeout=10)
    return api.wait(container_id).get("StatusCode", 0)


def interactive(container_id: str, *, started: bool = False) -> int:
    """Bridge our terminal to a TTY container until it exits; returns its exit code.

    docker-py has no `docker run -it`: attach a socket, put the local terminal in raw
    mode, and copy bytes both ways, keeping the container's TTY the size of ours.
    """
    import termios
    import tty

    api = engine.client().api
    with engine.engine_errors("attach"):
        tty_mode = bool(api.inspect_container(container_id)["Config"].get("Tty"))
        sock = api.attach_socket(container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
    raw = getattr(sock, "_sock", sock)
    stdin = sys.stdin.fileno()
    is_tty = os.isatty(stdin)
    saved = termios.tcgetattr(stdin) if is_tty else None

    def resize(*_: object) -> None:
        if is_tty:
            size = os.get_terminal_size(stdin)
            try:
                api.resize(container_id, height=size.lines, width=size.columns)
            except Exception:
                pass

    try:
        if not started:
            with engine.engine_errors("start"):
                api.start(container_id)
        if is_tty:
            tty.setraw(stdin, termios.TCSANOW)  # TCSAFLUSH would drop typed-ahead input
            resize()
            signal.signal(signal.SIGWINCH, resize)
        _pump(raw, stdin, framed=not tty_mode)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        raw.close()
    return api.wait(container_id).get("StatusCode", 0)


def _pump(sock: socket.socket, stdin: int, *, framed: bool) -> None:
    """Copy stdin to the socket and the socket to stdout (and stderr) until it closes.

    Without a TTY the engine multiplexes the container's output: frames of an 8-byte
    header (stream 1 or 2, then a big-endian length) before each piece.
    """
    outputs = {1: sys.stdout.fileno(), 2: sys.stderr.fileno()}
    pending = b""
    stdin_open = True
    while True:
        readable, _, _ = select.select([sock] + ([stdin] if stdin_open else []), [], [])
        if sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            if not framed:
                os.write(outputs[1], data)
            else:
                pending += data
                while len(pending) >= 8:
                    size = struct.unpack(">I", pending[4:8])[0]
                    if len(pending) < 8 + size:
                        break
                    os.write(outputs.get(pending[0], outputs[1]), pending[8:8 + size])
                    pending = pending[8 + size:]
        if stdin_open and stdin in readable:
            data = os.read(stdin, 65536)
            if data:
                sock.sendall(data)
            else:  # our stdin closed: tell the container, keep reading its output
                stdin_open = False
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass


def uptime(started_at: str) -> str:
    """'3m', '2h', '5d' since the engine's RFC 3339 timestamp."""
    started = datetime.fromisoformat(started_at[:19] + "+00:00")
    seconds = max(0, int((datetime.now(timezone.utc) - started).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
