"""Dependencies between a project's images, read from their Dockerfiles' ``FROM`` lines."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Iterable

from .errors import DockyardError

FROM_RE = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(?P<ref>\S+)(?:\s+AS\s+(?P<stage>\S+))?", re.IGNORECASE)


def from_refs(dockerfile: Path) -> list[str]:
    """The images a Dockerfile builds on, skipping references to its own earlier stages."""
    try:
        lines = _logical_lines(dockerfile.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise DockyardError(f"{dockerfile}: cannot read: {e}") from None
    stages: set[str] = set()
    refs = []
    for line in lines:
        match = FROM_RE.match(line)
        if not match:
            continue
        ref = match["ref"]
        if ref.lower() not in stages and ref != "scratch":
            refs.append(ref)
        if match["stage"]:
            stages.add(match["stage"].lower())
    return refs


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
    from .config import normalize_ref

    by_ref = {spec.ref: key for key, spec in images.items()}
    resolved = {}
    for key, spec in images.items():
        parents: list[str] = []
        if spec.base is None:
            for ref in from_refs(spec.dir / spec.dockerfile):
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
    """A list of keys that closes a loop (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(key: str) -> list[str] | None:
        state[key] = 1
        stack.append(key)
        for parent in images[key].parents:
            if state.get(parent) == 1:
                return stack[stack.index(parent):] + [parent]
            if parent not in state:
                found = visit(parent)
                if found:
                    return found
        stack.pop()
        state[key] = 2
        return None

    for key in images:
        if key not in state:
            found = visit(key)
            if found:
                return found
    return None


def build_order(images: dict, names: Iterable[str] | None = None) -> list[str]:
    """Keys of the named images and their prerequisites, each after its parents.

    Without names, every image. Ties keep the order of containers.toml.
    """
    wanted = list(images) if names is None else list(names)
    order: list[str] = []
    seen: set[str] = set()

    def visit(key: str) -> None:
        if key in seen:
            return
        seen.add(key)
        for parent in images[key].parents:
            visit(parent)
        order.append(key)

    for key in wanted:
        if key not in images:
            raise DockyardError(f"no image named '{key}'; known: {', '.join(images)}")
        visit(key)
    return order
