"""Which Docker engine dockyard talks to, and where that choice came from.

The first of these that is set wins:

1. ``dockyard.engine`` in Invoke's configuration (invoke.yaml, INVOKE_DOCKYARD_ENGINE, -f):
   Invoke tasks share no global flag, so no task takes an engine flag; this setting is how
   one command line chooses;
2. ``DOCKYARD_ENGINE``; 3. ``DOCKER_HOST``; 4. ``DOCKER_CONTEXT``;
5. ``engine`` in an image's ``[images.NAME]`` table, for what is done to that image;
6. ``engine`` in containers.toml's ``[project]`` table;
7. the Docker CLI's current context (its config.json);
8. the default socket.

So a setting or a variable sends everything to one engine, as it always did, and an image's
own engine is a project's choice like ``[project] engine``, only narrower. The project layer
is a context variable too, set around each method of a ``Project`` (``project_layer``): two
Projects in one process each work on their own engine. The image layer is
a context variable that ``engine.using`` sets around the work done for one image (a build of
it, run, stop, status, push, ...): its value belongs to that work, and to the threads that
carry it when they start in a copy of its context (the builder's do). An image is built on
its parents' engine: containers.toml with a FROM across engines is refused when it is loaded.

A value is an address (``unix://``, ``tcp://``, ``ssh://``) or the name of a Docker context.
Nothing here imports docker-py, and nothing here makes a request: the engine's client asks
``local_socket`` whether the chosen engine is a unix socket it can talk to with the standard
library; resolving a context's address is ``engine.address``'s job, its TLS
``engine.remote``'s. This module is configuration, not part of the engine package: the
checks of containers.toml and ``inv --list`` read it without loading the engine's client.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import re
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from .records import frozen

DEFAULT_SOCKET = "/var/run/docker.sock"
SCHEMES = ("unix://", "tcp://", "ssh://", "http://", "https://")
SETTING = "dockyard.engine in Invoke's configuration"

# What the process was told by layers that are not environment variables: set by the task
# layer (the Invoke setting) and by Project (containers.toml).
_layers: dict[str, tuple[str, str] | None] = {"setting": None, "project": None}


@frozen
class Choice:
    """The engine chosen, and which setting chose it."""

    value: str   # an address, or a Docker context's name
    source: str  # where it came from, said as a user would look for it

    @property
    def is_address(self) -> bool:
        return "://" in self.value

    def __str__(self) -> str:
        what = self.value if self.is_address else f"Docker context '{self.value}'"
        return f"{what}, chosen by {self.source}"


HOST_RE = re.compile(r"[A-Za-z0-9._-]+")
FORMS = "unix://PATH, tcp://HOST:PORT, ssh://[USER@]HOST[:PORT] or a Docker context's name"


def address_problem(address: str) -> str | None:
    """What docker-py (or ssh) would trip on in an engine address, said for a user; None when
    it can be used. The host is a name, an IPv4 address or an IPv6 one in brackets; a port is
    1-65535 in ASCII digits (tcp, http and https need one); only a path may follow (not for ssh)."""
    scheme = address.split("://", 1)[0]
    if f"{scheme}://" not in SCHEMES:
        return f"the scheme '{scheme}://' is not one of {', '.join(SCHEMES)}"
    if scheme == "unix":
        return None
    try:
        parts = urlsplit(address)
    except ValueError as e:  # an unclosed '['
        return f"not an address ({e})"
    place = parts.netloc.rpartition("@")[2]
    if place.startswith("["):
        host, _, rest = place[1:].partition("]")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"'[{host}]' is not an IPv6 address in brackets"
        if rest and not rest.startswith(":"):
            return f"'{rest}' follows the address where ':PORT' may"
        port = rest[1:] if rest else None
    else:
        host, colon, port = place.partition(":")
        port = port if colon else None
        if host and not HOST_RE.fullmatch(host):
            return f"'{host}' is not a host name or address"
    if not host and scheme == "ssh":  # tcp://:2376 is the local host, to docker-py as to the CLI
        return "it names no host"
    if port is None and scheme != "ssh":
        return "it names no port (e.g. tcp://HOST:2376)"
    if port is not None and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        return f"the port '{port}' is not a number from 1 to 65535"
    if scheme == "ssh" and (parts.path or parts.query or parts.fragment or parts.password is not None):
        return "nothing may follow ssh://[USER@]HOST[:PORT]"
    if parts.query or parts.fragment or parts.password is not None:
        return "nothing but a path may follow HOST:PORT"
    return None


def said(address: str, context: str | None, source: str) -> str:
    """An engine as messages name it: its address, the Docker context that gave it (if one
    did) and what chose it, e.g. "tcp://lab:2376 (Docker context 'lab'), chosen by
    project.engine in /srv/app/containers.toml"."""
    named = f" (Docker context '{context}')" if context else ""
    return f"{address}{named}, chosen by {source}"


