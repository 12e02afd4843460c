"""The Docker engine: a client per engine in use, and the daemon's errors as user messages.

The transport is fixed by the chosen engine: a local unix socket is spoken to with the
standard library (requests, streamed answers such as builds, logs and archives, uploads,
and the upgraded connections of exec and attach), so that no request there loads
docker-py; any other engine (tcp, TLS, ssh, a context) goes through docker-py's public API
(its APIClient is a requests session), behind the same functions: ``open_answer`` sends
every request, and the operations modules call the functions here, one per endpoint they
use, never docker-py. Errors are told apart by HTTP status (``Refused``) and by exception
type; words are read only where nothing else tells (``_untyped_refusal``, ``port_in_use``). docker-py is imported here, inside functions, so that
``inv --list`` and ``inv -h`` never pay for it.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import http.client
import json
import os
import re
import select
import socket
import ssl  # loaded already with http.client
import struct
import sys
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator
from urllib.parse import urlencode, urlsplit

from .. import engine_choice
from ..errors import DockyardError

if TYPE_CHECKING:
    import docker
    import requests

# One client per engine value (an address or a context's name), made on first use: most
# commands use one engine; a project whose images name engines of their own uses a few.
_clients: "dict[str, docker.DockerClient]" = {}
_clients_lock = threading.Lock()
# Connections kept open: enough for parallel builds and for `clean` removing many at once
# (the docker CLI's `rm` runs up to 50 removals together).
POOL_SIZE = 50
DEFAULT_SOCKET = engine_choice.DEFAULT_SOCKET
# How long an ordinary request (inspect, list, create, start, remove) may go unanswered
# before the engine is called stuck: a busy engine answers these in seconds, docker-py's
# own 60 s default agrees, and an engine that accepts and never answers then costs a
# minute, not docker-py's 300 s of silence. Streams (builds, logs -f, attach, exec,
# export/save/import/load) and commits have no read timeout: they are long by nature.
# DOCKYARD_ENGINE_TIMEOUT (seconds) changes it.
DEFAULT_TIMEOUT = 60
TIMEOUT_VARIABLE = "DOCKYARD_ENGINE_TIMEOUT"

_activity = threading.local()


def request_timeout() -> float:
    """The read (and connect) timeout of ordinary requests, in seconds."""
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text) if text.isascii() else -1.0
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise DockyardError(f"{TIMEOUT_VARIABLE}={text!r}: expected a number of seconds "
                            "greater than 0 (at most 86400)")
    return value


# -- engine selection (the order is engine_choice's; these resolve and connect) ---------


def endpoint() -> str:
    """The address of the chosen engine (see ``engine_choice``); a context's is its host."""
    choice = engine_choice.chosen()
    return _address(choice) if choice.is_address else _current_context().host


def _address(choice: "engine_choice.Choice") -> str:
    """The chosen address, if docker-py can use it; else one line naming what chose it."""
    problem = engine_choice.address_problem(choice.value)
    if problem:
        raise DockyardError(f"the engine address '{choice.value}', chosen by {choice.source}, is not usable: "
                            f"{problem}; expected {engine_choice.FORMS}")
    return choice.value


def where() -> str:
    """The chosen engine for a message: its address and, unless it is the default, what chose it."""
    choice = engine_choice.chosen()
    address = endpoint()
    if choice.source == "default":
        return address
    return engine_choice.said(address, None if choice.is_address else choice.value, choice.source)


def _current_context():
    """The chosen Docker context (its endpoint and TLS files), or None when an address is chosen."""
    choice = engine_choice.chosen()
    return None if choice.is_address else _context(choice.value, choice.source)


def _context(name: str, source: str) -> "engine_choice.Context":
    context = engine_choice.context(name)
    if context is None:
        raise DockyardError(f"Docker context '{name}', chosen by {source}, does not exist "
                            "(see `docker context ls`)")
    problem = engine_choice.address_problem(context.host) if "://" in context.host else "it is not an address"
    if problem:
        raise DockyardError(f"Docker context '{name}', chosen by {source}, has the engine address "
                            f"'{context.host}', which is not usable: {problem}")
    return context


