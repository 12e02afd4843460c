"""Services: which images `up` starts, in what order, and the checks that need every image.

A service is an image that `up` starts and keeps running; the others are one-shot images
(a tool that runs and exits) or bases never meant to run, which `up` builds but does not
start. The rule is the one `run` uses to choose between the background and the foreground:
an image is a service when its run table publishes a port or has a readiness check, unless
it says ``service = false``; ``service = true`` makes any other image one (a service that
only the project network reaches). The tutorial's ``my-app`` (no port, no check: it prints
and exits) is one-shot.

A step (``completes = true``: a migration, a seed) is a service that runs to its end: `up`
runs it and waits until it exits, and what names it in ``after`` starts only if it exited 0.

Pure logic on the validated specs, no engine: ``config`` runs ``check`` when it loads a file.
"""

from __future__ import annotations

import difflib
import ipaddress
from typing import TYPE_CHECKING, Callable, Iterable

from .errors import DockyardError

if TYPE_CHECKING:
    from .config import ImageSpec

Fail = Callable[[str, str], DockyardError]


def is_service_by_default(run: dict) -> bool:
    """The default of ``run.service`` for a run table as written in containers.toml."""
    return bool(run.get("ports")) or "ready" in run or run.get("completes") is True


def check(images: dict[str, ImageSpec], fail: Fail) -> None:
    """Config errors, with key paths: `after` naming an unknown or one-shot image, cycles,
    two services publishing the same host address and port, and two images whose containers
    would answer to the same name on the project network."""
    for key, spec in images.items():
        for i, name in enumerate(spec.run.after):
            where = f"images.{key}.run.after[{i}]"
            if name not in images:
                hint = difflib.get_close_matches(name, list(images), n=1)
                suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise fail(where, f"no image named '{name}'{suggestion}; known: {', '.join(images)}")
            if not images[name].run.service:
                raise fail(where, f"'{name}' is a one-shot image, not a service: `up` never starts it "
                                  f"(set images.{name}.run.service = true if it should run, or "
                                  f"images.{name}.run.completes = true if it is a step that must finish first)")
    cycle = _find_cycle(images)
    if cycle:
        raise fail(f"images.{cycle[0]}.run.after", f"a cycle: {' -> '.join(cycle)}")
    for on_one_engine in _by_engine(images):  # another engine is another host and another network
        _check_published(on_one_engine, fail)
        _check_network_names(on_one_engine, fail)


def _by_engine(images: dict[str, ImageSpec]) -> list[dict[str, ImageSpec]]:
    """The images grouped by the engine their `engine` key names (none: the project's)."""
    groups: dict[str | None, dict[str, ImageSpec]] = {}
    for key, spec in images.items():
        groups.setdefault(spec.engine, {})[key] = spec
    return list(groups.values())


def _find_cycle(images: dict[str, ImageSpec]) -> list[str] | None:
    """The first `after` cycle found, as a path that ends where it starts."""
    done: set[str] = set()
    for start in images:
        path: list[str] = []
        on_path: set[str] = set()
        pending = [(start, iter(images[start].run.after))]
        path.append(start)
        on_path.add(start)
        while pending:
            current, needs = pending[-1]
            for name in needs:
                if name in on_path:
                    return path[path.index(name):] + [name]
                if name not in done:
                    pending.append((name, iter(images[name].run.after)))
                    path.append(name)
                    on_path.add(name)
                    break
            else:
                pending.pop()
                done.add(path.pop())
                on_path.discard(current)
    return None


def _check_published(images: dict[str, ImageSpec], fail: Fail) -> None:
    seen: list[tuple[str, str, int, str, str]] = []  # (ip, protocol, port, where, text)
    for key, spec in images.items():
        if not spec.run.service:
            continue
        for i, port in enumerate(spec.run.ports):
            where = f"images.{key}.run.ports[{i}]"
            for ip, protocol, number, other, text in seen:
                if (protocol, number) == (port.protocol, port.host_port) and _overlap(ip, port.host_ip):
                    raise fail(where, f"{port.host_ip}:{port.host_port}/{port.protocol} is also published by "
                                      f"{other} ({text}); two services cannot listen there")
            seen.append((port.host_ip, port.protocol, port.host_port, where, f"{port.host_ip}:{port.host_port}"))


def _check_network_names(images: dict[str, ImageSpec], fail: Fail) -> None:
    """On the project network a container answers to its image key, its container name and its
    aliases; the engine's DNS would give either of two containers for a name both claim. An
    alias (or a container name) that another image already answers to is refused where it is
    written: keys are claimed first, then container names, then aliases. DNS names are the same
    in any case."""
    claimed: dict[str, tuple[str, str]] = {}  # lower-case name -> (image key, what claims it)

    def claim(name: str, key: str, where: str, what: str) -> None:
        owner, owned_by = claimed.setdefault(name.lower(), (key, what))
        if owner != key:
            raise fail(where, f"'{name}' is also {owned_by} on the project network; two containers there "
                              "cannot answer to one name")

    on_network = {key: spec for key, spec in images.items() if spec.run.network == "project"}
    for key in on_network:
        claim(key, key, f"images.{key}", f"the image key images.{key}")
    for key, spec in on_network.items():
        claim(spec.run.name, key, f"images.{key}.run.name", f"the container name of images.{key} "
                                                           f"(images.{key}.run.name)")
    for key, spec in on_network.items():
        for i, alias in enumerate(spec.run.aliases):
            where = f"images.{key}.run.aliases[{i}]"
            claim(alias, key, where, f"an alias of images.{key} ({where})")


def _overlap(a: str, b: str) -> bool:
    """Two host addresses that cannot both be bound on one port: equal, or one is every address."""
    return a == b or ipaddress.ip_address(a).is_unspecified or ipaddress.ip_address(b).is_unspecified


def start_order(images: dict[str, ImageSpec], only: Iterable[str] | None = None) -> list[str]:
    """Service keys, each after the services its `after` names; ties keep the file's order.

    With ``only``, those services and what they need. Cycles were refused at load."""
    if only is None:
        wanted = [key for key, spec in images.items() if spec.run.service]
    else:
        wanted = list(only)
        for key in wanted:
            if key not in images:
                raise DockyardError(f"no image named '{key}'; known: {', '.join(images)}")
            if not images[key].run.service:
                raise DockyardError(f"'{key}' is a one-shot image, not a service; run it with `inv {key}.run`")
    order: list[str] = []

    def visit(key: str) -> None:
        if key in order:
            return
        for name in images[key].run.after:
            visit(name)
        order.append(key)

    for key in wanted:
        visit(key)
    return order