def use_setting(value: str | None) -> None:
    """The value of the ``dockyard.engine`` setting (None or empty: unset)."""
    text = str(value).strip() if value is not None else ""
    _layers["setting"] = (text, SETTING) if text else None


def use_project(engine: str | None, project_file: Path) -> None:
    """A project's ``[project] engine`` (None: it names none)."""
    _layers["project"] = (engine, f"project.engine in {project_file}") if engine else None


# The project being worked on (set by ``project_layer`` around each of a Project's methods):
# its (engine, source), or None when it names no engine. A process may hold several Projects
# (the Python API), each on its own engine; outside their methods, the project loaded last
# (``use_project``) counts, as it did for code that calls the engine layer directly.
_OUTSIDE = object()
_project: ContextVar = ContextVar("dockyard_project_engine", default=_OUTSIDE)


@contextlib.contextmanager
def project_layer(engine: str | None, project_file: Path):
    """Within: this project's ``[project] engine`` (None: it names none), whichever project
    was loaded last."""
    token = _project.set((engine, f"project.engine in {project_file}") if engine else None)
    try:
        yield
    finally:
        _project.reset(token)


# The engine of the image being worked on (set by ``image_layer``), or None.
_image: ContextVar[tuple[str, str] | None] = ContextVar("dockyard_image_engine", default=None)


@contextlib.contextmanager
def image_layer(engine: str | None, source: str):
    """Within: an image's own ``engine`` (None: it names none, the project's choice holds)."""
    token = _image.set((engine, source) if engine else None)
    try:
        yield
    finally:
        _image.reset(token)


def reset() -> None:
    _layers.update(setting=None, project=None)


def chosen() -> Choice:
    """The engine to use, without docker-py. A Docker context named 'default' is the default
    socket (or DOCKER_HOST, which comes first anyway)."""
    env = os.environ
    layers = [_layers["setting"], (env.get("DOCKYARD_ENGINE"), "DOCKYARD_ENGINE"),
              (env.get("DOCKER_HOST"), "DOCKER_HOST"), (env.get("DOCKER_CONTEXT"), "DOCKER_CONTEXT"),
              _image.get(), _layers["project"] if _project.get() is _OUTSIDE else _project.get()]
    for value, source in (layer for layer in layers if layer is not None):
        value = (value or "").strip()
        if not value:
            continue
        if source == "DOCKER_HOST" and "://" not in value:
            value = f"tcp://{value}"  # as docker-py reads DOCKER_HOST=host:port
        if value == "default" and source != "DOCKER_HOST":
            return Choice(f"unix://{DEFAULT_SOCKET}", f"{source}, which names the default context")
        return Choice(value, source)
    current = _cli_current_context(os.environ.get("DOCKER_CONFIG") or "~/.docker")
    if current:
        return Choice(current, "the Docker CLI's current context")
    return Choice(f"unix://{DEFAULT_SOCKET}", "default")


def local_socket() -> str | None:
    """The chosen engine's unix socket path, when it is one; None for anything else (and for a
    context that cannot be read: the slow path then says what is wrong)."""
    choice = chosen()
    address = choice.value
    if not choice.is_address:
        found = context(choice.value)
        address = found.host if found else ""
    return address.removeprefix("unix://") if address.startswith("unix://") else None


@frozen
class Context:
    """A Docker CLI context: its docker endpoint and where its TLS files are, if it has any."""
    name: str
    host: str
    tls_dir: Path | None
    skip_tls_verify: bool


def context(name: str) -> Context | None:
    """The Docker CLI's context of this name, read from its store (DOCKER_CONFIG or ~/.docker:
    contexts/meta/SHA256(NAME)/meta.json), or None. Read here rather than with docker-py,
    whose reader looks in the wrong place when the CLI has no config.json (docker-py 7.x)."""
    store = Path(os.environ.get("DOCKER_CONFIG") or "~/.docker").expanduser() / "contexts"
    digest = hashlib.sha256(name.encode()).hexdigest()
    try:
        meta = json.loads((store / "meta" / digest / "meta.json").read_text(encoding="utf-8"))
        endpoint = meta["Endpoints"]["docker"]
        host = endpoint["Host"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    tls_dir = store / "tls" / digest / "docker"
    return Context(name=name, host=str(host), tls_dir=tls_dir if tls_dir.is_dir() else None,
                   skip_tls_verify=bool(endpoint.get("SkipTLSVerify")))


@lru_cache(maxsize=4)
def _cli_current_context(config_dir: str) -> str | None:
    """The CLI config's current context, unless it is the default one. A broken CLI config
    must not stop us from using the default socket."""
    path = Path(config_dir).expanduser() / "config.json"
    try:
        current = json.loads(path.read_text(encoding="utf-8")).get("currentContext")
    except (OSError, ValueError, AttributeError):
        return None
    return current if isinstance(current, str) and current not in ("", "default") else None