def _environment_tls(address: str):
    """TLS for a tcp:// or https:// address, from the environment: on when DOCKER_CERT_PATH is
    set, DOCKER_TLS_VERIFY is not empty or the address is https://, and then always checking the
    engine's certificate against DOCKER_CERT_PATH's ca.pem (~/.docker's when unset). docker-py's
    ``kwargs_from_env`` skips the check when DOCKER_TLS_VERIFY is unset or empty, so an impostor
    would be sent every request, a push's registry credentials with them; the docker CLI speaks
    no TLS at all then. Not checking is only ever a context's explicit skip-tls-verify."""
    cert_path = os.environ.get("DOCKER_CERT_PATH") or ""
    if not (cert_path or os.environ.get("DOCKER_TLS_VERIFY") or address.startswith("https://")):
        return False
    files = Path(cert_path or "~/.docker").expanduser()
    return _engine_tls(client_cert=(str(files / "cert.pem"), str(files / "key.pem")),
                       ca_cert=str(files / "ca.pem"), verify=True)


def _context_tls(context: "engine_choice.Context"):
    """A context's TLS settings as docker-py takes them (its files: ca.pem, cert.pem, key.pem).
    A context that skips verification speaks TLS unchecked, as the docker CLI does, and says so."""
    if context.tls_dir is None and not context.skip_tls_verify:
        return False

    def held(name: str) -> str | None:
        path = context.tls_dir / f"{name}.pem" if context.tls_dir else None
        return str(path) if path is not None and path.exists() else None

    cert, key, ca = held("cert"), held("key"), held("ca")
    if context.skip_tls_verify:
        _say_unverified(context)
    return _engine_tls(client_cert=(cert, key) if cert and key else None, ca_cert=ca,
                       verify=not context.skip_tls_verify)


# The contexts whose unchecked TLS has been said, so that it is said once per process.
_unverified_said: set[str] = set()


def _say_unverified(context: "engine_choice.Context") -> None:
    """One line on stderr, once, for a context that skips verification, in place of urllib3's
    InsecureRequestWarning (a block per request): that one is silenced for this engine's host
    only, so a request elsewhere that is not verified is still warned about."""
    import urllib3

    if context.name in _unverified_said:
        return
    _unverified_said.add(context.name)
    host = urlsplit(context.host.replace("tcp://", "https://", 1)).hostname or ""
    warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning,
                            message=re.escape(f"Unverified HTTPS request is being made to host '{host}'."))
    print(f"dockyard: warning: the Docker engine at {context.host} (Docker context '{context.name}') is "
          "reached over TLS without checking its certificate (the context has skip-tls-verify)",
          file=sys.stderr, flush=True)


def _engine_tls(**options):
    """docker-py's TLSConfig, except that the engine's CA file (or a choice not to verify)
    holds when REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE is set: requests lets those replace a
    client's own (docker-py issue 2433), so a machine with a company CA bundle could reach no
    engine that has a CA of its own. The docker CLI ignores both; so do we, for the engine."""
    from docker.tls import TLSConfig

    class EngineTLS(TLSConfig):
        def configure_client(self, client) -> None:
            super().configure_client(client)
            if client.verify is not True:  # a CA file, or False
                merge = client.merge_environment_settings

                def engine_ca_first(url, proxies, stream, verify, cert):
                    verify = client.verify if verify is None or verify is True else verify
                    return merge(url, proxies, stream, verify, cert)

                client.merge_environment_settings = engine_ca_first

    return EngineTLS(**options)


def _local_socket() -> str | None:
    """The engine's unix socket, when it is the chosen engine and finding it needs no docker-py."""
    return engine_choice.local_socket()


def _connection(choice: "engine_choice.Choice") -> dict:
    """docker-py's DockerClient arguments for the chosen engine: tcp:// gets TLS from
    DOCKER_TLS_VERIFY / DOCKER_CERT_PATH (``_environment_tls``); ssh:// goes through the
    ssh program (and ~/.ssh/config) by a private unix socket (see ``ssh_relay``)."""
    if choice.is_address:
        address, tls = _address(choice), False
        if address.startswith(("tcp://", "https://")):
            tls = _environment_tls(address)
            address = address.replace("https://", "tcp://", 1)
    else:
        context = _current_context()
        address, tls = context.host, _context_tls(context)
    if address.startswith("ssh://"):
        from .. import ssh_relay

        address = f"unix://{ssh_relay.relay(address, request_timeout()).path}"
    return {"base_url": address, "tls": tls}


def _ssh_failure() -> str | None:
    """What ssh said when it could not reach the chosen ssh:// engine, if that is the case."""
    address = endpoint()
    if not address.startswith("ssh://"):
        return None
    from .. import ssh_relay

    return ssh_relay.failure(address)


# -- end of engine selection (client() below is part of it too) ------------------------

class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def local_connection(timeout: float | None) -> http.client.HTTPConnection | None:
    """A standard-library HTTP connection (not yet connected) to the chosen engine, when it is
    a local unix socket; None otherwise. Requests that take it skip loading docker-py (a tenth
    of a second or more); the rest go through ``client()``. Which one serves a request is the
    engine's to say, never whether something earlier in the process made a docker-py client."""
    socket_path = _local_socket()
    return None if socket_path is None else _UnixConnection(socket_path, timeout=timeout)


