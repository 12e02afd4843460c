"""Load and validate ``containers.toml`` into one immutable spec per image.

Tasks read these specs, never the raw TOML. Every problem is reported as a
``DockyardError`` naming the file and the key path (``images.httpd.run.ports[0]``).
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from .errors import DockyardError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

DEFAULT_FILE = "containers.toml"
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")
# Names the top-level collection uses for its own tasks; an image may not take one.
RESERVED_NAMES = frozenset({"build", "status", "config", "clean", "save", "load"})
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
# [registry[:port]/]path[:tag]: lower-case path components, tags may have capitals.
TAG_RE = re.compile(
    r"^(?:(?:localhost|[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+)(?::\d+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"
)
PORT_RE = re.compile(
    r"^(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?"
    r"(?:(?P<host>\d+):)?(?P<container>\d+)(?:/(?P<proto>tcp|udp|sctp))?$"
)


@dataclass(frozen=True)
class PortMapping:
    host_ip: str
    host_port: int
    container_port: int
    protocol: str = "tcp"

    def __str__(self) -> str:
        return f"{self.host_ip}:{self.host_port}->{self.container_port}/{self.protocol}"


@dataclass(frozen=True)
class ReadyCheck:
    """What ``run`` waits on before it says the container is up."""

    url: str | None = None
    port: int | None = None
    timeout: float = 30.0


@dataclass(frozen=True)
class RunSpec:
    name: str
    ports: tuple[PortMapping, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    command: str | tuple[str, ...] | None = None
    user: str | None = None
    volumes: tuple[str, ...] = ()
    workdir: str | None = None
    restart: str = "no"
    ready: ReadyCheck | None = None
    init: bool = True


@dataclass(frozen=True)
class BaseSpec:
    """An image that is not built from a Dockerfile: pulled, or imported from a rootfs."""

    pull: str | None = None
    rootfs: Path | None = None
    changes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageSpec:
    key: str
    tag: str
    dir: Path
    dockerfile: str = "Dockerfile"
    build_args: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    base: BaseSpec | None = None
    run: RunSpec = field(default_factory=lambda: RunSpec(name=""))
    parents: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """The tag with an explicit ``:latest`` when none was given."""
        return normalize_ref(self.tag)

    @property
    def repository(self) -> str:
        return self.ref.rsplit(":", 1)[0]


@dataclass(frozen=True)
class ProjectSpec:
    name: str
    path: Path
    images: dict[str, ImageSpec]

    @property
    def root(self) -> Path:
        return self.path.parent

    def image(self, key: str) -> ImageSpec:
        return self.images[key]


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


@lru_cache(maxsize=8)
def load(path: str | Path = DEFAULT_FILE) -> ProjectSpec:
    """Read, validate and resolve ``containers.toml``; cached per path."""
    path = Path(path).absolute()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DockyardError(f"{path}: no such file (dockyard reads containers.toml in the project root)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DockyardError(f"{path}: cannot read: {e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise DockyardError(f"{path}: invalid TOML: {e}") from None
    return _Validator(path).project(data)


class _Validator:
    """Walks the TOML tree, building specs and failing on the first problem."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.root = path.parent

    def fail(self, where: str, message: str) -> DockyardError:
        return DockyardError(f"{self.path}: {where}: {message}" if where else f"{self.path}: {message}")

    # -- generic checks ---------------------------------------------------

    def table(self, value: Any, where: str, allowed: dict[str, str], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a table, got {_type_name(value)}")
        for key in value:
            if key not in allowed:
                hint = difflib.get_close_matches(key, list(allowed), n=1)
                suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
                known = ", ".join(sorted(allowed))
                raise self.fail(f"{where}.{key}" if where else key, f"unknown key{suggestion}; known keys: {known}")
        for key in required:
            if key not in value:
                raise self.fail(where, f"missing required key '{key}' ({allowed[key]})")
        return value

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"expected a string, got {_type_name(value)}")
        if not value.strip():
            raise self.fail(where, "must not be empty")
        return value

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {_type_name(value)}")
        return value

    def string_list(self, value: Any, where: str) -> list[str]:
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list of strings, got {_type_name(value)}")
        return [self.string(item, f"{where}[{i}]") for i, item in enumerate(value)]

    def string_map(self, value: Any, where: str) -> tuple[tuple[str, str], ...]:
        """A table of scalars; numbers and booleans become strings, as in an env file."""
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a table of strings, got {_type_name(value)}")
        items = []
        for key, item in value.items():
            if isinstance(item, bool):
                item = "true" if item else "false"
            elif isinstance(item, (int, float)):
                item = str(item)
            elif not isinstance(item, str):
                raise self.fail(f"{where}.{key}", f"expected a string, got {_type_name(item)}")
            items.append((key, item))
        return tuple(items)

    def optional(self, data: dict, key: str, where: str, check: Callable[[Any, str], Any], default: Any = None) -> Any:
        return check(data[key], f"{where}.{key}") if key in data else default

    # -- the schema ---------------------------------------------------------

    def project(self, data: dict) -> ProjectSpec:
        self.table(data, "", {"project": "the [project] table", "images": "one [images.NAME] table per image"},
                   required=("project",))
        project = self.table(data["project"], "project", {"name": "the project's name"}, required=("name",))
        name = self.string(project["name"], "project.name")
        if not NAME_RE.match(name):
            raise self.fail("project.name", f"'{name}' must be lower-case letters, digits, '.', '_' or '-'")
        images_data = data.get("images", {})
        if not isinstance(images_data, dict):
            raise self.fail("images", f"expected a table of images, got {_type_name(images_data)}")
        if not images_data:
            raise self.fail("images", "no images defined; add an [images.NAME] table")
        images = {key: self.image(key, value) for key, value in images_data.items()}
        self.unique(images)
        from .graph import resolve_parents

        resolved = resolve_parents(images, self.path)
        return ProjectSpec(name=name, path=self.path, images=resolved)

    def image(self, key: str, data: Any) -> ImageSpec:
        where = f"images.{key}"
        if not NAME_RE.match(key):
            raise self.fail(where, "image names are lower-case letters, digits, '.', '_' or '-'")
        if key in RESERVED_NAMES:
            raise self.fail(where, f"the name '{key}' is taken by the top-level task `inv {key}`; rename the image")
        allowed = {
            "tag": "the image's tag, e.g. 'radiasoft/httpd'",
            "dir": "the image's directory, relative to containers.toml",
            "dockerfile": "the Dockerfile's name inside dir",
            "build_args": "a table of build arguments",
            "labels": "a table of image labels",
            "base": "a base image that is pulled or imported instead of built",
            "run": "how `run` starts the container",
        }
        self.table(data, where, allowed, required=("tag", "dir"))
        tag = self.string(data["tag"], f"{where}.tag")
        if not TAG_RE.match(tag):
            raise self.fail(f"{where}.tag", f"'{tag}' is not a valid image tag "
                                            "(lower-case name, optional registry and ':tag')")
        directory = self.root / self.string(data["dir"], f"{where}.dir")
        if not directory.exists():
            raise self.fail(f"{where}.dir", f"directory {directory} does not exist")
        if not directory.is_dir():
            raise self.fail(f"{where}.dir", f"{directory} is not a directory")
        base = self.optional(data, "base", where, lambda v, w: self.base(v, w, directory))
        dockerfile = self.optional(data, "dockerfile", where, self.string, "Dockerfile")
        if base is None:
            path = directory / dockerfile
            if not path.resolve().is_relative_to(directory.resolve()):
                raise self.fail(f"{where}.dockerfile", f"{dockerfile} is outside the image's directory {directory}")
            if not path.is_file():
                what = "does not exist" if not path.exists() and not path.is_symlink() else "is not a regular file"
                raise self.fail(f"{where}.dockerfile", f"{path} {what}")
        labels = self.optional(data, "labels", where, self.string_map, ())
        for label, _ in labels:
            if label.startswith("dockyard."):
                raise self.fail(f"{where}.labels.{label}", "labels starting with 'dockyard.' are dockyard's own")
        return ImageSpec(
            key=key,
            tag=tag,
            dir=directory,
            dockerfile=dockerfile,
            build_args=self.optional(data, "build_args", where, self.string_map, ()),
            labels=labels,
            base=base,
            run=self.run(data.get("run", {}), f"{where}.run", tag),
        )

    def base(self, data: Any, where: str, directory: Path) -> BaseSpec:
        allowed = {
            "pull": "an image to pull, e.g. 'busybox:latest'",
            "rootfs": "a script in dir that writes a rootfs tarball to the path given as $1",
            "changes": "Dockerfile instructions applied on import, e.g. ['CMD [\"sh\"]']",
        }
        self.table(data, where, allowed)
        if "pull" not in data and "rootfs" not in data:
            raise self.fail(where, "needs 'pull', 'rootfs' or both")
        rootfs = None
        if "rootfs" in data:
            rootfs = directory / self.string(data["rootfs"], f"{where}.rootfs")
            if not rootfs.is_file():
                raise self.fail(f"{where}.rootfs", f"script {rootfs} does not exist")
        return BaseSpec(
            pull=self.optional(data, "pull", where, self.string),
            rootfs=rootfs,
            changes=tuple(self.optional(data, "changes", where, self.string_list, [])),
        )

    def run(self, data: Any, where: str, tag: str) -> RunSpec:
        allowed = {
            "name": "the container's name (default: the tag's basename)",
            "ports": "a list of 'HOST:CONTAINER' port mappings",
            "environment": "a table of environment variables",
            "command": "the command, a string or a list",
            "user": "the user to run as, e.g. 'www-data'",
            "volumes": "a list of 'SOURCE:TARGET[:ro]' mounts",
            "workdir": "the working directory inside the container",
            "restart": f"the restart policy: {', '.join(RESTART_POLICIES)}",
            "ready": "what to wait on: {url = '...'} or {port = N}, with timeout",
            "init": "run a tiny init as PID 1 that forwards signals (default true)",
        }
        self.table(data, where, allowed)
        default_name = tag.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
        name = self.optional(data, "name", where, self.string, default_name)
        if not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", name):
            raise self.fail(f"{where}.name", f"'{name}' is not a valid container name")
        ports = tuple(self.port(p, f"{where}.ports[{i}]") for i, p in
                      enumerate(self.optional(data, "ports", where, self.string_list, [])))
        command = None
        if "command" in data:
            value = data["command"]
            command = tuple(self.string_list(value, f"{where}.command")) if isinstance(value, list) \
                else self.string(value, f"{where}.command")
        return RunSpec(
            name=name,
            ports=ports,
            environment=self.optional(data, "environment", where, self.environment, ()),
            command=command,
            user=self.optional(data, "user", where, self.string),
            volumes=tuple(self.volume(v, f"{where}.volumes[{i}]") for i, v in
                          enumerate(self.optional(data, "volumes", where, self.string_list, []))),
            workdir=self.optional(data, "workdir", where, self.string),
            restart=self.optional(data, "restart", where, self.restart, "no"),
            ready=self.optional(data, "ready", where, lambda v, w: self.ready(v, w, ports)),
            init=self.optional(data, "init", where, self.boolean, True),
        )

    def environment(self, value: Any, where: str) -> tuple[tuple[str, str], ...]:
        items = self.string_map(value, where)
        for key, _ in items:
            if not key or "=" in key:
                raise self.fail(f"{where}.{key}", "an environment variable's name must be non-empty and without '='")
        return items

    def port(self, value: str, where: str) -> PortMapping:
        match = PORT_RE.match(value)
        if not match:
            raise self.fail(where, f"'{value}' is not a port mapping; expected 'HOST:CONTAINER', e.g. '8000:8000'")
        container = int(match["container"])
        host = int(match["host"]) if match["host"] else container
        for number in (host, container):
            if not 1 <= number <= 65535:
                raise self.fail(where, f"port {number} in '{value}' is outside 1-65535")
        # Least privilege: publish on loopback unless the config names an address.
        ip = (match["ip"] or "127.0.0.1").strip("[]")
        return PortMapping(ip, host, container, match["proto"] or "tcp")

    def volume(self, value: str, where: str) -> str:
        parts = value.split(":")
        if len(parts) not in (2, 3) or not all(parts[:2]) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise self.fail(where, f"'{value}' is not a mount; expected 'SOURCE:TARGET' or 'SOURCE:TARGET:ro'")
        source, target = parts[0], parts[1]
        if not target.startswith("/"):
            raise self.fail(where, f"the target '{target}' must be an absolute path in the container")
        if source.startswith((".", "/", "~")):
            try:
                resolved = (self.root / Path(source).expanduser()).resolve()
            except RuntimeError:  # ~user that does not exist, or no HOME
                raise self.fail(where, f"cannot expand '{source}' to a home directory") from None
            if not resolved.exists():
                raise self.fail(where, f"the source {resolved} does not exist")
            parts[0] = str(resolved)
        return ":".join(parts)

    def restart(self, value: Any, where: str) -> str:
        value = self.string(value, where)
        policy, _, count = value.partition(":")
        if policy not in RESTART_POLICIES or (count and (policy != "on-failure" or not count.isdigit())):
            raise self.fail(where, f"'{value}' is not a restart policy; use one of {', '.join(RESTART_POLICIES)}"
                                   " (or 'on-failure:N')")
        return value

    def ready(self, data: Any, where: str, ports: tuple[PortMapping, ...]) -> ReadyCheck:
        self.table(data, where, {"url": "an http:// URL that must answer 2xx/3xx",
                                 "port": "a published container port that must accept connections",
                                 "timeout": "seconds to wait (default 30)"})
        if ("url" in data) == ("port" in data):
            raise self.fail(where, "give exactly one of 'url' or 'port'")
        url = self.optional(data, "url", where, self.string)
        if url is not None and not re.match(r"^https?://", url):
            raise self.fail(f"{where}.url", f"'{url}' must start with http:// or https://")
        port = data.get("port")
        if port is not None:
            if not isinstance(port, int) or isinstance(port, bool):
                raise self.fail(f"{where}.port", f"expected an integer, got {_type_name(port)}")
            if port not in {p.container_port for p in ports}:
                raise self.fail(f"{where}.port", f"port {port} is not published in ports")
        timeout = data.get("timeout", 30.0)
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout < 86400:
            raise self.fail(f"{where}.timeout", f"expected a positive number of seconds, got {timeout!r}")
        return ReadyCheck(url=url, port=port, timeout=float(timeout))

    def unique(self, images: dict[str, ImageSpec]) -> None:
        seen_tags: dict[str, str] = {}
        seen_names: dict[str, str] = {}
        for key, spec in images.items():
            if spec.ref in seen_tags:
                raise self.fail(f"images.{key}.tag", f"'{spec.tag}' is also the tag of images.{seen_tags[spec.ref]}")
            seen_tags[spec.ref] = key
            if spec.run.name in seen_names:
                raise self.fail(f"images.{key}.run.name",
                                f"container name '{spec.run.name}' is also used by images.{seen_names[spec.run.name]}")
            seen_names[spec.run.name] = key


def _type_name(value: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
             list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)
