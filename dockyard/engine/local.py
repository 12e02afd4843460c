"""The local engine's transport: its unix socket spoken to with the standard library.

A connection per request (``connected``), the request sent on it (``send``, which
``client.open_answer`` chooses for a local engine), its answer read as it comes
(``SocketAnswer``), and the upgraded connection of exec and attach written by hand
(``hijack``). No request on a local engine loads docker-py, so `down`, a no-op `up`
and a no-op build never pay for it; which transport serves a request is the chosen
engine's to say (``socket_path``), never what else the process did before.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
from typing import Any, Iterator

from .. import engine_choice
from .address import request_timeout
from .answers import Answer, Hijacked
from .errors import local_failure, refusal


def socket_path() -> str | None:
    """The engine's unix socket, when it is the chosen engine and finding it needs no docker-py."""
    return engine_choice.local_socket()


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
    of a second or more); the rest go through ``remote``. Which one serves a request is the
    engine's to say, never whether something earlier in the process made a docker-py client."""
    path = socket_path()
    return None if path is None else _UnixConnection(path, timeout=timeout)


def connected(timeout: float | None, what: str) -> http.client.HTTPConnection | None:
    """``local_connection``, connected; None for an engine that is not a local socket. An
    engine that is not there, or does not accept, is one line naming it (``local_failure``)."""
    connection = local_connection(timeout)
    if connection is not None:
        try:
            connection.connect()
        except OSError as e:
            connection.close()
            raise local_failure(e, what, connecting=True) from None
    return connection


def send(connection: http.client.HTTPConnection, method: str, path: str, what: str, *, body: Any,
         headers: dict, timeout: float | None, streamed: bool) -> "SocketAnswer":
    """One request on a connection from ``connected`` (``client.open_answer`` says what the
    arguments are): the engine's answer, once it has begun it."""
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
            raise local_failure(e, what) from None
        raise
    return SocketAnswer(connection, response, what)


class SocketAnswer(Answer):
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
            raise local_failure(e, self.what) from None

    def pieces(self, size: int | None = None) -> Iterator[bytes]:
        try:
            while piece := self._response.read1(size or 65536):
                yield piece
        except (OSError, http.client.HTTPException) as e:
            raise local_failure(e, self.what) from None

    def close(self) -> None:
        self._connection.close()

    def cut(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            self._socket.shutdown(socket.SHUT_RDWR)


def hijack(path: str, what: str, body: Any = None) -> Hijacked:
    """POST to an endpoint that upgrades the connection (`Upgrade: tcp`), over the local
    socket: written by hand, since http.client would read past the answer's headers into
    the container's first output and keep it."""
    data = b"" if body is None else json.dumps(body).encode()
    connection = connected(request_timeout(), what)
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
            raise refusal(what, status, _error_body(sock, header, rest))
    except BaseException as e:
        sock.close()
        if isinstance(e, (OSError, ValueError, IndexError)):
            raise local_failure(e if isinstance(e, OSError) else ConnectionError(), what) from None
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
