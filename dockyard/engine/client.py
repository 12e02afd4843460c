"""The engine's one client: every request dockyard makes goes through ``open_answer``, on
the transport the chosen engine fixes (``local``: its unix socket, with the standard
library; ``remote``: any other, through docker-py's public API), and the operations call
the functions here, one per endpoint they use (inspect, list, remove, tag, pull, build,
logs, exec, attach, archives, Swarm services), never a transport or docker-py.

``request`` and ``get_json`` are the JSON requests; ``download``, ``upload``, ``stream``
and ``messages`` the streamed ones; ``using`` puts the work done for an image on that
image's engine. The package's ``__init__`` exposes what the rest of dockyard uses.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote, urlencode

from .. import engine_choice
from ..errors import DockyardError
from . import local, remote
from .address import endpoint, request_timeout
from .answers import Answer, Frames, Hijacked
from .errors import Refused, engine_errors, refusal


def get_json(path: str, what: str, *, missing: bool = False):
    """A read-only GET answered in JSON (``request``'s, with 200 the only good answer).
    ``missing``: None when the engine has no such object (404), instead of an error."""
    return request("GET", path, what, ok=(200,), missing=missing)


def query(path: str, **params) -> str:
    """``path`` with its query string; a ``filters`` dict is sent as the engine takes it
    (each value a list, JSON-encoded), as docker-py does; another list is the parameter
    repeated (``names=a&names=b``)."""
    if isinstance(params.get("filters"), dict):
        filters = {k: v if isinstance(v, list) else [v] for k, v in params["filters"].items()}
        params["filters"] = json.dumps({k: [_filter_word(item) for item in v] for k, v in filters.items()})
    params = {k: int(v) if isinstance(v, bool) else v for k, v in params.items() if v is not None}
    return quote(path) + (f"?{urlencode(params, doseq=True)}" if params else "")


def _filter_word(value) -> str:
    """A filter's value as the engine reads it: words, ``true``/``false`` for a flag."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def open_answer(method: str, path: str, what: str, *, body: Any = None, headers: dict | None = None,
                timeout: float | None = None, streamed: bool = True,
                ok: tuple[int, ...] | None = (200,)) -> Answer:
    """Send one request to the chosen engine, on its transport: the local unix socket with
    the standard library, any other engine through docker-py's client, which is a requests
    session (its public ``request``, at the API version it agreed with the engine). ``path``
    carries its query (``query``); ``body``: bytes, a file or an iterable of bytes (sent in
    chunks). ``timeout``: how long the engine may take to answer (None: no limit); once it
    has, a ``streamed`` answer is read with no read timeout (a quiet build, a long save).
    A status outside ``ok`` is a ``Refused`` (None: any status is the caller's to read)."""
    headers = dict(headers or {})
    connection = local.connected(request_timeout(), what)
    if connection is None:
        with engine_errors(what):
            response = remote.send(method, path, data=body, headers=headers, stream=streamed,
                                   timeout=None if streamed else timeout)
        answer: Answer = remote.DockerPyAnswer(response, what)
    else:
        answer = local.send(connection, method, path, what, body=body, headers=headers, timeout=timeout,
                            streamed=streamed)
    if ok is not None and answer.status not in ok:
        with answer:
            raise refusal(what, answer.status, answer.read())
    return answer


def request(method: str, path: str, what: str, *, body: Any = None, ok: tuple[int, ...] = (200, 204),
            missing: bool = False, longer_by: float | None = 0):
    """One request whose answer is JSON (or empty): the parsed answer, or None when empty.
    On a local engine it goes over the socket with the standard library, so `down` and a
    no-op `up` never load docker-py; on any other engine (tcp, ssh, TLS), through docker-py.
    ``missing``: None for a 404 instead of an error. Another status is ``Refused``
    (``what``: the engine's message); an unreachable or stuck engine is one line naming it
    and what was in flight, as ``engine_errors`` says it. ``longer_by``: seconds the engine
    may take beyond the usual timeout (a stop waits for the container); None: as long as it
    takes (a wait for a container to exit, a commit)."""
    timeout = None if longer_by is None else request_timeout() + longer_by
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    with open_answer(method, path, what, body=data, headers=headers, timeout=timeout, streamed=False,
                     ok=None) as answer:
        return _answer(answer.status, answer.read(), what, ok, missing)


def _answer(status: int, answer: bytes, what: str, ok: tuple[int, ...], missing: bool):
    if status == 404 and missing:
        return None
    if status not in ok:
        raise refusal(what, status, answer)
    try:
        return json.loads(answer) if answer.strip() else None
    except ValueError:
        raise DockyardError(f"{what}: the Docker engine at {endpoint()} answered with something "
                            "that is not JSON") from None


