"""Dependencies between a project's images, read from their Dockerfiles' ``FROM`` lines.

A ``FROM`` may name its image through a global build argument (``ARG BASE=demo/base``
before the first ``FROM``, then ``FROM ${BASE}``); the reference is substituted as the
engine does, with the image's ``build_args`` overriding the ``ARG`` default, so such a
parent is still found. This module knows image references, not containers.toml: config
imports it, never the other way round.

The FROM chain is read whenever containers.toml is loaded (every command, `inv --list` too:
build order, cycles and engines are checked then), so it is read within bounds: a regular
file of at most ``MAX_DOCKERFILE`` bytes, no expanded value (an ``ARG``'s, a ``FROM``'s
reference) over ``MAX_VALUE`` characters, and neither the global ``ARG``s nor the
references over ``MAX_VALUES`` together. ``ARG``s that each name the one before ten times
grow ten-fold a line: without bounds, 570 bytes of them take gigabytes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import DockyardError
from .files import read_regular

FROM_RE = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(?P<ref>\S+)(?:\s+AS\s+(?P<stage>\S+))?", re.IGNORECASE)
ARG_RE = re.compile(r"^\s*ARG\s+(?P<args>.*)$", re.IGNORECASE)
# The Dockerfile forms a FROM line may use: $NAME, ${NAME}, ${NAME:-word}, ${NAME:+word};
# a backslash keeps a dollar literal.
MAX_DOCKERFILE = 16 * 1024 * 1024  # real ones are a few KiB
MAX_VALUE = 64 * 1024  # an image reference is at most a few hundred characters
MAX_VALUES = 1024 * 1024
VARIABLE_RE = re.compile(
    r"\\\$|\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:[-+])(?P<word>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def normalize_ref(ref: str) -> str:
    """``busybox`` -> ``busybox:latest``; ``docker.io/library/x`` -> ``x:latest``."""
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        name += ":latest"
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    return f"{name}@{digest}" if digest else name


def from_refs(dockerfile: Path, build_args: Mapping[str, str] | None = None) -> list[str]:
    """The images a Dockerfile builds on, skipping references to its own earlier stages.

    Build arguments in a reference are substituted from the global ``ARG`` lines, which
    ``build_args`` override, as ``docker build --build-arg`` does.
    """
    try:
        lines = _logical_lines(read_regular(dockerfile, MAX_DOCKERFILE).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DockyardError(f"{dockerfile}: cannot read: {e}") from None
    args = _global_args(dockerfile, lines, build_args or {})
    stages: set[str] = set()
    refs = []
    size = 0  # of the references, together: each FROM line may name a 64 KiB ARG
    for number, line in lines:
        match = FROM_RE.match(line)
        if not match:
            continue
        try:
            ref = substitute(match["ref"], args)
        except ValueError as e:
            raise DockyardError(f"{dockerfile}: line {number}: FROM's image {e}") from None
        size += len(ref)
        if size > MAX_VALUES:
            raise DockyardError(f"{dockerfile}: line {number}: the FROM lines' images would expand to more than "
                                f"{MAX_VALUES // 1024 // 1024} MiB together")
        if ref and ref.lower() not in stages and ref != "scratch":
            refs.append(ref)
        if match["stage"]:
            stages.add(match["stage"].lower())
    return refs


def substitute(text: str, values: Mapping[str, str], limit: int = MAX_VALUE) -> str:
    """``text`` with Dockerfile variables replaced; an undeclared one is empty, as in a build.
    ValueError when the result would be longer than ``limit``: found before it is built."""
    pieces, size, start = [], 0, 0
    for match in VARIABLE_RE.finditer(text):
        pieces += [text[start:match.start()], _value(match, values)]
        size += len(pieces[-2]) + len(pieces[-1])
        if size > limit:
            raise ValueError(f"would expand to more than {limit // 1024} KiB")
        start = match.end()
    pieces.append(text[start:])
    if size + len(pieces[-1]) > limit:
        raise ValueError(f"would expand to more than {limit // 1024} KiB")
    return "".join(pieces)


def _value(match: re.Match, values: Mapping[str, str]) -> str:
    if match.group() == "\\$":
        return "$"
    value = values.get(match["braced"] or match["bare"], "")
    if match["op"] == ":-":
        return value or match["word"]
    if match["op"] == ":+":
        return match["word"] if value else ""
    return value


def _global_args(dockerfile: Path, lines: list[tuple[int, str]], build_args: Mapping[str, str]) -> dict[str, str]:
    """The ARGs declared before the first FROM: the only ones a FROM line can use."""
    values: dict[str, str] = {}
    size = 0  # of the values, together
    for number, line in lines:
        if FROM_RE.match(line):
            break
        match = ARG_RE.match(line)
        if not match:
            continue
        for word in match["args"].split():
            name, _, default = word.partition("=")
            try:
                value = build_args[name] if name in build_args else substitute(_unquote(default), values)
            except ValueError as e:
                raise DockyardError(f"{dockerfile}: line {number}: ARG {name} {e}") from None
            size += len(value) - len(values.get(name, ""))
            values[name] = value
            if size > MAX_VALUES:
                raise DockyardError(f"{dockerfile}: line {number}: the ARGs before the first FROM would expand to "
                                    f"more than {MAX_VALUES // 1024 // 1024} MiB together")
    return values


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join backslash continuations so ``FROM \\\n  base`` still reads as one line; each with
    the number of its first line in the file, for messages."""
    lines: list[tuple[int, str]] = []
    current, first = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.lstrip().startswith("#") and not current:
            continue
        first = first or number
        if raw.endswith("\\"):
            current += raw[:-1] + " "
            continue
        lines.append((first, current + raw))
        current, first = "", 0
    if current:
        lines.append((first, current))
    return lines


