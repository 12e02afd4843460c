"""Dependencies between a project's images, read from their Dockerfiles' ``FROM`` lines.

A ``FROM`` may name its image through a global build argument (``ARG BASE=demo/base``
before the first ``FROM``, then ``FROM ${BASE}``); the reference is substituted as the
engine does, with the image's ``build_args`` overriding the ``ARG`` default, so such a
parent is still found. This module knows image references, not containers.toml: config
imports it, never the other way round.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import DockyardError

FROM_RE = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(?P<ref>\S+)(?:\s+AS\s+(?P<stage>\S+))?", re.IGNORECASE)
ARG_RE = re.compile(r"^\s*ARG\s+(?P<args>.*)$", re.IGNORECASE)
# The Dockerfile forms a FROM line may use: $NAME, ${NAME}, ${NAME:-word}, ${NAME:+word};
# a backslash keeps a dollar literal.
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
        lines = _logical_lines(dockerfile.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DockyardError(f"{dockerfile}: cannot read: {e}") from None
    args = _global_args(lines, build_args or {})
    stages: set[str] = set()
    refs = []
    for line in lines:
        match = FROM_RE.match(line)
        if not match:
            continue
        ref = substitute(match["ref"], args)
        if ref and ref.lower() not in stages and ref != "scratch":
            refs.append(ref)
        if match["stage"]:
            stages.add(match["stage"].lower())
    return refs


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``text`` with Dockerfile variables replaced; an undeclared one is empty, as in a build."""

    def replace(match: re.Match) -> str:
        if match.group() == "\\$":
            return "$"
        value = values.get(match["braced"] or match["bare"], "")
        if match["op"] == ":-":
            return value or match["word"]
        if match["op"] == ":+":
            return match["word"] if value else ""
        return value

    return VARIABLE_RE.sub(replace, text)


def _global_args(lines: list[str], build_args: Mapping[str, str]) -> dict[str, str]:
    """The ARGs declared before the first FROM: the only ones a FROM line can use."""
    values: dict[str, str] = {}
    for line in lines:
        if FROM_RE.match(line):
            break
        match = ARG_RE.match(line)
        if not match:
            continue
        for word in match["args"].split():
            name, _, default = word.partition("=")
            if name in build_args:
                values[name] = build_args[name]
            else:
                values[name] = substitute(_unquote(default), values)
    return values


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _logical_lines(text: str) -> list[str]:
    """Join backslash continuations so ``FROM \\\n  base`` still reads as one line."""
    lines, current = [], ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        if raw.endswith("\\"):
            current += raw[:-1] + " "
            continue
        lines.append(current + raw)
        current = ""
    if current:
        lines.append(current)
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