def get_archive(container_id: str, path: str, what: str) -> bytes | None:
    """`GET /containers/{id}/archive`: a tar of ``path`` in the container (a file: one member,
    with its owner and mode), or None when there is no such path. For small files (a watch's
    sync): the answer is read whole."""
    with open_answer("GET", _archive_path(container_id, path), what,
                     timeout=request_timeout(), streamed=False, ok=None) as answer:
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise refusal(what, answer.status, answer.read())
        return answer.read()


def _archive_path(container_id: str, path: str) -> str:
    """The archive endpoint for ``path`` in the container (``query`` takes its own first
    argument by that name)."""
    return f"{query(f'/containers/{container_id}/archive')}?{urlencode({'path': path})}"


def put_archive(container_id: str, directory: str, tar: bytes, what: str) -> None:
    """`PUT /containers/{id}/archive`: the engine unpacks ``tar`` into ``directory`` of the
    container, as root, with the owners and modes its headers give. A read-only root
    filesystem is refused unless ``directory`` is on a volume."""
    with open_answer("PUT", _archive_path(container_id, directory), what, body=tar,
                     headers={"Content-Type": "application/x-tar"}, timeout=request_timeout(), streamed=False):
        pass


@contextlib.contextmanager
def using(choice: "engine_choice.Choice | None") -> Iterator[None]:
    """Within: the engine an image names (its ``engine`` key; None: it names none, so the
    project's engine), for the work done for that image. A setting or the environment still
    wins (``engine_choice``)."""
    with engine_choice.image_layer(choice.value if choice else None, choice.source if choice else ""):
        yield


def inspect_container(ref: str, *, size: bool = False) -> dict | None:
    """The engine's inspect result for a container, or None when there is none of that name;
    with ``size``, with the size of its writable layer (``SizeRw``)."""
    return get_json(f"/containers/{quote(ref, safe='/:')}/json{'?size=1' if size else ''}",
                    f"inspect container {ref}", missing=True)


def inspect_image(ref: str) -> dict | None:
    """The engine's inspect result for an image, or None when there is none of that name."""
    return get_json(f"/images/{quote(ref, safe='/:')}/json", f"inspect image {ref}", missing=True)


def tag_image(image: str, repository: str, tag: str, what: str) -> None:
    """Tag an image (`docker tag`), moving the tag if another image has it."""
    request("POST", query(f"/images/{image}/tag", repo=repository, tag=tag, force=True), what, ok=(200, 201))


def containers(filters: dict, what: str, *, size: bool = False) -> list[dict]:
    """The containers, running or not, that match the filters (`docker ps -a`); with
    ``size``, each with the size of its writable layer."""
    return request("GET", query("/containers/json", all=True, filters=filters, size=size or None), what,
                   ok=(200,)) or []


def images(filters: dict, what: str) -> list[dict]:
    """The images that match the filters (`docker images`)."""
    return request("GET", query("/images/json", filters=filters), what, ok=(200,)) or []


def remove_container(container: str, what: str, *, force: bool = False, volumes: bool = False) -> None:
    """Remove a container (`docker rm`); with ``force``, a running one too; with ``volumes``,
    its anonymous volumes too (`docker rm -v`)."""
    request("DELETE", query(f"/containers/{container}", force=force or None, v=volumes or None), what, ok=(204,))


def remove_image(image: str, what: str, *, force: bool = False) -> None:
    """Remove an image (`docker rmi`): its untagged parents go with it."""
    request("DELETE", query(f"/images/{image}", force=force), what, ok=(200,))


def pull(repository: str, tag: str, auth: str, what: str) -> Iterator[dict]:
    """Pull REPOSITORY:TAG (`docker pull`): the engine's progress messages, as they come.
    ``auth``: the registry's X-Registry-Auth header."""
    return messages("POST", query("/images/create", fromImage=repository, tag=tag), what,
                    {"X-Registry-Auth": auth})


def default_log_driver() -> str:
    """The current engine's logging driver for containers that name none (`docker info`),
    asked once per engine, or taken from an ``info`` asked already."""
    chosen = engine_choice.chosen().value
    if chosen not in _log_drivers:
        info("ask the engine for its logging driver")
    return _log_drivers[chosen]


_log_drivers: dict[str, str] = {}


def known_log_driver() -> str | None:
    """The current engine's logging driver for containers that name none, if this process
    has asked it already (``default_log_driver``); None if not."""
    return _log_drivers.get(engine_choice.chosen().value)


def info(what: str) -> dict:
    """The current engine's `docker info`, asked now (a swarm's state changes); it settles
    ``default_log_driver`` too, so a deploy asks the engine once, not twice."""
    found = request("GET", "/info", what, ok=(200,))
    _log_drivers.setdefault(engine_choice.chosen().value, found.get("LoggingDriver") or "")
    return found