def _connected(timeout: float | None, what: str) -> http.client.HTTPConnection | None:
    """``local_connection``, connected; None for an engine that is not a local socket. An
    engine that is not there, or does not accept, is one line naming it (``_local_failure``)."""
    connection = local_connection(timeout)
    if connection is not None:
        try:
            connection.connect()
        except OSError as e:
            connection.close()
            raise _local_failure(e, what, connecting=True) from None
    return connection


def _local_failure(error: OSError | http.client.HTTPException, what: str, *,
                   connecting: bool = False) -> DockyardError:
    """A failure of the local socket, said by the exception's type: not there or refused
    while connecting (the engine is down, or went away during an activity that it answered
    before), stuck (no answer within the timeout), or gone in the middle of an answer."""
    doing = current_activity() or what
    if isinstance(error, TimeoutError):
        return DockyardError(_stuck(doing))
    if connecting and current_activity() is None:
        return DockyardError(f"{what}: {_cannot_reach(where(), _socket_reason(error))}")
    if connecting:
        return DockyardError(f"{doing}: the Docker engine at {endpoint()} went away "
                             f"({_socket_reason(error)}); is it still running?")
    return DockyardError(lost(doing))


def _socket_reason(error: BaseException) -> str:
    """Why a unix socket could not be reached, by the exception's type."""
    if isinstance(error, FileNotFoundError):
        return "no such socket"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, PermissionError):
        return "permission denied: add yourself to the docker group or use sudo"
    return getattr(error, "strerror", None) or type(error).__name__


def get_json(path: str, what: str, *, missing: bool = False):
    """A read-only GET answered in JSON (``request``'s, with 200 the only good answer).
    ``missing``: None when the engine has no such object (404), instead of an error."""
    return request("GET", path, what, ok=(200,), missing=missing)


class Refused(DockyardError):
    """The engine answered with an error status, on either transport; ``status`` and
    ``explanation`` (the daemon's own words) let a caller tell "in use" (409) from a real
    failure. The one place where a status becomes words: by its number, never by its text."""

    def __init__(self, what: str, status: int, explanation: str) -> None:
        label = f"not found ({explanation})" if status == 404 else explanation
        super().__init__(f"{what}: {label}")
        self.status = status
        self.explanation = explanation


def query(path: str, **params) -> str:
    """``path`` with its query string; a ``filters`` dict is sent as the engine takes it
    (each value a list, JSON-encoded), as docker-py does; another list is the parameter
    repeated (``names=a&names=b``)."""
    from urllib.parse import quote, urlencode

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


# -- one request, on the transport the chosen engine fixes ------------------------------


