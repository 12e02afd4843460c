"""Load and validate ``containers.toml`` into one immutable spec per image.

Tasks read these specs, never the raw TOML. Every problem is reported as one line,
``PATH: key.path: what is wrong`` (``images.httpd.run.ports[0]``), in a
``DockyardError``: ``load`` raises nothing else, whatever the file holds.

Loading goes in three steps:

1. ``dockyard.document`` reads the file within its limits (1 MiB, 32 levels of nesting,
   32 parts in a dotted key, no NUL) and resolves ``${VAR}`` in string values from the
   environment, as Compose does: ``${VAR}`` must be set, ``${VAR:-default}`` falls back
   when it is unset or empty, ``$$`` is a literal ``$``. The environment is the process's
   over the ``.env`` file beside containers.toml, if there is one (``dockyard.env_files``);
2. the structure is checked against the key tables in ``dockyard.schema`` (unknown,
   missing and mistyped keys), the same tables the published JSON Schema comes from;
3. the values are read into specs here: formats, paths that must exist, duplicates,
   each run table's ``env_file`` files, and the build order from the Dockerfiles
   (``dockyard.graph``).

Which values are secret is worked out here too (``dockyard.masking`` has the rule): the
specs keep the names and values, and every message here masks them.

Numbers inside strings (ports, ``on-failure:N``, URL ports) are ASCII digits only:
``str.isdigit`` and ``\\d`` would take other scripts' digits, which the engine does not.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import posixpath
import re
import shlex
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import engine_choice, env_files, schema, services
from .dockerignore import sends
from .document import key_path, read
from .errors import DockyardError
from .graph import normalize_ref, resolve_parents
from .masking import masked_text
from .records import frozen

__all__ = [
    "DEFAULT_FILE", "BaseSpec", "DeploySpec", "ImageSpec", "UpdateSpec", "PortMapping", "ProjectSpec", "ReadyCheck", "RunSpec",
    "WatchSpec", "load", "normalize_ref",
]

DEFAULT_FILE = "containers.toml"
DOTENV_FILE = ".env"  # beside containers.toml: values for ${VAR}, as Compose reads it
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")
RESERVED_NAMES = frozenset(schema.RESERVED_NAMES)
# All patterns are used with fullmatch: "$" would also match before a trailing newline.
NAME_RE = re.compile(schema.NAME_PATTERN)
VOLUME_NAME_RE = re.compile(schema.VOLUME_PATTERN)
NETWORKS = ("project", "bridge", "host", "none")
CONTAINER_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
STAGE_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9_.-]*")  # as the Dockerfile's `FROM ... AS NAME` takes it
BUILD_NETWORKS = ("default", "host", "none")  # `docker build --network`: what RUN steps reach
HOSTNAME_LABEL_RE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
# [registry[:port]/]path[:tag]: lower-case path components, tags may have capitals.
TAG_RE = re.compile(
    r"(?:(?:localhost|[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+)(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
)
PORT_NUMBER_RE = re.compile(r"[0-9]{1,5}")
PROTOCOLS = ("tcp", "udp", "sctp")
# The kernel's capabilities (capabilities(7), without CAP_), and ALL: a name outside them is a
# typo the engine would only refuse when the container is created.
CAPABILITIES = frozenset("""
    CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE
    NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO
    SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME
    SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG
    WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE ALL""".split())
SIZE_RE = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?[bkmgBKMG]?")  # '1.5g' too, as the docker CLI takes it
# Resource limits as the engine and the kernel take them; beyond these a run fails with the
# engine's raw JSON error, a runc error, or (cpus under 0.01) no limit at all.
INT64_MAX = 2 ** 63 - 1  # the Engine API's integers
MIN_MEMORY = 6 * 1024 ** 2  # the engine's minimum ("Minimum memory limit allowed is 6MB")
MAX_PIDS = 4 * 1024 ** 2  # the kernel's PID_MAX_LIMIT: runc cannot write a larger pids.max
MIN_CPUS = 0.01  # the engine's minimum, and the kernel's 1 ms of CFS quota in each 100 ms
MAX_CPUS = 8192  # the most CPUs a Linux kernel supports (NR_CPUS); the engine allows its host's count
# tmpfs options as the engine parses them (moby's mount.ParseTmpfsOptions): mount flags, and
# these keys with a value. Mounting a fresh tmpfs, bind and remount make no sense.
TMPFS_FLAGS = frozenset("""
    ro rw suid nosuid dev nodev exec noexec sync async dirsync mand nomand atime noatime diratime
    nodiratime relatime norelatime strictatime nostrictatime private rprivate shared rshared slave
    rslave unbindable runbindable""".split())
TMPFS_VALUES = {"size": r"[0-9]{1,19}[kmgKMG%]?", "nr_blocks": r"[0-9]{1,19}[kmgKMG%]?",
                "nr_inodes": r"[0-9]{1,19}[kmgKMG%]?", "mode": r"[0-7]{1,4}", "uid": r"[0-9]{1,10}",
                "gid": r"[0-9]{1,10}", "mpol": r"[a-z]+(?:=[a-z]+)?(?::[0-9-]+)?"}
URL_HOST_RE = re.compile(r"[A-Za-z0-9._-]+")
ENGINE_SCHEMES = engine_choice.SCHEMES  # as DOCKER_HOST takes them: https:// too
CONTEXT_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.+-]*")  # the docker CLI's rule
REGISTRY_RE = re.compile(r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                         r"(?::[0-9]{1,5})?|\[[0-9a-fA-F:.]+\](?::[0-9]{1,5})?")
# Least privilege: ports are published on loopback unless the config names an address.
DEFAULT_HOST_IP = "127.0.0.1"
# A fork bomb stops here instead of at the host's limit; far above what a server needs (the
# example's httpd runs a handful: the init, the server, a CGI and the wget it starts) and room
# for a pre-forking one. `pids = -1` lifts it.
DEFAULT_PIDS = 512


@frozen
class PortMapping:
    """One published port: HOST_IP:HOST_PORT on the host to CONTAINER_PORT/PROTOCOL."""

    host_ip: str
    host_port: int
    container_port: int
    protocol: str = "tcp"

    def __str__(self) -> str:
        return f"{self.host_ip}:{self.host_port}->{self.container_port}/{self.protocol}"


@frozen
class ReadyCheck:
    """What ``run`` waits on before it says the container is up."""

    url: str | None = None
    port: int | None = None
    timeout: float = 30.0


@frozen
class RunSpec:
    """[images.NAME.run]: how `run` and `up` start the image's container."""

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
    # Least privilege by default; containers.toml loosens each one (docs/security.md).
    no_new_privileges: bool = True
    cap_drop: tuple[str, ...] = ("ALL",)
    cap_add: tuple[str, ...] = ()
    privileged: bool = False
    read_only: bool = True  # a root filesystem the server cannot change; volumes and tmpfs stay writable
    tmpfs: tuple[str, ...] = ()
    memory: str | None = None
    pids: int | None = DEFAULT_PIDS
    cpus: float | None = None
    log_max_size: str = "10m"
    log_max_files: int = 3
    service: bool = False  # `up` starts it (see dockyard.services for the default)
    completes: bool = False  # a step `up` runs to its end before what comes after it
    after: tuple[str, ...] = ()  # services that must be ready first
    network: str = "project"  # or one of the engine's: bridge, host, none
    # -- more names and networks (services) --
    aliases: tuple[str, ...] = ()  # extra DNS names on the project network
    networks: tuple[str, ...] = ()  # existing networks it joins too, used as they are
    # -- env_file and secrets: `environment` above already holds the files' variables --
    env_file: tuple[Path, ...] = ()  # read at load; the table's environment wins over them
    secrets: frozenset[str] = frozenset()  # names in environment printed as ****** (dockyard.masking)

    @property
    def granted_capabilities(self) -> tuple[str, ...]:
        """``cap_add`` as the engine gets it. With the init and every capability dropped, KILL
        too, unless ``cap_drop`` or ``cap_add`` names it: the init, root without capabilities,
        cannot otherwise pass `stop`'s SIGTERM on to a server that switched user (httpd runs as
        www-data), exits 1 at once, and the server is killed instead of stopped."""
        if self.init and "ALL" in self.cap_drop and "KILL" not in self.cap_drop + self.cap_add:
            return self.cap_add + ("KILL",)
        return self.cap_add