def offers_buildkit() -> bool:
    """Whether the current engine builds with BuildKit through its API (`POST /build?version=2`):
    a Linux engine of API 1.39 or later (Docker 18.09), as its ping says."""
    return _ping().get("ostype") == "linux" and api_version() >= (1, 39)


def api_version() -> tuple[int, int]:
    """The current engine's API version (the highest it speaks), as (major, minor)."""
    return tuple(int(part) for part in re.findall(r"\d+", _ping().get("api-version", "0"))[:2])


def _ping() -> dict[str, str]:
    """The current engine's ping headers (`Api-Version`, `Ostype`, ...), asked once per
    engine: the cheapest request there is (0.6 ms locally, where `docker version`, which
    gathers the engine's components, takes 7 ms)."""
    chosen = engine_choice.chosen().value
    if chosen not in _pings:
        with open_answer("GET", "/_ping", "ping the engine", timeout=request_timeout(), streamed=False) as answer:
            answer.read()
            _pings[chosen] = answer.headers
    return _pings[chosen]


_pings: dict[str, dict[str, str]] = {}


# -- Swarm: services, their tasks, overlay networks -----------------------------------------


def inspect_service(service: str, what: str, *, missing: bool = False) -> dict | None:
    """A Swarm service by name or id (`docker service inspect`); with ``missing``, None when
    there is none."""
    return request("GET", query(f"/services/{service}"), what, ok=(200,), missing=missing)


def create_service(spec: dict, auth: str, what: str) -> dict:
    """Create a Swarm service from its ServiceSpec; ``auth``: X-Registry-Auth, with which the
    nodes pull its image. The engine's answer: its ID (and warnings)."""
    return _post_with_auth("/services/create", spec, auth, what, ok=(201, 200))


def update_service(service: str, version: int, spec: dict, auth: str, what: str) -> dict | None:
    """Replace a Swarm service's spec (``version``: the one it was read at, so that a change
    made meanwhile is refused, not overwritten)."""
    return _post_with_auth(query(f"/services/{service}/update", version=version), spec, auth, what, ok=(200,))


def _post_with_auth(path: str, body: dict, auth: str, what: str, ok: tuple[int, ...]):
    data = json.dumps(body).encode()
    with open_answer("POST", path, what, body=data, timeout=request_timeout(), streamed=False, ok=None,
                     headers={"Content-Type": "application/json", "X-Registry-Auth": auth}) as answer:
        return _answer(answer.status, answer.read(), what, ok, False)


def services(filters: dict | None = None) -> list[dict]:
    """The swarm's services (those ``filters`` select), or none on an engine that is not a
    swarm manager (503): no service can be deployed there."""
    try:
        return request("GET", query("/services", filters=filters), "list the swarm's services", ok=(200,)) or []
    except Refused as e:
        if e.status == 503:
            return []
        raise


def swarm_tasks(filters: dict, what: str) -> list[dict]:
    """The Swarm tasks that match the filters (`docker service ps`)."""
    return request("GET", query("/tasks", filters=filters), what, ok=(200,)) or []


def create_network(spec: dict, what: str) -> dict:
    """Create a network from its spec (Name, Driver, Labels, ...); its Id."""
    return request("POST", "/networks/create", what, body=spec, ok=(201, 200))


def short_id(object_id: str) -> str:
    """The 12 characters `docker ps` and `docker images` show."""
    return object_id.removeprefix("sha256:")[:12]


def download(path: str, what: str) -> Answer:
    """GET an endpoint whose body is an archive (an export, a save), streamed, with no
    timeout: the daemon may take minutes before its first byte."""
    return open_answer("GET", path, what, timeout=None)


def upload(path: str, what: str, body, content_type: str) -> Answer:
    """POST a streamed request body (an import, a load): the engine's streamed answer."""
    return open_answer("POST", path, what, body=body, headers={"Content-Type": content_type}, timeout=None)


# -- streams and upgraded connections (logs, exec, attach) -----------------------------------
# The same functions for every engine: the local socket by the standard library, any other
# engine through docker-py's public API. No read timeout once the engine has answered: a
# quiet container is not a stuck engine.


def exec_start(exec_id: str, what: str) -> Hijacked:
    """Start an exec made with ``POST /containers/{id}/exec`` (no TTY): its connection."""
    if local.socket_path() is not None:
        return local.hijack(f"/exec/{exec_id}/start", what, {"Detach": False, "Tty": False})
    with engine_errors(what):
        return remote.hijacked(remote.docker_client().api.exec_start(exec_id, socket=True), what)


