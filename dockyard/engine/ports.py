"""The engine's formats for published ports, written and read here only.

A container: its create request names each container port as ``"PORT/PROTOCOL"``
(``"8000/tcp"``), in ``ExposedPorts`` and as the keys of ``HostConfig.PortBindings``, where each
maps to a list of ``{"HostIp": ADDRESS, "HostPort": "8000"}`` (the host port as a string). An
inspected container gives its ``HostConfig.PortBindings`` back in the same form; there an empty
or missing ``HostIp`` is every interface, and an empty ``HostPort`` one the engine picked.

A Swarm service: its ``EndpointSpec.Ports``, its ``Endpoint.Ports`` and each task's
``Status.PortStatus.Ports`` list ``{"TargetPort": 8000, "Protocol": "tcp", "PublishMode":
"ingress", "PublishedPort": 8000}`` (numbers as numbers; no ``PublishedPort``: none fixed).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from ..config import PortMapping


class Binding(NamedTuple):
    """One host side of a container port, as an inspected container holds it."""

    container_port: int
    protocol: str
    host_ip: str | None  # None: not given (every interface)
    host_port: int | None  # None: not given (the engine picked one)


def key(port: PortMapping) -> str:
    """The engine's name for the container side of a mapping: ``"8000/tcp"``."""
    return f"{port.container_port}/{port.protocol}"


def exposed_ports(ports: Iterable[PortMapping]) -> dict[str, dict]:
    """A create request's ``ExposedPorts``."""
    return {key(p): {} for p in ports}


def port_bindings(ports: Iterable[PortMapping]) -> dict[str, list[dict[str, str]]]:
    """A create request's ``HostConfig.PortBindings``: one host address and port each."""
    return {key(p): [{"HostIp": p.host_ip, "HostPort": str(p.host_port)}] for p in ports}


def bindings_of(container: dict) -> list[Binding]:
    """Every binding of an inspected container, in the engine's order."""
    found = []
    for name, binds in _port_bindings(container).items():
        number, _, protocol = name.partition("/")
        found += [_binding(int(number), protocol or "tcp", bind) for bind in binds or []]
    return found


def binding_of(container: dict, port: PortMapping) -> Binding | None:
    """The first binding an inspected container has for a mapping's container port."""
    binds = _port_bindings(container).get(key(port)) or []
    return _binding(port.container_port, port.protocol, binds[0]) if binds else None


def _port_bindings(container: dict) -> dict:
    return (container.get("HostConfig") or {}).get("PortBindings") or {}


def _binding(container_port: int, protocol: str, bind: dict) -> Binding:
    return Binding(container_port, protocol, bind.get("HostIp") or None,
                   int(bind["HostPort"]) if bind.get("HostPort") else None)


# -- a Swarm service's ports ---------------------------------------------------------

class Published(NamedTuple):
    """A port a service or one of its tasks publishes."""

    container_port: int
    protocol: str
    host_port: int | None  # None: no fixed one (host mode: each task its own)
    mode: str  # "ingress" (every node) or "host" (the task's node)


def endpoint_ports(ports: Iterable[PortMapping], publish: str) -> list[dict]:
    """A service create's ``EndpointSpec.Ports``: an ingress port on its host port, a host-mode
    one on a port each task's node picks (a fixed one would allow one task per node)."""
    return [{"TargetPort": p.container_port, "Protocol": p.protocol, "PublishMode": publish,
             **({"PublishedPort": p.host_port} if publish == "ingress" else {})} for p in ports]


def published_of(ports: list[dict] | None) -> list[Published]:
    """An inspected service's or task's list of ports, in the engine's order."""
    return [Published(p["TargetPort"], p.get("Protocol", "tcp"), p.get("PublishedPort") or None,
                      p.get("PublishMode", "ingress")) for p in ports or []]
