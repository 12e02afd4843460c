"""The engine's port format, written and read in dockyard.engine.ports: engine-free."""

from __future__ import annotations

import dataclasses

from dockyard.engine import ports as engine_ports
from dockyard.config import ImageSpec, PortMapping, RunSpec
from dockyard.containers import ports_of
from dockyard.engine.ports import Binding, Published

PORTS = [PortMapping("127.0.0.1", 8000, 80), PortMapping("::1", 5353, 53, "udp"), PortMapping("0.0.0.0", 9000, 9000)]


def inspected(bindings: dict) -> dict:
    return {"HostConfig": {"PortBindings": bindings}}


def test_what_a_create_writes_is_read_back_as_it_was():
    assert engine_ports.exposed_ports(PORTS) == {"80/tcp": {}, "53/udp": {}, "9000/tcp": {}}
    written = engine_ports.port_bindings(PORTS)
    assert written["53/udp"] == [{"HostIp": "::1", "HostPort": "5353"}]
    container = inspected(written)
    assert engine_ports.bindings_of(container) == [
        Binding(p.container_port, p.protocol, p.host_ip, p.host_port) for p in PORTS]
    for p in PORTS:
        assert engine_ports.binding_of(container, p) == Binding(p.container_port, p.protocol, p.host_ip, p.host_port)


def test_what_the_engine_leaves_out_is_none_and_a_port_without_protocol_is_tcp():
    container = inspected({"80": [{"HostIp": "", "HostPort": ""}], "53/udp": None, "81/tcp": [{}]})
    assert engine_ports.bindings_of(container) == [Binding(80, "tcp", None, None), Binding(81, "tcp", None, None)]
    assert engine_ports.binding_of(container, PORTS[1]) is None  # 53/udp: bound to nothing
    assert engine_ports.bindings_of({}) == engine_ports.bindings_of(inspected(None)) == []


def test_a_containers_ports_are_the_configured_ones_as_it_is_bound():
    spec = ImageSpec(key="web", tag="web", dir=None, run=RunSpec(name="web", ports=tuple(PORTS[:2])))
    moved = dataclasses.replace(PORTS[0], host_port=8123)  # as `run --port 8123` binds it
    assert ports_of(spec, inspected(engine_ports.port_bindings([moved, PORTS[1]]))) == [moved, PORTS[1]]
    # A binding that says no address or port leaves the configured one.
    assert ports_of(spec, inspected({"80/tcp": [{"HostIp": "", "HostPort": ""}]})) == list(PORTS[:2])


def test_a_services_ports_are_read_back_as_they_were_written():
    ingress = engine_ports.endpoint_ports(PORTS[:2], "ingress")
    assert ingress[1] == {"TargetPort": 53, "Protocol": "udp", "PublishMode": "ingress", "PublishedPort": 5353}
    assert engine_ports.published_of(ingress) == [Published(80, "tcp", 8000, "ingress"),
                                                   Published(53, "udp", 5353, "ingress")]
    # Host mode fixes no port: each task's node picks one, which its port status gives.
    host = engine_ports.published_of(engine_ports.endpoint_ports(PORTS[:1], "host"))
    assert host == [Published(80, "tcp", None, "host")]
    # What the engine leaves out is its default: tcp, ingress.
    assert engine_ports.published_of([{"TargetPort": 80, "PublishedPort": 30001}]) == [
        Published(80, "tcp", 30001, "ingress")]
    assert engine_ports.published_of(None) == []