class Answer:
    """The engine's answer to one request, read as it comes, on either transport: its
    ``status``, then its body whole (``read``), in pieces (``pieces``) or as the JSON
    messages of a progress stream (``messages``). ``cut`` ends it from another thread."""

    status: int
    headers: dict[str, str]  # by their names in lower case

    def __init__(self, what: str) -> None:
        self.what = what

    def read(self) -> bytes:
        return b"".join(self.pieces())

    def pieces(self, size: int | None = None) -> Iterator[bytes]:
        """The body in pieces as they come (``size``: at most that many bytes each)."""
        raise NotImplementedError

    def messages(self) -> Iterator[dict]:
        """The JSON objects of a progress stream (a build, a push, a load), as they come:
        the engine writes them one after another, a line each or not."""
        decoder, text = json.JSONDecoder(), codecs.getincrementaldecoder("utf-8")("replace")
        pending = ""
        for piece in self.pieces():
            pending += text.decode(piece)
            while pending := pending.lstrip():
                try:
                    message, end = decoder.raw_decode(pending)
                except ValueError:
                    break  # its end is still to come
                pending = pending[end:]
                yield message
        if pending.strip():
            raise DockyardError(f"{self.what}: the Docker engine at {endpoint()} answered with "
                                "something that is not JSON")

    def close(self) -> None:
        raise NotImplementedError

    def cut(self) -> None:
        """Cut the connection from another thread. Closing would wait for the thread that
        reads it; a shutdown ends that read, and the engine sees its client gone (and
        cancels a build)."""
        raise NotImplementedError

    def __enter__(self) -> "Answer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _SocketAnswer(Answer):
    """An answer over the local socket, read with the standard library."""

    def __init__(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse,
                 what: str) -> None:
        super().__init__(what)
        self.status = response.status
        self.headers = {name.lower(): value for name, value in response.getheaders()}
        self._connection, self._response = connection, response
        self._socket = connection.sock

    def read(self) -> bytes:
        try:
            return self._response.read()
        except (OSError, http.client.HTTPException) as e:
            raise _local_failure(e, self.what) from None

    def pieces(self, size: int | None = None) -> Iterator[bytes]:
        try:
            while piece := self._response.read1(size or 65536):
                yield piece
        except (OSError, http.client.HTTPException) as e:
            raise _local_failure(e, self.what) from None

    def close(self) -> None:
        self._connection.close()

    def cut(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            self._socket.shutdown(socket.SHUT_RDWR)


class _DockerPyAnswer(Answer):
    """An answer through docker-py's client: a ``requests`` response, streamed."""

    def __init__(self, response: "requests.Response", what: str) -> None:
        super().__init__(what)
        self.status = response.status_code
        self.headers = {name.lower(): value for name, value in response.headers.items()}
        self._response = response

    def pieces(self, size: int | None = None) -> Iterator[bytes]:
        with engine_errors(self.what):
            yield from self._response.iter_content(chunk_size=size)

    def close(self) -> None:
        self._response.close()

    def cut(self) -> None:
        # urllib3 keeps the socket of a streamed answer on its connection; reaching it is the
        # only way to end a read that another thread is blocked in.
        raw = self._response.raw
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


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
    connection = _connected(request_timeout(), what)
    if connection is None:
        with engine_errors(what):
            response = _send_through_docker_py(method, path, data=body, headers=headers, stream=streamed,
                                               timeout=None if streamed else timeout)
        answer: Answer = _DockerPyAnswer(response, what)
    else:
        try:
            connection.sock.settimeout(timeout)
            try:
                connection.request(method, path, body=body, headers=headers)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the engine may answer before it has read the whole body: its answer says why
            response = connection.getresponse()
            if streamed:
                connection.sock.settimeout(None)
        except BaseException as e:
            connection.close()
            if isinstance(e, (OSError, http.client.HTTPException)):
                raise _local_failure(e, what) from None
            raise
        answer = _SocketAnswer(connection, response, what)
    if ok is not None and answer.status not in ok:
        with answer:
            raise _refusal(what, answer.status, answer.read())
    return answer


def _send_through_docker_py(method: str, path: str, **options) -> "requests.Response":
    """One request to the chosen engine through docker-py's client, which is a requests
    session (its public ``request``), at the API version it agreed with the engine."""
    api = client().api
    return api.request(method, f"{api.base_url}/v{api.api_version}{path}", **options)


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
        raise _refusal(what, status, answer)
    try:
        return json.loads(answer) if answer.strip() else None
    except ValueError:
        raise DockyardError(f"{what}: the Docker engine at {endpoint()} answered with something "
                            "that is not JSON") from None


def _refusal(what: str, status: int, answer: bytes) -> "Refused":
    """The engine's error answer (JSON with its message, or plain text) as a ``Refused``."""
    try:
        said = json.loads(answer).get("message")
    except (ValueError, AttributeError):
        said = None
    return Refused(what, status, str(said or answer.decode("utf-8", "replace").strip() or f"HTTP {status}"))


def get_archive(container_id: str, path: str, what: str) -> bytes | None:
    """`GET /containers/{id}/archive`: a tar of ``path`` in the container (a file: one member,
    with its owner and mode), or None when there is no such path. For small files (a watch's
    sync): the answer is read whole."""
    with open_answer("GET", _archive_path(container_id, path), what,
                     timeout=request_timeout(), streamed=False, ok=None) as answer:
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise _refusal(what, answer.status, answer.read())
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


def client() -> "docker.DockerClient":
    """A connected client to the current engine (see ``using``), made on first use and kept
    for the process; an unreachable engine is one clear error that names it."""
    choice = engine_choice.chosen()
    found = _clients.get(choice.value)
    if found is not None:
        return found
    import docker

    with _clients_lock:  # parallel builds ask at once: one client per engine
        if choice.value not in _clients:
            options = {"timeout": request_timeout(), "max_pool_size": POOL_SIZE}
            try:
                _clients[choice.value] = docker.DockerClient(**_connection(choice), **options)
            except docker.errors.DockerException as e:
                if _timed_out(e):
                    raise DockyardError(_stuck(current_activity() or "connect")) from None
                if current_activity() is not None:  # it answered the standard-library requests before
                    raise DockyardError(f"{current_activity()}: the Docker engine at {endpoint()} went away "
                                        f"({_reason(e)}); is it still running?") from None
                raise unreachable(where(), _ssh_failure() or e) from None
        return _clients[choice.value]


@contextlib.contextmanager
def using(choice: "engine_choice.Choice | None") -> Iterator[None]:
    """Within: the engine an image names (its ``engine`` key; None: it names none, so the
    project's engine), for the work done for that image. A setting or the environment still
    wins (``engine_choice``)."""
    with engine_choice.image_layer(choice.value if choice else None, choice.source if choice else ""):
        yield


def close() -> None:
    """Close the clients' connections. The engine cancels a build whose client went away, so
    this is how an interrupted build stops when the process lives on (library use)."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for made in clients:
        made.close()


def unreachable(where: str, error: BaseException | str) -> DockyardError:
    """``error``: what went wrong, or (ssh://) what ssh said."""
    if isinstance(error, str):
        return DockyardError(f"cannot reach the Docker engine at {where} ({error}). Check that ssh "
                             "gets there without a prompt and that `docker version` works there.")
    tls = _tls_failure(error)
    if tls is not None:
        return DockyardError(f"cannot reach the Docker engine at {where}: TLS failed ({tls[0]}). {tls[1]}")
    return DockyardError(_cannot_reach(where, _reason(error)))


def _cannot_reach(where: str, reason: str) -> str:
    return (f"cannot reach the Docker engine at {where} ({reason}). Start it (e.g. `sudo systemctl "
            f"start docker`) or {_choose_another(engine_choice.chosen().source)}.")


def _choose_another(source: str) -> str:
    """How to send dockyard to another engine: through what chose this one (a ``Choice.source``),
    since pointing DOCKER_HOST elsewhere does nothing when a setting or DOCKYARD_ENGINE wins."""
    if source == "default":
        return "point DOCKER_HOST at a running engine"
    if source == "the Docker CLI's current context":
        return "switch the Docker CLI to another context (`docker context use NAME`)"
    return f"point {source.split(', which names', 1)[0]} at a running engine"


def _tls_failure(error: BaseException) -> tuple[str, str] | None:
    """(why, what to do) when TLS between us and a tcp:// engine is what failed, else None:
    our certificate files missing (docker-py checks them before connecting), a handshake the
    engine or we refused, or plain HTTP sent to an engine that speaks only TLS. Told by the
    exceptions' types, ssl's reason codes and the engine's status, not by their messages."""
    import docker

    check = ("Check that the client's TLS files (DOCKER_CERT_PATH's ca.pem, cert.pem and key.pem, or "
             "the Docker context's) are the ones made for this engine, by its CA.")
    if isinstance(error, docker.errors.TLSParameterError):
        files = os.environ.get("DOCKER_CERT_PATH") or "~/.docker"
        held = Path(files).expanduser()  # docker-py checks the client's pair first, then the CA
        missing = "ca.pem" if (held / "cert.pem").is_file() and (held / "key.pem").is_file() else "cert.pem and key.pem"
        return f"{files} has no {missing}", check
    refused = _cause(error, docker.errors.APIError)
    if refused is not None and refused.status_code == 400:  # plain HTTP, said back in plain HTTP
        return ("the engine speaks only TLS and was sent plain HTTP",
                "Set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH, or use a Docker context with TLS files.")
    failed = _cause(error, ssl.SSLError)
    if failed is None:
        return None
    reason = str(getattr(failed, "reason", None) or "")
    if reason == "WRONG_VERSION_NUMBER":  # it answered in plain HTTP
        return ("the engine does not speak TLS; it answered in plain HTTP",
                "For a plain tcp:// engine unset DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (or use a context "
                "without TLS files); better, turn TLS on at the engine (dockerd --tlsverify).")
    said = reason.lower().replace("_", " ")
    if "ALERT" in reason:  # the engine ended the handshake
        return f"the engine refused this client: {said}; no certificate, or one its CA did not sign", check
    if said and not isinstance(failed, ssl.SSLEOFError):
        return said, check
    return "the TLS handshake did not complete", check


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and those it came from: docker-py, requests and urllib3 wrap the socket's
    own error (as its cause, its ``reason`` or an argument)."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        found = pending.pop(0)
        if id(found) in seen:
            continue
        seen.add(id(found))
        yield found
        reason = getattr(found, "reason", None)
        pending += [e for e in (found.__cause__, found.__context__, reason, *getattr(found, "args", ()))
                    if isinstance(e, BaseException)]


def _cause(error: BaseException, kind):
    """The first of the error and its causes that is of this type, or None."""
    return next((e for e in _causes(error) if isinstance(e, kind)), None)


def _reason(error: BaseException) -> str:
    """Why the engine could not be reached, by the type of the socket's error; else the
    innermost error's own words."""
    import requests
    import urllib3

    if _timed_out(error):
        return "timed out"
    found = _cause(error, (FileNotFoundError, ConnectionRefusedError, PermissionError))
    if found is not None:
        return _socket_reason(found)
    if _untyped_refusal(error):
        return _untyped_refusal(error)
    inner = [e for e in _causes(error) if not isinstance(e, (requests.exceptions.RequestException,
                                                             urllib3.exceptions.HTTPError))]
    text = str(inner[-1] if inner else error)
    return text if len(text) <= 200 else text[:200] + "..."


@contextlib.contextmanager
def engine_errors(what: str) -> Iterator[None]:
    """Turn the daemon's refusals into one line that says what failed and why; an engine
    that stops answering, or goes away mid-answer, is named with what was in flight."""
    import docker
    import requests
    import urllib3

    try:
        yield
    except docker.errors.APIError as e:
        raise Refused(what, e.status_code or 500, explanation(e)) from None
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
            http.client.HTTPException, docker.errors.DockerException,
            TimeoutError, ConnectionResetError, ConnectionAbortedError) as e:
        # Not BrokenPipeError: that is our own stdout closed, which DockyardTask handles.
        if isinstance(e, docker.errors.DockerException) and not _is_connection_error(e) \
                and not _timed_out(e):
            raise DockyardError(f"{what}: {e}") from None
        activity = current_activity()
        doing = activity or what
        if _timed_out(e):
            raise DockyardError(_stuck(doing)) from None
        if _never_connected(e) and activity is None:
            raise DockyardError(f"{doing}: {unreachable(endpoint(), _ssh_failure() or e)}") from None
        if _never_connected(e):  # it answered a moment ago, in this same activity
            raise DockyardError(f"{doing}: the Docker engine at {endpoint()} went away "
                                f"({_reason(e)}); is it still running?") from None
        raise DockyardError(lost(doing)) from None


def _is_connection_error(error: BaseException) -> bool:
    """The error came from the connection (a socket's error), not from docker-py's checks."""
    import requests

    return _cause(error, (OSError, requests.exceptions.ConnectionError)) is not None


def lost(doing: str) -> str:
    """The engine closed the connection before its answer was complete."""
    return (f"{doing}: the Docker engine at {endpoint()} went away before finishing its "
            "answer; is it still running?")


def _stuck(doing: str) -> str:
    return (f"{doing}: the Docker engine at {endpoint()} did not answer within "
            f"{request_timeout():g} s; it accepts connections but is stuck or overloaded "
            f"(set {TIMEOUT_VARIABLE} to wait longer)")


def _timed_out(error: BaseException) -> bool:
    import requests
    import urllib3

    return any(isinstance(e, (TimeoutError, requests.exceptions.Timeout, urllib3.exceptions.TimeoutError))
               # urllib3's NewConnectionError is a ConnectTimeoutError by descent only: a refusal
               and not isinstance(e, urllib3.exceptions.NewConnectionError) for e in _causes(error))


def _never_connected(error: BaseException) -> bool:
    """The engine refused the connection (or its socket is gone): it is down, not mid-answer."""
    import urllib3

    found = _cause(error, (ConnectionRefusedError, FileNotFoundError, PermissionError,
                           urllib3.exceptions.NewConnectionError))
    return found is not None or _untyped_refusal(error) is not None


def _untyped_refusal(error: BaseException) -> str | None:
    """The one reading of words left: an error that carries no socket error to go by (one
    made from a message alone), whose words say the connection was refused or the socket is
    missing. None for any error that has a socket error among its causes."""
    import requests

    if any(isinstance(e, OSError) and not isinstance(e, requests.exceptions.RequestException)
           for e in _causes(error)):  # requests' errors are OSErrors by descent
        return None
    text = str(error)
    if "Connection refused" in text:
        return "connection refused"
    if "No such file or directory" in text:
        return "no such socket"
    return None


@contextlib.contextmanager
def doing(activity: str) -> Iterator[None]:
    """Name what is in flight (e.g. "waiting for httpd to answer"), for the message a lost
    or stuck engine gives within it, instead of the request that found it gone."""
    outer = current_activity()
    _activity.value = activity
    try:
        yield
    finally:
        _activity.value = outer


def current_activity() -> str | None:
    return getattr(_activity, "value", None)


def explanation(error: "docker.errors.APIError") -> str:
    """The daemon's own words, without docker-py's status-line wrapper."""
    text = getattr(error, "explanation", None) or str(error)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).strip()