@frozen
class BaseSpec:
    """An image that is not built from a Dockerfile: pulled, or imported from a rootfs."""

    pull: str | None = None
    rootfs: Path | None = None
    changes: tuple[str, ...] = ()


# -- [images.NAME.deploy]: a Swarm service of the image ---------------------------------

PUBLISH_MODES = ("ingress", "host")
UPDATE_ORDERS = ("start-first", "stop-first")
FAILURE_ACTIONS = ("rollback", "pause", "continue")
PLACEMENT_RE = re.compile(r"[A-Za-z0-9_.\-]+ *(?:==|!=) *\S.*")


@frozen
class UpdateSpec:
    """How `deploy` rolls a changed service over: Docker's update config."""

    parallelism: int = 1
    delay: float = 0.0
    order: str = "start-first"  # the new task answers before the old one stops
    failure_action: str = "rollback"
    monitor: float = 5.0  # Docker's default: seconds each new task is watched for failure


@frozen
class DeploySpec:
    """The image as a replicated Swarm service (``dockyard.swarm``); the container settings
    are the run table's."""

    replicas: int = 1
    publish: str = "ingress"  # Docker's default; "host": each task its own host port
    update: UpdateSpec = field(default_factory=UpdateSpec)
    placement: tuple[str, ...] = ()
    registry: str | None = None


# -- [images.NAME.watch]: what a watch copies into the running container -----------------


@frozen
class WatchSpec:
    """What `up --watch` and `run --watch` copy into the image's running container when it
    changes, instead of rebuilding (``dockyard.watch``)."""

    # (path relative to the image's dir, absolute path in the container), in the file's order:
    # a file to a file, a directory to a directory.
    sync: tuple[tuple[str, str], ...] = ()


@frozen
class ImageSpec:
    """[images.NAME]: one image, how it is built, run, deployed and watched."""

    key: str
    tag: str
    dir: Path
    dockerfile: str = "Dockerfile"
    engine: str | None = None  # [images.NAME] engine: where it is built and run (see engine_choice)
    build_args: tuple[tuple[str, str], ...] = ()
    target: str | None = None  # the Dockerfile's stage to build (default: its last)
    build_network: str | None = None  # BUILD_NETWORKS; None: the engine's default
    labels: tuple[tuple[str, str], ...] = ()
    base: BaseSpec | None = None
    run: RunSpec = field(default_factory=lambda: RunSpec(name=""))
    parents: tuple[str, ...] = ()
    deploy: DeploySpec = field(default_factory=DeploySpec)
    watch: WatchSpec = field(default_factory=WatchSpec)

    @property
    def ref(self) -> str:
        """The tag with an explicit ``:latest`` when none was given."""
        return normalize_ref(self.tag)

    @property
    def repository(self) -> str:
        return self.ref.rsplit(":", 1)[0]


@frozen
class ProjectSpec:
    """containers.toml as loaded and checked: [project] and every image."""

    name: str
    path: Path
    images: dict[str, ImageSpec]
    external_volumes: tuple[str, ...] = ()  # named volumes used as they are, not the project's
    engine: str | None = None  # [project] engine: an address or a Docker context's name
    registry: str | None = None  # [project] registry: HOST[:PORT]
    secrets: tuple[str, ...] = ()  # [project] secrets: names of variables whose values are secret
    # Their values, wherever they were found: masked in everything dockyard prints.
    masked_values: frozenset[str] = frozenset()

    @property
    def root(self) -> Path:
        return self.path.parent

    def image(self, key: str) -> ImageSpec:
        return self.images[key]


def _reaches(host_ip: str, hostname: str) -> bool:
    """Whether a port published on ``host_ip`` answers at the loopback ``hostname``: an IPv6
    one (`[::1]`) does not reach a port published on 127.0.0.1, nor the other way round;
    `localhost` is tried both ways."""
    try:
        asked = ipaddress.ip_address(hostname)
    except ValueError:  # a name: localhost
        return True
    return host_ip in ("", "0.0.0.0", "::") or asked.version == ipaddress.ip_address(host_ip).version


def size_bytes(size: str) -> int:
    """'256m' or '1.5g' as bytes (units b, k, m, g of 1024, as the docker CLI reads them)."""
    number, unit = (size, "b") if size[-1].isdigit() else (size[:-1], size[-1].lower())
    whole, _, fraction = number.partition(".")
    scale = 1024 ** "bkmg".index(unit)
    return int(whole or 0) * scale + int(fraction or 0) * scale // 10 ** len(fraction)  # whole bytes


def registry_address(value: str) -> str:
    """A registry as HOST[:PORT] (an http(s):// prefix and a trailing / are dropped); ValueError
    when it is not one."""
    text = str(value).strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    port = text.rpartition(":")[2] if ":" in text and not text.endswith("]") else None
    if not REGISTRY_RE.fullmatch(text) or (port is not None and not 1 <= int(port) <= 65535):
        raise ValueError(f"{_quote(str(value))} is not a registry address: expected HOST[:PORT], "
                         "e.g. localhost:5000 or registry.example.com")
    return text