def attach(container_id: str, what: str, *, stdin: bool) -> Hijacked:
    """Attach to a container's output from now on (and its stdin with ``stdin``), before it
    starts, so that not a byte of this run's output is lost (`docker start -a`)."""
    params = {"stdin": int(stdin), "stdout": 1, "stderr": 1, "stream": 1, "logs": 0}
    if local.socket_path() is not None:
        return local.hijack(query(f"/containers/{container_id}/attach", **params), what)
    with engine_errors(what):
        return remote.hijacked(remote.docker_client().api.attach_socket(container_id, params=params), what)


def stream(path: str, what: str) -> Iterator[bytes]:
    """GET an endpoint whose answer comes as it is made (logs), in pieces as they come. The
    request is made now (an error status is a ``Refused``, a missing engine one line naming
    it); the pieces come with no read timeout."""
    answer = open_answer("GET", path, what, timeout=request_timeout())

    def pieces() -> Iterator[bytes]:
        with answer:
            yield from answer.pieces()

    return pieces()


def logs(container_id: str, what: str, *, follow: bool, tail: str | int = "all",
         tty: bool | None = None) -> Iterator[tuple[int, bytes]]:
    """A container's output (`docker logs`) as (stream, bytes), until it ends or, with
    ``follow``, until the container stops. ``tty``: whether it has a TTY (its output is then
    not multiplexed), asked of the engine when not given."""
    if tty is None:
        container = inspect_container(container_id)
        tty = bool(container and container["Config"].get("Tty"))
    path = query(f"/containers/{container_id}/logs", stdout=True, stderr=True, follow=follow,
                 tail=str(tail), timestamps=False)
    pieces = stream(path, what)

    def taken_apart() -> Iterator[tuple[int, bytes]]:
        frames = Frames(tty)
        try:
            for piece in pieces:
                yield from frames.feed(piece)
        finally:
            pieces.close()

    return taken_apart()


def build_stream(context, params: dict, on_response: Callable[[Answer], object]) -> Iterator[dict]:
    """POST /build with a tar context; the engine's JSON messages as they come. The live
    answer goes to ``on_response`` first: cutting it makes the engine cancel the build.
    No timeout: builds take long."""
    what = f"build {params.get('t')}"
    headers = {"Content-Type": "application/tar"}
    registries = _registry_config()  # credentials for the registries FROM lines pull from
    if registries:
        headers["X-Registry-Config"] = registries
    answer = open_answer("POST", query("/build", **params), what, body=context, headers=headers,
                         timeout=None, ok=None)
    on_response(answer)
    if answer.status != 200:
        with answer:
            raise refusal(what, answer.status, answer.read())

    def messages() -> Iterator[dict]:
        with answer:
            yield from answer.messages()

    return messages()


def _registry_config() -> str | None:
    """The X-Registry-Config header of a build: every registry's credentials from the Docker
    config file (and its credential helpers), as docker-py and the docker CLI send them; None
    when there are none. A config file that names no credentials costs no docker-py."""
    path = Path(os.environ.get("DOCKER_CONFIG") or "~/.docker").expanduser() / "config.json"
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or not (found.get("auths") or found.get("credsStore")
                                            or found.get("credHelpers")):
        return None
    from docker import auth, errors

    try:
        credentials = auth.load_config(config_path=str(path)).get_all_credentials()
    except errors.DockerException as e:  # a credential helper is missing or failed
        raise DockyardError(f"the registries' credentials for the build, from {path}: {e}") from None
    if auth.INDEX_URL not in credentials and auth.INDEX_NAME in credentials:
        credentials[auth.INDEX_URL] = credentials[auth.INDEX_NAME]
    return auth.encode_header(credentials) if credentials else None


def helper_auth(registry: str) -> str:
    """The X-Registry-Auth header of a push or pull when the Docker config file leaves the
    registry's credentials to a credential helper: docker-py's ``docker.auth`` asks it
    ({} when it has none). Never printed."""
    from docker import auth, errors

    try:
        credentials = auth.load_config().resolve_authconfig(registry)
    except errors.DockerException as e:  # the helper program is missing or failed
        raise DockyardError(f"the credentials for the registry {registry}: {e}") from None
    return auth.encode_header(credentials or {}).decode()


def messages(method: str, path: str, what: str, headers: dict) -> Iterator[dict]:
    """The JSON messages of a progress stream (a push, a pull), as they come; the request is
    sent when the first is asked for. No timeout: a push takes as long as its layers."""
    with open_answer(method, path, what, headers=headers, timeout=None, ok=(200, 201)) as answer:
        yield from answer.messages()


def cut(answer: Answer) -> None:
    """Cut a streamed answer's connection from another thread (``Answer.cut``)."""
    answer.cut()