def inspect_container(ref: str) -> dict | None:
    """The engine's inspect result for a container, or None when there is none of that name."""
    from urllib.parse import quote

    return get_json(f"/containers/{quote(ref, safe='/:')}/json", f"inspect container {ref}", missing=True)


def inspect_image(ref: str) -> dict | None:
    """The engine's inspect result for an image, or None when there is none of that name."""
    from urllib.parse import quote

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

STDOUT, STDERR = 1, 2


class Frames:
    """The engine's multiplexed output of a container without a TTY, taken apart: each piece
    comes after an 8-byte header (the stream, 1 or 2; three zero bytes; the piece's length,
    big-endian). A container with a TTY sends its output as it is: all of it is stdout."""

    def __init__(self, tty: bool = False) -> None:
        self.tty = tty
        self._pending = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The whole pieces that ``data`` completes, as (stream, bytes)."""
        if self.tty:
            return [(STDOUT, data)] if data else []
        self._pending += data
        pieces = []
        while len(self._pending) >= 8:
            size = struct.unpack(">I", self._pending[4:8])[0]
            if len(self._pending) < 8 + size:
                break
            stream = self._pending[0]
            pieces.append((stream if stream == STDERR else STDOUT, self._pending[8:8 + size]))
            self._pending = self._pending[8 + size:]
        return pieces


class Hijacked:
    """An upgraded connection (exec start, attach): our input to the container one way, its
    output the other. ``socket`` is for a caller that waits on it with ``select``; ``receive``
    gives first what came with the engine's answer, before the socket's own bytes."""

    def __init__(self, sock: socket.socket, what: str, first: bytes = b"", keep: object = None) -> None:
        self.socket = sock
        self.what = what
        self._first = first
        self._keep = keep  # what must stay open with it (docker-py's response)

    def buffered(self) -> bool:
        """Bytes are at hand that ``select`` on the socket would not show."""
        pending = getattr(self.socket, "pending", None)  # a TLS socket's decrypted bytes
        return bool(self._first) or bool(pending and pending())

    def receive(self) -> bytes:
        """The next bytes of the container's output; b"" when it has ended."""
        if self._first:
            data, self._first = self._first, b""
            return data
        try:
            return self.socket.recv(65536)
        except OSError as e:
            if isinstance(e, ssl.SSLZeroReturnError):  # TLS's own end, after ``end_input``
                return b""
            raise _local_failure(e, self.what) from None

    def output(self, *, tty: bool = False) -> Iterator[tuple[int, bytes]]:
        """The container's output as (stream, bytes) until it ends."""
        frames = Frames(tty)
        while data := self.receive():
            yield from frames.feed(data)

    def send(self, data: bytes) -> None:
        self.socket.sendall(data)

    def end_input(self) -> None:
        """Our input ended: the container's stdin sees its end; its output goes on. Over TLS
        that is TLS's own end of writing, the close_notify alert, as the docker CLI sends it:
        a TCP half-close under TLS makes the engine drop the connection, output and all."""
        if not hasattr(self.socket, "unwrap"):
            with contextlib.suppress(OSError):
                self.socket.shutdown(socket.SHUT_WR)
            return
        self.socket.setblocking(False)
        try:
            while piece := self.socket.recv(65536):  # output at hand, taken before the alert
                self._first += piece
        except OSError:  # nothing more at hand
            pass
        try:
            _send_close_notify(self.socket)
        finally:
            self.socket.setblocking(True)

    def close(self) -> None:
        for part in (self.socket, getattr(self._keep, "_response", None), self._keep):
            if part is not None:
                with contextlib.suppress(OSError, ValueError):
                    part.close()


