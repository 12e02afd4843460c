"""Any engine that is not a local socket (tcp, TLS, ssh, a Docker context's): reached
through docker-py's public API, behind the same interface as the local socket.

docker-py's ``APIClient`` is a requests session (``request``, ``base_url``, ``api_version``),
and ``docker.tls`` sets up TLS as the docker CLI does; both carry a remote transport well.
Here: one ``DockerClient`` per engine, its connection settings (TLS from the environment or
the context's files, ssh:// through ``ssh_relay``), a request sent through it (``send``),
its answer (``DockerPyAnswer``) and its upgraded connections (``hijacked``). docker-py is
imported inside the functions that use it, so that a local engine never loads it
(``dockyard/lazy.py``).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterator
from urllib.parse import urlsplit

from .. import engine_choice
from ..errors import DockyardError
from .address import checked_address, current_context, endpoint, request_timeout, where
from .answers import Answer, Hijacked
from .errors import current_activity, engine_errors, reason, ssh_failure, stuck, timed_out, unreachable

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


def _connection(choice: "engine_choice.Choice") -> dict:
    """docker-py's DockerClient arguments for the chosen engine: tcp:// gets TLS from
    DOCKER_TLS_VERIFY / DOCKER_CERT_PATH (``_environment_tls``); ssh:// goes through the
    ssh program (and ~/.ssh/config) by a private unix socket (see ``ssh_relay``)."""
    if choice.is_address:
        address, tls = checked_address(choice), False
        if address.startswith(("tcp://", "https://")):
            tls = _environment_tls(address)
            address = address.replace("https://", "tcp://", 1)
    else:
        context = current_context()
        address, tls = context.host, _context_tls(context)
    if address.startswith("ssh://"):
        from . import ssh_relay

        address = f"unix://{ssh_relay.relay(address, request_timeout()).path}"
    return {"base_url": address, "tls": tls}


def docker_client() -> "docker.DockerClient":
    """docker-py's client to the current engine (see ``client.using``), made on first use and kept
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
                if timed_out(e):
                    raise DockyardError(stuck(current_activity() or "connect")) from None
                if current_activity() is not None:  # it answered the standard-library requests before
                    raise DockyardError(f"{current_activity()}: the Docker engine at {endpoint()} went away "
                                        f"({reason(e)}); is it still running?") from None
                raise unreachable(where(), ssh_failure() or e) from None
        return _clients[choice.value]


def close() -> None:
    """Close the clients' connections. The engine cancels a build whose client went away, so
    this is how an interrupted build stops when the process lives on (library use)."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for made in clients:
        made.close()


class DockerPyAnswer(Answer):
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


def send(method: str, path: str, **options) -> "requests.Response":
    """One request to the chosen engine through docker-py's client, which is a requests
    session (its public ``request``), at the API version it agreed with the engine."""
    api = docker_client().api
    return api.request(method, f"{api.base_url}/v{api.api_version}{path}", **options)


def hijacked(sock, what: str) -> Hijacked:
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
