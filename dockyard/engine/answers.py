"""What the engine sends back, the same on either transport: an ``Answer`` (a status, then
a body read whole, in pieces as it comes, or as a progress stream's JSON messages), the
``Frames`` of a container's multiplexed output, and a ``Hijacked`` connection (exec start,
attach: input one way, output the other; its end of input over TLS is TLS's close_notify).

Apart from the transports, which each make these (``local``, ``remote``), and from the
client, which hands them to the operations.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import select
import socket
import ssl  # loaded already with http.client
import struct
from typing import Iterator

from ..errors import DockyardError
from .address import endpoint
from .errors import local_failure


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


# -- a container's output, and upgraded connections (exec, attach) -------------------------

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
            raise local_failure(e, self.what) from None

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