def _send_close_notify(tls: ssl.SSLSocket) -> None:
    """Send TLS's close_notify alert on ``tls`` (non-blocking) and go on reading from it.

    Python sends the alert only through ``unwrap``, whose OpenSSL shutdown writes the alert,
    then reads the connection for the engine's own alert. Output that arrives in that instant
    is an error to OpenSSL 3 ("application data after close notify"), which ends the
    connection: the container's output was cut short, seen in 5 of 12 tries while it streamed.
    So the shutdown runs with an empty stand-in socket in the connection's place: the alert
    is written there and its read finds nothing; then the alert's bytes are sent on the
    connection itself, whose incoming bytes OpenSSL has not touched."""
    fd = tls.fileno()
    connection = os.dup(fd)
    stand_in, alert = socket.socketpair()
    try:
        stand_in.setblocking(False)
        alert.setblocking(False)
        os.dup2(stand_in.fileno(), fd)
        try:
            tls.unwrap()
        except ssl.SSLWantReadError:  # its wait for the engine's alert, which is not on the stand-in
            pass
        finally:
            os.dup2(connection, fd)
        data = b""
        with contextlib.suppress(BlockingIOError):
            while piece := alert.recv(4096):
                data += piece
        while data:  # a few dozen bytes: the connection takes them at once, or soon
            try:
                data = data[os.write(fd, data):]
            except BlockingIOError:
                select.select([], [fd], [])
    finally:
        os.close(connection)
        stand_in.close()
        alert.close()


