"""BuildKit's build trace, shown as the engine reports it.

Through the engine's API (`POST /build?version=2`, the context tar as the body, no session),
BuildKit reports progress as messages of id ``moby.buildkit.trace`` whose ``aux`` is a
base64 protobuf ``StatusResponse`` (moby/buildkit's api/services/control/control.proto):
vertexes (the steps: digest, name, cached, started, completed, error) and their logs. This
module reads the few fields dockyard shows with a dozen lines of protobuf wire format, and
renders them as `docker build --progress=plain` does: ``#N NAME``, the step's output,
``#N CACHED`` or ``#N DONE 0.3s``, ``#N ERROR: ...``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Iterator

TRACE = "moby.buildkit.trace"
IMAGE_ID = "moby.image.id"
LOG_LINES_KEPT = 20


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """A protobuf message's (field number, value) pairs: ints for varints, bytes for the
    length-delimited (strings, bytes, embedded messages); fixed-size values as bytes."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 2:
            size, at = _varint(data, at)
            value, at = data[at:at + size], at + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, at = data[at:at + size], at + size
        else:
            raise ValueError(f"protobuf wire type {wire} is not one BuildKit's status uses")
        yield number, value


def _seconds(timestamp: bytes) -> float:
    """A google.protobuf.Timestamp: seconds (1) and nanos (2)."""
    parts = dict(fields(timestamp))
    return int(parts.get(1, 0)) + int(parts.get(2, 0)) / 1e9


@dataclass
class Vertex:
    """A step as one StatusResponse reports it (control.proto's Vertex)."""
    digest: str
    name: str = ""
    cached: bool = False
    started: float | None = None
    completed: float | None = None
    error: str = ""


@dataclass
class Log:
    """Output of a step (control.proto's VertexLog): stream 1 or 2, and its bytes."""
    vertex: str
    stream: int
    data: bytes


def decode(aux: str) -> tuple[list[Vertex], list[Log]]:
    """A trace message's vertexes (field 1) and logs (field 3)."""
    vertexes, logs = [], []
    for number, value in fields(base64.b64decode(aux)):
        if number == 1:
            vertex = Vertex(digest="")
            for n, v in fields(value):
                if n == 1:
                    vertex.digest = v.decode()
                elif n == 3:
                    vertex.name = v.decode("utf-8", "replace")
                elif n == 4:
                    vertex.cached = bool(v)
                elif n == 5:
                    vertex.started = _seconds(v)
                elif n == 6:
                    vertex.completed = _seconds(v)
                elif n == 7:
                    vertex.error = v.decode("utf-8", "replace")
            vertexes.append(vertex)
        elif number == 3:
            log = Log(vertex="", stream=1, data=b"")
            for n, v in fields(value):
                if n == 1:
                    log.vertex = v.decode()
                elif n == 3:
                    log.stream = int(v)
                elif n == 4:
                    log.data = v
            logs.append(log)
    return vertexes, logs


@dataclass
class _Step:
    number: int = 0
    name: str = ""
    announced: bool = False
    finished: bool = False
    partial: bytes = b""
    lines: list[str] = field(default_factory=list)


class Progress:
    """The trace of one build as plain lines: ``feed`` each trace message's ``aux``, and it
    returns the lines to show. Steps are numbered in the order they are first shown. The
    engine's own bookkeeping ("[internal] load ...") is shown only when it fails."""

    def __init__(self) -> None:
        self.steps: dict[str, _Step] = {}
        self.shown = 0
        self.failed: _Step | None = None

    def feed(self, aux: str) -> list[str]:
        lines: list[str] = []
        vertexes, logs = decode(aux)
        for vertex in vertexes:
            step = self._step(vertex.digest)
            step.name = vertex.name or step.name
            shown = not step.name.startswith("[internal]") or bool(vertex.error)
            if shown and not step.announced and (vertex.started or vertex.cached or vertex.error):
                step.announced = True
                self._number(step)
                lines.append(f"#{step.number} {step.name}")
            if step.finished:
                continue
            if vertex.error:
                step.finished = True
                self.failed = step
                lines += [f"#{step.number} {line}" for line in self._flush(step)]
                lines.append(f"#{step.number} ERROR: {vertex.error}")
            elif vertex.cached:
                step.finished = True
                if shown:
                    lines.append(f"#{step.number} CACHED")
            elif vertex.completed and vertex.started:
                step.finished = True
                if shown:
                    lines += [f"#{step.number} {line}" for line in self._flush(step)]
                    lines.append(f"#{step.number} DONE {max(0.0, vertex.completed - vertex.started):.1f}s")
        for log in logs:
            step = self._number(self._step(log.vertex))
            *complete, step.partial = (step.partial + log.data).split(b"\n")
            for raw in complete:
                line = raw.decode("utf-8", "replace").rstrip("\r")
                step.lines = (step.lines + [line])[-LOG_LINES_KEPT:]
                lines.append(f"#{step.number} {line}")
        return lines

    def failure(self) -> tuple[str | None, list[str]]:
        """The failing step's name and its last lines of output, for the error message."""
        step = self.failed
        return (None, []) if step is None else (step.name, step.lines + self._flush(step))

    def _step(self, digest: str) -> _Step:
        return self.steps.setdefault(digest, _Step())

    def _number(self, step: _Step) -> _Step:
        """Steps are numbered as they are first shown: 1, 2, 3 in the order a reader sees."""
        if not step.number:
            self.shown += 1
            step.number = self.shown
        return step

    @staticmethod
    def _flush(step: _Step) -> list[str]:
        """A last line of output without its newline."""
        if not step.partial:
            return []
        line, step.partial = step.partial.decode("utf-8", "replace"), b""
        step.lines = (step.lines + [line])[-LOG_LINES_KEPT:]
        return [line]