def resolve_parents(images: dict, config_path: Path) -> dict:
    """Fill each ImageSpec's ``parents`` from its FROM lines, then reject cycles."""
    by_ref = {spec.ref: key for key, spec in images.items()}
    resolved = {}
    for key, spec in images.items():
        parents: list[str] = []
        if spec.base is None:
            try:
                refs = from_refs(spec.dir / spec.dockerfile, dict(spec.build_args))
            except DockyardError as e:
                raise DockyardError(f"{config_path}: images.{key}.dockerfile: {e}") from None
            for ref in refs:
                parent = by_ref.get(normalize_ref(ref))
                if parent is not None and parent not in parents:
                    parents.append(parent)
        resolved[key] = dataclasses.replace(spec, parents=tuple(parents))
    cycle = find_cycle(resolved)
    if cycle:
        path = " -> ".join(f"images.{key}" for key in cycle)
        raise DockyardError(f"{config_path}: images: dependency cycle through FROM lines: {path}")
    return resolved


def find_cycle(images: dict) -> list[str] | None:
    """A list of keys that closes a loop (first == last), or None.

    Depth-first without recursion, so a long chain of images cannot overflow the stack.
    """
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in images:
        if root in state:
            continue
        state[root] = 1
        path = [root]
        pending = [iter(images[root].parents)]
        while pending:
            for parent in pending[-1]:
                if state.get(parent) == 1:
                    return path[path.index(parent):] + [parent]
                if parent not in state:
                    state[parent] = 1
                    path.append(parent)
                    pending.append(iter(images[parent].parents))
                    break
            else:
                pending.pop()
                state[path.pop()] = 2
    return None


def build_order(images: dict, names: Iterable[str] | None = None) -> list[str]:
    """Keys of the named images and their prerequisites, each after its parents.

    Without names, every image. Ties keep the order of containers.toml.
    """
    wanted = list(images) if names is None else list(names)
    order: list[str] = []
    seen: set[str] = set()
    for key in wanted:
        if key not in images:
            raise DockyardError(f"no image named '{key}'; known: {', '.join(images)}")
        if key in seen:
            continue
        seen.add(key)
        # Depth-first, parents before children, without recursion.
        pending = [(key, iter(images[key].parents))]
        while pending:
            current, parents = pending[-1]
            for parent in parents:
                if parent not in seen:
                    seen.add(parent)
                    pending.append((parent, iter(images[parent].parents)))
                    break
            else:
                pending.pop()
                order.append(current)
    return order