def exec_start(exec_id: str, what: str) -> Hijacked:
    """Start an exec made with ``POST /containers/{id}/exec`` (no TTY): its connection."""
    if _local_socket() is not None:
        return _hijack(f"/exec/{exec_id}/start", what, {"Detach": False, "Tty": False})
    with engine_errors(what):
        return _hijacked_through_docker_py(client().api.exec_start(exec_id, socket=True), what)


def attach(container_id: str, what: str, *, stdin: bool) -> Hijacked:
    """Attach to a container's output from now on (and its stdin with ``stdin``), before it
    starts, so that not a byte of this run's output is lost (`docker start -a`)."""
    params = {"stdin": int(stdin), "stdout": 1, "stderr": 1, "stream": 1, "logs": 0}
    if _local_socket() is not None:
        return _hijack(query(f"/containers/{container_id}/attach", **params), what)
    with engine_errors(what):
        return _hijacked_through_docker_py(client().api.attach_socket(container_id, params=params), what)


def _hijack(path: str, what: str, body: Any = None) -> Hijacked:
    """POST to an endpoint that upgrades the connection (`Upgrade: tcp`), over the local
    socket: written by hand, since http.client would read past the answer's headers into
    the container's first output and keep it."""
    data = b"" if body is None else json.dumps(body).encode()
    connection = _connected(request_timeout(), what)
    sock = connection.sock
    connection.sock = None  # ours now: http.client must neither reuse nor close it
    head = (f"POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
    try:
        sock.sendall(head.encode() + data)
        received = b""
        while b"\r\n\r\n" not in received:
            piece = sock.recv(65536)
            if not piece:
                raise ConnectionResetError("the engine closed the connection")
            received += piece
        header, _, rest = received.partition(b"\r\n\r\n")
        status = int(header.split(None, 2)[1])
        if status not in (101, 200):  # 200: an engine that upgrades without saying so
            raise _refusal(what, status, _error_body(sock, header, rest))
    except BaseException as e:
        sock.close()
        if isinstance(e, (OSError, ValueError, IndexError)):
            raise _local_failure(e if isinstance(e, OSError) else ConnectionError(), what) from None
        raise
    sock.settimeout(None)
    return Hijacked(sock, what, rest)


def _error_body(sock: socket.socket, header: bytes, rest: bytes) -> bytes:
    """The body of an error answer to an upgrade: as long as its Content-Length says, or,
    sent in chunks, up to the last chunk (its message is then found in it)."""
    length = re.search(rb"(?im)^content-length:\s*(\d+)", header)
    while (len(rest) < int(length[1])) if length else not rest.endswith(b"0\r\n\r\n"):
        piece = sock.recv(65536)
        if not piece:
            break
        rest += piece
    if length:
        return rest[:int(length[1])]
    found = re.search(rb"\{.*\}", rest, re.S)  # the JSON between the chunks' sizes
    return found[0] if found else rest


def _hijacked_through_docker_py(sock, what: str) -> Hijacked:
    """docker-py's socket of an upgraded connection, without its client's read timeout. It
    is a file object over the socket on a plain connection, the TLS socket itself on TLS.
    docker-py hands out what lies under http.client's read buffer, and the engine may send
    a command's first output with its answer's headers (over TLS it does): the bytes that
    buffer holds come first, taken without waiting (a non-blocking read of at most what
    is there)."""
    raw = getattr(sock, "_sock", sock)
    buffer = getattr(getattr(getattr(sock, "_response", None), "raw", None), "_fp", None)
    first = b""
    if buffer is not None and buffer.fp is not None:
        raw.settimeout(0)
        try:
            first = buffer.fp.read1(65536) or b""
        except OSError:  # nothing there (a TLS socket says so with an error)
            first = b""
    raw.settimeout(None)
    return Hijacked(raw, what, first, keep=sock)


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
            raise _refusal(what, answer.status, answer.read())

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


def port_in_use(error_text: str) -> bool:
    """Whether a start's refusal says its host port is taken. The engine answers that with
    500, as it does any other failure to start (docker-py's own errors say so by its words
    too): its words are all there is to tell it by."""
    return "port is already allocated" in error_text or "address already in use" in error_text