@lru_cache(maxsize=8)
def load(path: str | Path = DEFAULT_FILE) -> ProjectSpec:
    """Read, validate and resolve ``containers.toml``; cached per path."""
    path = Path(path).absolute()
    validator = _Validator(path)
    environ = interpolation_environment(path.parent / DOTENV_FILE)
    data = read(path, environ)
    validator.structure(data, "", schema.DOCUMENT)
    validator.secrets(data, environ)
    return validator.project(data)


def interpolation_environment(dotenv: Path) -> dict[str, str]:
    """What ``${VAR}`` is resolved from: the process environment, over the ``.env`` file's
    variables (as Compose: what the shell sets wins). No ``.env`` is no extra variables."""
    try:
        variables = env_files.read(dotenv)
    except FileNotFoundError:
        variables = {}
    except env_files.EnvFileError as e:
        raise DockyardError(f"{dotenv}: {e}") from None
    return {**variables, **os.environ}


class _Validator:
    """Walks the TOML tree, building specs and failing on the first problem."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.root = path.parent
        self.secret_names: tuple[str, ...] = ()
        self.masked_values: frozenset[str] = frozenset()

    def fail(self, where: str, message: str) -> DockyardError:
        message = masked_text(message, self.masked_values)  # a message may quote a secret's value
        text = f"{self.path}: {where}: {message}" if where else f"{self.path}: {message}"
        # One line, whatever a path or a value holds: control characters are shown escaped.
        return DockyardError("".join(c if c.isprintable() else repr(c)[1:-1] for c in text))

    @contextmanager
    def filesystem(self, where: str) -> Iterator[None]:
        """A path the engine could not use either (too long, a loop, no access) is a config error."""
        try:
            yield
        except OSError as e:
            raise self.fail(where, f"cannot check {_quote(str(e.filename or ''))}: {e.strerror or e}") from None

    # -- structure: the key tables of dockyard.schema -------------------------

    def structure(self, value: Any, where: str, table: schema.Table) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a table, got {_type_name(value)}")
        for name in value:
            if name not in table.names:
                hint = difflib.get_close_matches(name, table.names, n=1)
                suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
                known = ", ".join(sorted(table.names))
                raise self.fail(key_path(where, name), f"unknown key{suggestion}; known keys: {known}")
        for key in table.keys:
            if key.required and key.name not in value:
                raise self.fail(where, f"missing required key '{key.name}' ({key.description})")
        if table.exactly_one and sum(name in value for name in table.exactly_one) != 1:
            raise self.fail(where, f"give exactly one of {_either(table.exactly_one)}")
        if table.at_least_one and not any(name in value for name in table.at_least_one):
            names = ", ".join(f"'{name}'" for name in table.at_least_one)
            several = "or both" if len(table.at_least_one) == 2 else "or more"
            raise self.fail(where, f"needs {names} {several}")
        for key in table.keys:
            if key.name in value:
                self.typed(value[key.name], key_path(where, key.name), key)
        return value

    def typed(self, value: Any, where: str, key: schema.Key) -> None:
        kind = key.type
        if kind == schema.STRING:
            self.string(value, where)
        elif kind == schema.BOOLEAN and not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {_type_name(value)}")
        elif kind == schema.INTEGER and (not isinstance(value, int) or isinstance(value, bool)):
            raise self.fail(where, f"expected an integer, got {_type_name(value)}")
        elif kind == schema.NUMBER and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise self.fail(where, f"expected a number, got {_type_name(value)}")
        elif kind == schema.STRINGS:
            self.strings(value, where)
        elif kind == schema.SCALARS:
            self.scalars(value, where)
        elif kind == schema.COMMAND:
            if isinstance(value, list):
                self.strings(value, where)
            elif isinstance(value, str):
                self.string(value, where)
            else:
                raise self.fail(where, f"expected a string or a list of strings, got {_type_name(value)}")
        elif kind == schema.TABLE:
            assert key.table is not None
            self.structure(value, where, key.table)
        elif kind == schema.TABLES:
            assert key.table is not None
            if not isinstance(value, dict):
                raise self.fail(where, f"expected a table, got {_type_name(value)}")
            if not value:
                raise self.fail(where, f"none defined; add a [{where}.NAME] table")
            for name, item in value.items():
                self.table_name(name, key_path(where, name), key)
                self.structure(item, key_path(where, name), key.table)

    def table_name(self, name: str, where: str, key: schema.Key) -> None:
        if key.name_pattern and not re.fullmatch(key.name_pattern, name):
            if key.name == "images":  # a dot too would make Invoke look for a namespace that is not there
                raise self.fail(where, "image names are lower-case letters, digits, '_' or '-', starting with "
                                       "a letter or digit (no '.': Invoke separates namespaces with it)")
            raise self.fail(where, "names here are letters, digits, '.', '_' or '-'")
        if name in key.reserved_names:
            raise self.fail(where, f"the name '{name}' is taken by the top-level task `inv {name}`; rename the image")

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"expected a string, got {_type_name(value)}")
        if not value.strip():
            raise self.fail(where, "must not be empty")
        return value

    def strings(self, value: Any, where: str) -> None:
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list of strings, got {_type_name(value)}")
        for i, item in enumerate(value):
            self.string(item, f"{where}[{i}]")

    def scalars(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a table of strings, got {_type_name(value)}")
        for name, item in value.items():
            if not isinstance(item, (str, int, float)):  # bool is an int
                raise self.fail(key_path(where, name), f"expected a string, got {_type_name(item)}")

    # -- meaning: the structure is known to be right from here on ---------------

    def secrets(self, data: dict, environ: dict[str, str]) -> None:
        """[project] secrets, and the values known so far: from ${NAME} and from the tables'
        entries of that name (an env_file's are added when it is read)."""
        names = data["project"].get("secrets", [])
        for i, name in enumerate(names):
            if "=" in name:
                raise self.fail(f"project.secrets[{i}]", f"{_quote(name)} is not a variable's name (no '=')")
        self.secret_names = tuple(names)
        values = {environ.get(name, "") for name in names}
        for image in data["images"].values():
            for table in (image.get("build_args", {}), image.get("run", {}).get("environment", {})):
                values |= {_scalar(value) for name, value in table.items() if name in names}
        self.masked_values = frozenset(value for value in values if value)

    def project(self, data: dict) -> ProjectSpec:
        name = data["project"]["name"]
        if not NAME_RE.fullmatch(name):
            raise self.fail("project.name", f"{_quote(name)} must be lower-case letters, digits, '.', '_' or '-'")
        images = {key: self.image(key, value) for key, value in data["images"].items()}
        self.unique(images)
        services.check(images, self.fail)
        external = tuple(key for key, volume in data.get("volumes", {}).items() if volume.get("external"))
        engine = self.engine(data["project"].get("engine"))
        images = resolve_parents(images, self.path)
        self.same_engine_as_parents(images, engine)
        return ProjectSpec(name=name, path=self.path, images=images,
                           external_volumes=external, engine=engine,
                           registry=self.registry(data["project"].get("registry"), "project.registry"),
                           secrets=self.secret_names, masked_values=self.masked_values)

    def same_engine_as_parents(self, images: dict[str, ImageSpec], project_engine: str | None) -> None:
        """An image is built where its project parents are: FROM finds them on that engine only."""
        for spec in images.values():
            mine = spec.engine or project_engine
            for parent in spec.parents:
                theirs = images[parent].engine or project_engine
                if theirs != mine:
                    said = f"engine {_quote(theirs)}" if theirs else "the project's engine"
                    raise self.fail(key_path("images", spec.key) + ".engine",
                                    f"{spec.key} is built FROM {parent}, which is on {said}: an image is built on "
                                    f"its parents' engine (give {parent} the same engine, or push {parent} to a "
                                    "registry and name it there as an external image)")

    def engine(self, value: str | None, where: str = "project.engine") -> str | None:
        if value is None:
            return None
        value = value.strip()
        if "://" in value:
            problem = "" if value.startswith(ENGINE_SCHEMES) and value.split("://", 1)[1] else "not an address"
            problem = problem or engine_choice.address_problem(value)
            if problem:
                raise self.fail(where, f"{_quote(value)}: {problem}; expected {engine_choice.FORMS}")
        elif not CONTEXT_NAME_RE.fullmatch(value):
            raise self.fail(where, f"{_quote(value)} is neither an address (unix://, tcp://, ssh://) "
                                              "nor a Docker context's name")
        return value

    def registry(self, value: str | None, where: str) -> str | None:
        if value is None:
            return None
        try:
            return registry_address(value)
        except ValueError as e:
            raise self.fail(where, str(e)) from None

    def image(self, key: str, data: dict) -> ImageSpec:
        where = key_path("images", key)
        tag = data["tag"]
        if not TAG_RE.fullmatch(tag):
            raise self.fail(f"{where}.tag", f"{_quote(tag)} is not a valid image tag "
                                            "(lower-case name, optional registry and ':tag')")
        directory = self.root / data["dir"]
        with self.filesystem(f"{where}.dir"):
            if not directory.exists():
                raise self.fail(f"{where}.dir", f"directory {directory} does not exist")
            if not directory.is_dir():
                raise self.fail(f"{where}.dir", f"{directory} is not a directory")
            # Least privilege: a build context sends its whole directory to the engine.
            if not data.get("outside_project", False) and not directory.resolve().is_relative_to(self.root.resolve()):
                raise self.fail(f"{where}.dir", f"{directory} is outside the project's directory {self.root}; "
                                                "set outside_project = true to allow it")
        base = self.base(data["base"], f"{where}.base", directory) if "base" in data else None
        dockerfile = data.get("dockerfile", "Dockerfile")
        if base is None:
            self.file_inside(directory, dockerfile, f"{where}.dockerfile")
        for option in ("target", "build_network"):
            if base is not None and option in data:
                raise self.fail(f"{where}.{option}", "a base is imported or pulled, not built: it has no "
                                                     f"{option.replace('_', ' ')}")
        target = data.get("target")
        if target is not None and not STAGE_RE.fullmatch(target):
            raise self.fail(f"{where}.target", f"{_quote(target)} is not a stage name (letters, digits, "
                                               "'_', '-', '.', starting with a letter)")
        build_network = data.get("build_network")
        if build_network is not None and build_network not in BUILD_NETWORKS:
            raise self.fail(f"{where}.build_network", f"{_quote(build_network)} is not one of "
                                                      f"{', '.join(BUILD_NETWORKS)}")
        labels = _scalars(data.get("labels", {}))
        for label, value in labels:
            if any(mark in label + value for mark in "\n\r"):
                raise self.fail(key_path(f"{where}.labels", label),
                                "a label cannot hold a line break (a Dockerfile LABEL cannot carry one)")
            if label.startswith("dockyard."):
                raise self.fail(key_path(f"{where}.labels", label),
                                "labels starting with 'dockyard.' are dockyard's own")
        return ImageSpec(
            key=key,
            tag=tag,
            dir=directory,
            dockerfile=dockerfile,
            engine=self.engine(data.get("engine"), f"{where}.engine"),
            build_args=_scalars(data.get("build_args", {})),
            target=target,
            build_network=None if build_network == "default" else build_network,
            labels=labels,
            base=base,
            run=self.run(data.get("run", {}), f"{where}.run", tag),
            deploy=self.deploy(data.get("deploy", {}), f"{where}.deploy"),
            watch=self.watch(data.get("watch", {}), f"{where}.watch", directory, dockerfile, base),
        )

    def file_inside(self, directory: Path, name: str, where: str) -> Path:
        """``directory / name``, which must be a regular file that does not lead out of it."""
        path = directory / name
        with self.filesystem(where):
            if not path.resolve().is_relative_to(directory.resolve()):
                raise self.fail(where, f"{name} is outside the image's directory {directory}")
            if not path.is_file():
                what = "does not exist" if not path.exists() and not path.is_symlink() else "is not a regular file"
                raise self.fail(where, f"{path} {what}")
        return path

    def base(self, data: dict, where: str, directory: Path) -> BaseSpec:
        rootfs = self.file_inside(directory, data["rootfs"], f"{where}.rootfs") if "rootfs" in data else None
        return BaseSpec(pull=data.get("pull"), rootfs=rootfs, changes=tuple(data.get("changes", ())))

    def run(self, data: dict, where: str, tag: str) -> RunSpec:
        default_name = tag.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
        name = data.get("name", default_name)
        if not CONTAINER_NAME_RE.fullmatch(name):
            raise self.fail(f"{where}.name", f"{_quote(name)} is not a valid container name")
        ports = tuple(self.port(p, f"{where}.ports[{i}]") for i, p in enumerate(data.get("ports", [])))
        command = data.get("command")
        if isinstance(command, list):
            command = tuple(command)
        elif command is not None:
            self.command(command, f"{where}.command")
        env_file, from_files = self.env_file(data.get("env_file", []), f"{where}.env_file")
        environment = from_files | dict(self.environment(data.get("environment", {}), f"{where}.environment"))
        # Secret: whatever an env_file sets (that is why it is kept out of containers.toml), and
        # the names [project] secrets lists. Only the latter are masked inside other values:
        # an env file's PORT=8000 must not mask every 8000 that is printed.
        secrets = frozenset(from_files) | {name for name in environment if name in self.secret_names}
        self.masked_values |= {environment[name] for name in secrets if name in self.secret_names} - {""}
        return RunSpec(
            name=name,
            ports=ports,
            environment=tuple(environment.items()),
            env_file=env_file,
            secrets=secrets,
            command=command,
            user=data.get("user"),
            volumes=tuple(self.volume(v, f"{where}.volumes[{i}]") for i, v in enumerate(data.get("volumes", []))),
            workdir=data.get("workdir"),
            restart=self.restart(data.get("restart", "no"), f"{where}.restart"),
            ready=self.ready(data["ready"], f"{where}.ready", ports, data.get("network", "project"))
            if "ready" in data else None,
            init=data.get("init", True),
            no_new_privileges=data.get("no_new_privileges", True),
            cap_drop=self.capabilities(data.get("cap_drop", ["ALL"]), f"{where}.cap_drop"),
            cap_add=self.capabilities(data.get("cap_add", []), f"{where}.cap_add"),
            privileged=data.get("privileged", False),
            read_only=data.get("read_only", True),
            tmpfs=self.tmpfs(data.get("tmpfs", []), f"{where}.tmpfs"),
            memory=self.memory(data["memory"], f"{where}.memory") if "memory" in data else None,
            pids=self.pids(data.get("pids", DEFAULT_PIDS), f"{where}.pids"),
            cpus=self.cpus(data["cpus"], f"{where}.cpus") if "cpus" in data else None,
            log_max_size=self.size(data.get("logs", {}).get("max_size", "10m"), f"{where}.logs.max_size"),
            log_max_files=self.positive(data.get("logs", {}).get("max_files", 3), f"{where}.logs.max_files"),
            service=self.service(data, where),
            completes=data.get("completes", False),
            after=tuple(data.get("after", ())),
            network=self.network(data.get("network", "project"), f"{where}.network"),
            aliases=self.aliases(data, where),
            networks=self.networks(data, where),
        )

    def service(self, data: dict, where: str) -> bool:
        """Whether `up` starts it. A step (``completes``) is a service that runs to its end: what
        would keep it from starting, from ending or from ending for good is refused."""
        if data.get("completes"):
            step = "completes = true (a step `up` runs to its end) does not go with"
            if data.get("service") is False:
                raise self.fail(f"{where}.service", f"{step} service = false: `up` would never run it")
            if "ready" in data:
                raise self.fail(f"{where}.ready", f"{step} a ready check: `up` waits until a step exits")
            if data.get("restart", "no") != "no":
                raise self.fail(f"{where}.restart", f"{step} a restart policy: the engine would run it again")
        return data.get("service", services.is_service_by_default(data))

    def env_file(self, value: str | list[str], where: str) -> tuple[tuple[Path, ...], dict[str, str]]:
        """The files (relative to containers.toml) and their variables, a later file's winning."""
        names = [value] if isinstance(value, str) else value
        paths, variables = [], {}
        for i, name in enumerate(names):
            at = where if isinstance(value, str) else f"{where}[{i}]"
            with self.filesystem(at):
                try:
                    path = (self.root / Path(name).expanduser()).absolute()
                except RuntimeError:  # ~user that does not exist, or no HOME
                    raise self.fail(at, f"cannot expand {_quote(name)} to a home directory") from None
                try:
                    variables |= env_files.read(path)
                except FileNotFoundError:
                    raise self.fail(at, f"the env file {path} does not exist") from None
                except env_files.EnvFileError as e:
                    raise self.fail(at, f"{path}: {e}") from None
            paths.append(path)
        return tuple(paths), variables

    def aliases(self, data: dict, where: str) -> tuple[str, ...]:
        """Hostnames the container answers to on the project network, besides its name and key."""
        values = data.get("aliases", [])
        if values and data.get("network", "project") != "project":
            raise self.fail(f"{where}.aliases", "aliases are names on the project network, and this "
                                                f"image's network is {_quote(data['network'])}")
        for i, value in enumerate(values):
            labels = value.split(".")
            if len(value) > 253 or not all(HOSTNAME_LABEL_RE.fullmatch(label) for label in labels):
                raise self.fail(f"{where}.aliases[{i}]", f"{_quote(value)} is not a hostname: letters, digits "
                                                         "and '-' in dot-separated parts of 1-63 characters")
            if value in values[:i]:
                raise self.fail(f"{where}.aliases[{i}]", f"{_quote(value)} is listed twice")
        return tuple(values)

    def networks(self, data: dict, where: str) -> tuple[str, ...]:
        """Networks that exist on the engine already; the container joins them as well."""
        values = data.get("networks", [])
        if values and data.get("network", "project") in ("host", "none"):
            raise self.fail(f"{where}.networks", f"a container with network = {_quote(data['network'])} "
                                                 "cannot join other networks")
        for i, value in enumerate(values):
            if not CONTAINER_NAME_RE.fullmatch(value) or value in ("host", "none"):
                raise self.fail(f"{where}.networks[{i}]", f"{_quote(value)} is not a network that a "
                                                          "container can join by name")
            if value in values[:i]:
                raise self.fail(f"{where}.networks[{i}]", f"{_quote(value)} is listed twice")
        return tuple(values)

    def deploy(self, data: dict, where: str) -> DeploySpec:
        replicas = data.get("replicas", 1)
        if not 0 <= replicas <= 1000:
            raise self.fail(f"{where}.replicas", f"{replicas!r} must be a whole number from 0 to 1000")
        publish = self.choice(data.get("publish", "ingress"), f"{where}.publish", PUBLISH_MODES)
        update = data.get("update", {})
        parallelism = update.get("parallelism", 1)
        if not 0 <= parallelism <= 1000:
            raise self.fail(f"{where}.update.parallelism", f"{parallelism!r} must be a whole number from 0 to 1000")
        delay = update.get("delay", 0.0)
        if not 0 <= delay < 86400:  # also false for nan
            raise self.fail(f"{where}.update.delay", f"must be a number of seconds from 0 to 86400, got {delay!r}")
        monitor = update.get("monitor", 5.0)
        if not 0 <= monitor < 86400:
            raise self.fail(f"{where}.update.monitor", f"must be a number of seconds from 0 to 86400, got {monitor!r}")
        placement = tuple(data.get("placement", ()))
        for i, constraint in enumerate(placement):
            if not PLACEMENT_RE.fullmatch(constraint):
                raise self.fail(f"{where}.placement[{i}]", f"{_quote(constraint)} is not a constraint; "
                                                           "expected 'ATTRIBUTE==VALUE' or 'ATTRIBUTE!=VALUE', "
                                                           "e.g. 'node.role==manager'")
        return DeploySpec(
            replicas=replicas, publish=publish, placement=placement,
            update=UpdateSpec(parallelism=parallelism, delay=float(delay),
                              order=self.choice(update.get("order", "start-first"), f"{where}.update.order",
                                                UPDATE_ORDERS),
                              failure_action=self.choice(update.get("failure_action", "rollback"),
                                                         f"{where}.update.failure_action", FAILURE_ACTIONS),
                              monitor=float(monitor)),
            registry=self.registry(data.get("registry"), f"{where}.registry"),
        )

    def watch(self, data: dict, where: str, directory: Path, dockerfile: str, base: BaseSpec | None) -> WatchSpec:
        """Each synced path must be one a rebuild carries too (sent in the build context, not
        the Dockerfile), and its target a path in a directory other than / (a watch makes
        that directory a writable volume, see ``dockyard.watch``)."""
        sync = tuple((str(k), _scalar(v)) for k, v in data.get("sync", {}).items())
        if sync and base is not None:
            raise self.fail(f"{where}.sync", "a base is imported or pulled, not built from its directory: "
                                             "it has nothing to sync")
        targets: dict[str, str] = {}
        for source, target in sync:
            at = key_path(f"{where}.sync", source)
            path = directory / source
            with self.filesystem(at):
                if source.startswith("/") or not path.resolve().is_relative_to(directory.resolve()) \
                        or path.resolve() == directory.resolve():
                    raise self.fail(at, f"{_quote(source)} must be a file or directory inside the image's "
                                        f"directory {directory}")
                if not path.is_file() and not path.is_dir():
                    raise self.fail(at, f"{path} does not exist (or is not a file or a directory)")
                if path.resolve() == (directory / dockerfile).resolve():
                    raise self.fail(at, "the Dockerfile cannot be synced: a change to it is a rebuild")
                if not sends(directory, dockerfile, path):
                    raise self.fail(at, f"{_quote(source)} is left out of the build context by .dockerignore: "
                                        "a rebuild would not carry it")
            target = posixpath.normpath(target) if target.startswith("/") else target
            writable = target if path.is_dir() else posixpath.dirname(target)  # the volume a watch mounts
            if not target.startswith("/") or ":" in target or writable in ("/", "//"):
                raise self.fail(at, f"{_quote(target)} must be an absolute path in the container, in a directory "
                                    "other than / (that directory is made writable while a watch runs), "
                                    "e.g. '/www/cgi-bin/hello'")
            if target in targets:
                raise self.fail(at, f"{_quote(target)} is also the target of {_quote(targets[target])}")
            targets[target] = source
        return WatchSpec(sync=tuple((source, target) for target, source in targets.items()))

    def choice(self, value: str, where: str, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            raise self.fail(where, f"{_quote(value)} is not one of {', '.join(allowed)}")
        return value

    def capabilities(self, values: list[str], where: str) -> tuple[str, ...]:
        names = []
        for i, value in enumerate(values):
            name = value.upper().removeprefix("CAP_") if value.isascii() else value
            if name not in CAPABILITIES:
                raise self.fail(f"{where}[{i}]", f"{_quote(value)} is not a capability name (see "
                                                 "capabilities(7)), e.g. 'SETUID' or 'ALL'")
            names.append(name)
        return tuple(names)

    def container_path(self, value: str, where: str) -> str:
        if not value.startswith("/") or ":" in value:
            raise self.fail(where, f"{_quote(value)} must be an absolute path in the container")
        return value

    def size(self, value: str, where: str) -> str:
        if not SIZE_RE.fullmatch(value):
            raise self.fail(where, f"{_quote(value)} is not a size; expected a number with b, k, m or g, e.g. '256m' "
                                   "or '1.5g'")
        return value.lower()

    def memory(self, value: str, where: str) -> str:
        size = self.size(value, where)
        if not MIN_MEMORY <= size_bytes(size) <= INT64_MAX:
            raise self.fail(where, f"{_quote(value)} is outside what the engine takes: from '6m' (its minimum) "
                                   f"to {INT64_MAX} bytes")
        return size

    def pids(self, value: int, where: str) -> int:
        if value != -1 and not 1 <= value <= MAX_PIDS:
            raise self.fail(where, f"{value!r} must be a number of processes from 1 to {MAX_PIDS} (the kernel's "
                                   "most), or -1 for no limit")
        return value

    def cpus(self, value: int | float, where: str) -> float:
        if not MIN_CPUS <= value <= MAX_CPUS:  # also false for nan
            raise self.fail(where, f"{value!r} must be from {MIN_CPUS} to {MAX_CPUS} CPUs (the engine allows at "
                                   "most its host's number of CPUs)")
        return float(value)

    def tmpfs(self, values: list[str], where: str) -> tuple[str, ...]:
        """``PATH`` or ``PATH:OPTIONS``, as `docker run --tmpfs` takes them: OPTIONS are
        comma-separated mount flags and size, mode, uid, gid, nr_inodes, nr_blocks, mpol."""
        paths: list[str] = []
        for i, value in enumerate(values):
            at = f"{where}[{i}]"
            path, _, options = value.partition(":")
            if not path.startswith("/") or path == "/" or "," in path:
                hint = " (options go after a ':', e.g. '/tmp:size=64m,noexec')" if "," in path else ""
                raise self.fail(at, f"{_quote(value)} is not 'PATH' or 'PATH:OPTIONS' with an absolute PATH "
                                    f"other than /{hint}")
            for option in options.split(",") if options else ():
                name, equals, setting = option.partition("=")
                pattern = TMPFS_VALUES.get(name)
                if equals and pattern is not None and re.fullmatch(pattern, setting, re.ASCII):
                    continue
                if not equals and name in TMPFS_FLAGS:
                    continue
                raise self.fail(at, f"{_quote(option)} in {_quote(value)} is not a tmpfs option: use mount flags "
                                    "(e.g. noexec, nosuid, ro) or size=N[k|m|g|%], mode=OCTAL, uid=N, gid=N, "
                                    "nr_inodes=N, nr_blocks=N, mpol=POLICY, separated by commas")
            if path in paths:
                raise self.fail(at, f"{_quote(path)} is listed twice")
            paths.append(path)
        return tuple(values)

    def positive(self, value: int | float, where: str) -> Any:
        if value <= 0:
            raise self.fail(where, f"{value!r} must be more than 0")
        return value

    def network(self, value: str, where: str) -> str:
        if value not in NETWORKS:
            raise self.fail(where, f"{_quote(value)} is not a network; use one of {', '.join(NETWORKS)}")
        return value

    def command(self, value: str, where: str) -> None:
        """A string command is split as docker-py will split it; find a bad quote now, not at run."""
        try:
            words = shlex.split(value)
        except ValueError as e:
            raise self.fail(where, f"cannot split {_quote(value)} into words ({e}); fix the quoting or give a list")
        if not words:
            raise self.fail(where, f"{_quote(value)} has no words")

    def environment(self, value: dict, where: str) -> tuple[tuple[str, str], ...]:
        items = _scalars(value)
        for key, _ in items:
            if not key or "=" in key:
                raise self.fail(key_path(where, key),
                                "an environment variable's name must be non-empty and without '='")
        return items

    def port(self, value: str, where: str) -> PortMapping:
        """``[IP:]HOST:CONTAINER[/PROTO]`` or ``PORT``; an IPv6 address goes in brackets."""
        mapping, slash, protocol = value.partition("/")
        if slash and protocol not in PROTOCOLS:
            raise self.fail(where, f"{_quote(value)}: the protocol must be one of {', '.join(PROTOCOLS)}")
        ip = DEFAULT_HOST_IP
        if mapping.startswith("["):
            address, bracket, rest = mapping[1:].partition("]")
            numbers = rest[1:].split(":") if bracket and rest.startswith(":") else []
            if len(numbers) != 2:
                raise self.fail(where, f"{_quote(value)} is not a port mapping; expected '[IPV6]:HOST:CONTAINER'")
            ip = self.address(address, value, where, ipaddress.IPv6Address)
        else:
            numbers = mapping.split(":")
            if len(numbers) > 3:
                raise self.fail(where, f"{_quote(value)} is not a port mapping; "
                                       "an IPv6 address goes in brackets: '[::1]:8000:8000'")
            if len(numbers) == 3:
                ip = self.address(numbers.pop(0), value, where, ipaddress.IPv4Address)
        for number in numbers:
            if not PORT_NUMBER_RE.fullmatch(number):
                raise self.fail(where, f"{_quote(value)} is not a port mapping; "
                                       "expected 'HOST:CONTAINER' in ASCII digits, e.g. '8000:8000'")
        host, container = int(numbers[0]), int(numbers[-1])
        for number in (host, container):
            if not 1 <= number <= 65535:
                raise self.fail(where, f"port {number} in {_quote(value)} is outside 1-65535")
        return PortMapping(ip, host, container, protocol or "tcp")

    def address(self, text: str, value: str, where: str, kind: type) -> str:
        """A literal IP address; anything else would make the engine publish on every interface."""
        family = "IPv4" if kind is ipaddress.IPv4Address else "IPv6"
        # ASCII hex digits, dots and colons only: no zone ids, no other scripts' digits.
        if text.isascii() and re.fullmatch(r"[0-9A-Fa-f.:]+", text):
            try:
                return str(kind(text))
            except ValueError:
                pass
        raise self.fail(where, f"{_quote(text)} in {_quote(value)} is not an {family} address")

    def volume(self, value: str, where: str) -> str:
        parts = value.split(":")
        if len(parts) not in (2, 3) or not all(parts[:2]) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise self.fail(where, f"{_quote(value)} is not a mount; expected 'SOURCE:TARGET' or 'SOURCE:TARGET:ro'")
        source, target = parts[0], parts[1]
        if not target.startswith("/"):
            raise self.fail(where, f"the target {_quote(target)} must be an absolute path in the container")
        if source.startswith((".", "/", "~")):
            with self.filesystem(where):
                try:
                    resolved = (self.root / Path(source).expanduser()).resolve()
                except RuntimeError:  # ~user that does not exist, or no HOME
                    raise self.fail(where, f"cannot expand {_quote(source)} to a home directory") from None
                if not resolved.exists():
                    raise self.fail(where, f"the source {resolved} does not exist")
            parts[0] = str(resolved)
            if len(parts) == 2:  # least privilege: a host directory is read-only unless ':rw' says so
                parts.append("ro")
        elif not VOLUME_NAME_RE.fullmatch(source):
            raise self.fail(where, f"{_quote(source)} is not a volume name (letters, digits, '.', '_', '-'), "
                                   "nor a host path (start it with ./, / or ~)")
        return ":".join(parts)

    def restart(self, value: str, where: str) -> str:
        policy, colon, count = value.partition(":")
        counted = policy == "on-failure" and re.fullmatch(r"[0-9]{1,9}", count)
        if policy not in RESTART_POLICIES or colon and not counted:
            raise self.fail(where, f"{_quote(value)} is not a restart policy; use one of {', '.join(RESTART_POLICIES)}"
                                   " (or 'on-failure:N', N in ASCII digits)")
        return value

    def ready(self, data: dict, where: str, ports: tuple[PortMapping, ...], network: str) -> ReadyCheck:
        url = data.get("url")
        if url is not None:
            self.url(url, f"{where}.url")
            if network != "host":  # on the host's network the server's own port answers
                self.url_port_published(url, f"{where}.url", ports)
        port = data.get("port")
        if port is not None and port not in {p.container_port for p in ports}:
            raise self.fail(f"{where}.port", f"port {port} is not published in ports")
        timeout = data.get("timeout", 30.0)
        if not 0 < timeout < 86400:  # also false for nan
            raise self.fail(f"{where}.timeout",
                            f"must be a positive number of seconds below 86400, got {timeout!r}")
        return ReadyCheck(url=url, port=port, timeout=float(timeout))

    def url(self, value: str, where: str) -> None:
        """What urllib will be able to open: http(s), a host, an optional port 1-65535."""
        if not value.isascii() or any(c <= " " or c == "\x7f" for c in value):
            raise self.fail(where, f"{_quote(value)} must be ASCII without spaces or control characters "
                                   "(percent-encode them)")
        if not re.match(r"https?://", value):
            raise self.fail(where, f"{_quote(value)} must start with http:// or https://")
        try:
            netloc = urlsplit(value).netloc.rpartition("@")[2]
        except ValueError as e:  # an unclosed '[', for one
            raise self.fail(where, f"{_quote(value)} is not a URL: {e}") from None
        if netloc.startswith("["):
            address, _, rest = netloc[1:].partition("]")
            self.address(address, value, where, ipaddress.IPv6Address)
        else:
            host, colon, port = netloc.partition(":")
            rest = colon + port
            if not URL_HOST_RE.fullmatch(host):
                raise self.fail(where, f"{_quote(value)} names no host, or an invalid one")
        if rest and not (rest.startswith(":") and PORT_NUMBER_RE.fullmatch(rest[1:]) and 1 <= int(rest[1:]) <= 65535):
            raise self.fail(where, f"{_quote(value)}: the port must be a number 1-65535 in ASCII digits")

    def url_port_published(self, url: str, where: str, ports: tuple[PortMapping, ...]) -> None:
        """A ready URL on this machine must name a host port the image publishes: any other
        would wait out the timeout while the server answers elsewhere (a port from ${VAR})."""
        parts = urlsplit(url)
        if parts.hostname is None or not is_loopback(parts.hostname):
            return  # another machine's address: what answers there is not ours to know
        port = parts.port or (443 if parts.scheme == "https" else 80)
        tcp = [p for p in ports if p.protocol == "tcp"]
        if any(p.host_port == port and _reaches(p.host_ip, parts.hostname) for p in tcp):
            return
        elsewhere = [p.host_ip for p in tcp if p.host_port == port]
        published = [p.host_port for p in tcp]
        said = (f"ports publishes it on {', '.join(elsewhere)} only, not at {parts.hostname}" if elsewhere else
                f"ports publishes {', '.join(map(str, published))}" if published else "ports publishes no TCP port")
        raise self.fail(where, f"{_quote(url)} asks port {port} of this machine, and {said}; name the published "
                               "host port (a port from the environment goes in both: "
                               "'http://localhost:${PORT}/' beside ports = ['${PORT}:8080'])")

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


def _scalars(value: dict) -> tuple[tuple[str, str], ...]:
    """A table of scalars as pairs; numbers and booleans become strings, as in an env file."""
    return tuple((key, _scalar(item)) for key, item in value.items())


def _scalar(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def is_loopback(host: str) -> bool:
    """A host name or address that only this machine reaches."""
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _either(names: tuple[str, ...]) -> str:
    quoted = [f"'{name}'" for name in names]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


def _quote(value: str, limit: int = 80) -> str:
    """A value for a one-line message: escaped if it holds control characters, and cut short."""
    text = value if value.isprintable() else repr(value)[1:-1]
    return f"'{text[:limit]}...'" if len(text) > limit else f"'{text}'"


def _type_name(value: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
             list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)


# Docker's default capabilities: adding one of these back is no weaker than Docker's default.
DOCKER_DEFAULT_CAPABILITIES = frozenset({
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
    "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"})
# Where engines keep the sockets that control them: Docker's, the containerd under it (its own or
# dockerd's), Podman's. A bind that is one of these, holds one or lies inside one hands the
# container the engine. Compared once resolved, so /var/run (a link to /run) is caught as /run.
ENGINE_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/run/podman/podman.sock")
ENGINE_SOCKET_DIRECTORIES = ("/run/containerd", "/var/run/containerd", "/run/docker", "/var/run/docker")
NOT_PROTECTED = "':ro' does not protect it: a read-only bind of a socket still accepts API writes"


def warnings(project: ProjectSpec, deployed: Iterable[str] = ()) -> list[str]:
    """Settings that loosen what a container may do, one line each, for `config` and `status`.
    ``deployed``: images with a Swarm service now, which publish like one with a [deploy] table."""
    found = []
    deployed = set(deployed)
    for key, spec in project.images.items():
        run, where = spec.run, f"images.{key}.run"
        if run.network == "host":
            found.append(f"{where}.network: 'host' shares the host's network: whatever the container listens on is "
                         "reachable on every interface of this machine (ports and their addresses do not apply)")
        for port in run.ports if run.network != "host" else ():
            if not ipaddress.ip_address(port.host_ip).is_loopback:
                found.append(f"{where}.ports: {port} is reachable from other machines (not a loopback address)")
        if run.privileged:
            found.append(f"{where}.privileged: the container gets every capability and device of the host")
        for i, volume in enumerate(run.volumes):
            source = volume.split(":")[0]
            exposed = engine_socket_exposure(Path(source)) if source.startswith("/") else None
            if exposed:
                found.append(f"{where}.volumes[{i}]: {source} {exposed}: the container controls the engine "
                             f"({NOT_PROTECTED})")
        beyond = [cap for cap in run.cap_add if cap not in DOCKER_DEFAULT_CAPABILITIES]
        if beyond:
            found.append(f"{where}.cap_add: {', '.join(beyond)} beyond Docker's default capabilities")
        if not run.no_new_privileges:
            found.append(f"{where}.no_new_privileges: false lets setuid files raise privileges")
        if spec.deploy != DeploySpec() or key in deployed:  # `deploy` says the same each time it runs
            found += filter(None, [swarm_ports_warning(spec)])
        found += secret_files_warnings(project, spec)
    return found


def secret_files_warnings(project: ProjectSpec, spec: ImageSpec) -> list[str]:
    """A build sends its whole directory: an env file in it reaches the engine, and `COPY .`
    puts it in the image, unless .dockerignore leaves it out (a `dir = "."` image, say)."""
    files = {path for image in project.images.values() for path in image.run.env_file}
    dotenv = project.root / DOTENV_FILE
    if project.secrets and dotenv.is_file():
        files.add(dotenv)
    return [f"images.{spec.key}.dir: its build context holds the env file {path}, with secret values: "
            f"the engine gets it, and COPY can put it in the image; add it to {spec.dir / '.dockerignore'}"
            for path in sorted(files) if spec.base is None and sends(spec.dir, spec.dockerfile, path)]


def engine_socket_exposure(source: Path) -> str | None:
    """How a host path mounted in a container reaches an engine's socket, or None: it is one,
    holds one (``/``, ``/run``), lies inside an engine's socket directory, or is, or directly
    holds, a socket named ``*.sock`` (another engine's, a rootless one's). The path is resolved,
    as the loader resolves it."""
    for name in ENGINE_SOCKETS + ENGINE_SOCKET_DIRECTORIES:
        known = Path(name).resolve()
        if source == known:
            return "is an engine's socket" if name in ENGINE_SOCKETS else "is where an engine keeps its sockets"
        if known.is_relative_to(source):
            return f"holds the engine socket {known}" if name in ENGINE_SOCKETS else \
                f"holds {known}, where an engine keeps its sockets"
        if name in ENGINE_SOCKET_DIRECTORIES and source.is_relative_to(known):
            return f"is inside {known}, where an engine keeps its sockets"
    try:
        if source.name.endswith(".sock") and stat.S_ISSOCK(source.stat().st_mode):
            return "is a socket, perhaps an engine's"
        if source.is_dir():
            with os.scandir(source) as entries:  # its own entries only: a deep walk would slow every load
                for entry in entries:
                    if entry.name.endswith(".sock") and stat.S_ISSOCK(entry.stat(follow_symlinks=False).st_mode):
                        return f"holds the socket {entry.name}, perhaps an engine's"
    except OSError:  # unreadable: the engine, as root, may still read it; say nothing we cannot tell
        pass
    return None


def swarm_ports_warning(spec: ImageSpec) -> str | None:
    """A swarm publishes on every interface of every node: it has no address setting."""
    if not spec.run.ports:
        return None
    ports = ", ".join(f"{p.container_port}/{p.protocol}" for p in spec.run.ports)
    verb = "is" if len(spec.run.ports) == 1 else "are"
    return (f"images.{spec.key}.deploy: as a swarm service its port {ports} {verb} published on every interface "
            f"of every node (a swarm has no address setting: the run table's host address does not apply)")
