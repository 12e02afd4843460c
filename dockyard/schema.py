"""The keys of containers.toml as data, and the JSON Schema made from them.

``dockyard.config`` checks a document's structure against these tables (unknown keys,
required keys, types, keys that exclude each other) before it reads any meaning into
it, and ``json_schema()`` turns the same tables into a JSON Schema (draft 2020-12) for
editors and CI, so the two cannot drift apart.

The schema covers structure only. What needs the file system or the whole project is
the validator's alone: directories, Dockerfiles and scripts that must exist, tag,
name, port, mount, URL and restart formats, duplicate tags and container names,
dependency cycles, NUL characters and ``${VAR}`` interpolation (the schema sees the
text before interpolation).

The committed ``dockyard/containers.schema.json`` is ``dumps()``; after changing a table,
rewrite it with ``python -c 'from dockyard import schema; schema.write()'`` (a test
compares the two). Editors and CI jobs that check TOML against a JSON Schema can use it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

NAME_PATTERN = "[a-z0-9][a-z0-9_.-]*"  # the project's name
# Image names become Invoke namespaces: the top-level collection's own tasks are taken, and
# no dot, which Invoke reads as a namespace's separator (`inv web.v2.build` finds no `web`).
IMAGE_NAME_PATTERN = "[a-z0-9][a-z0-9_-]*"
VOLUME_PATTERN = "[a-zA-Z0-9][a-zA-Z0-9_.-]*"  # the engine's rule for volume names
RESERVED_NAMES = ("build", "status", "config", "clean", "save", "load", "up", "down", "logs", "push", "pull",
                  "deploy", "undeploy")

# The value types a key may have.
STRING = "string"  # a string with something other than white space in it
BOOLEAN = "boolean"
INTEGER = "integer"
NUMBER = "number"  # an integer or a float
STRINGS = "list of strings"
SCALARS = "table of strings"  # numbers and booleans are allowed, and become strings
COMMAND = "string or list of strings"  # a command; also env_file's one path or several
TABLE = "table"  # the keys of Key.table
TABLES = "table of tables"  # any names, each a Key.table; at least one


# Named tuples rather than dataclasses: they are built at import, and `inv --list` waits.
class Table(NamedTuple):
    keys: tuple[Key, ...]
    # Names of which exactly one, or at least one, must be present.
    exactly_one: tuple[str, ...] = ()
    at_least_one: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [key.name for key in self.keys]


class Key(NamedTuple):
    name: str
    type: str
    description: str
    required: bool = False
    table: Table | None = None  # for TABLE and TABLES
    # For TABLES: the pattern every name must match in full, and the names it may not take.
    name_pattern: str | None = None
    reserved_names: tuple[str, ...] = ()


READY = Table(
    (
        Key("url", STRING, "an http:// URL that must answer 2xx/3xx"),
        Key("port", INTEGER, "a published container port that must accept connections"),
        Key("timeout", NUMBER, "seconds to wait (default 30)"),
    ),
    exactly_one=("url", "port"),
)

LOGS = Table((
    Key("max_size", STRING, "the size at which a log file is rotated, e.g. '10m' (default)"),
    Key("max_files", INTEGER, "how many log files are kept (default 3)"),
))

RUN = Table((
    Key("name", STRING, "the container's name (default: the tag's basename)"),
    Key("ports", STRINGS, "a list of 'HOST:CONTAINER' port mappings"),
    Key("environment", SCALARS, "a table of environment variables"),
    Key("env_file", COMMAND, "files of KEY=VALUE lines for the environment, relative to containers.toml; "
                             "their values are secret (environment wins over them)"),
    Key("command", COMMAND, "the command, a string or a list"),
    Key("user", STRING, "the user to run as, e.g. 'www-data'"),
    Key("volumes", STRINGS, "a list of 'SOURCE:TARGET[:ro]' mounts"),
    Key("workdir", STRING, "the working directory inside the container"),
    Key("restart", STRING, "the restart policy: no, always, unless-stopped, on-failure, on-failure:N"),
    Key("ready", TABLE, "what to wait on: {url = '...'} or {port = N}, with timeout", table=READY),
    Key("init", BOOLEAN, "run a tiny init as PID 1 that forwards signals (default true)"),
    Key("no_new_privileges", BOOLEAN, "forbid gaining privileges through setuid files (default true)"),
    Key("cap_drop", STRINGS, "capabilities to drop (default ['ALL']; [] keeps Docker's default set)"),
    Key("cap_add", STRINGS, "capabilities to add back, e.g. ['SETUID', 'SETGID']"),
    Key("privileged", BOOLEAN, "every capability and device of the host (default false)"),
    Key("read_only", BOOLEAN, "a read-only root filesystem (default true; volumes and tmpfs stay writable)"),
    Key("tmpfs", STRINGS, "fresh in-memory filesystems, 'PATH' or 'PATH:OPTIONS', e.g. ['/tmp', '/run:size=64m']"),
    Key("memory", STRING, "a memory limit, e.g. '256m' (b, k, m or g), from '6m'"),
    Key("pids", INTEGER, "the most processes the container may have (default 512), 1 to 4194304 (-1: no limit)"),
    Key("cpus", NUMBER, "how many CPUs' worth of time it may use, e.g. 0.5 (0.01 to 8192)"),
    Key("logs", TABLE, "rotation of json-file logs: {max_size = '10m', max_files = 3}", table=LOGS),
    Key("service", BOOLEAN, "whether `up` starts it (default: true when it publishes a port or has a ready check)"),
    Key("completes", BOOLEAN, "a step `up` runs to its end (a migration, a seed): the services whose `after` "
                              "names it start only once it has exited 0 (default false)"),
    Key("after", STRINGS, "services `up` starts, and waits to be ready (a step: to complete), before this one"),
    Key("network", STRING, "'project' (default: the project's network), 'bridge', 'host' or 'none'"),
    Key("aliases", STRINGS, "more hostnames it answers to on the project network, e.g. ['db']"),
    Key("networks", STRINGS, "networks that exist on the engine that it joins too (never created or removed)"),
))

# -- [images.NAME.deploy]: a Swarm service of the image (dockyard.swarm) --------------

UPDATE = Table((
    Key("parallelism", INTEGER, "tasks updated at once (default 1; 0: all at once)"),
    Key("delay", NUMBER, "seconds between updating one batch of tasks and the next (default 0)"),
    Key("order", STRING, "'start-first' (default: the new task answers before the old stops) or 'stop-first'"),
    Key("failure_action", STRING, "when an update fails: 'rollback' (default), 'pause' or 'continue'"),
    Key("monitor", NUMBER, "seconds each new task is watched for failure before the update goes on (default 5)"),
))

DEPLOY = Table((
    Key("replicas", INTEGER, "how many tasks the service runs (default 1)"),
    Key("publish", STRING, "'ingress' (Docker's default: the routing mesh) or 'host' (each task its own host port)"),
    Key("update", TABLE, "the rolling update: {" + ", ".join(UPDATE.names) + "}", table=UPDATE),
    Key("placement", STRINGS, "placement constraints, e.g. ['node.role==manager']"),
    Key("registry", STRING, "the registry the swarm's nodes pull the image from, HOST[:PORT]"),
))

# -- [images.NAME.watch]: what `up --watch` and `run --watch` copy instead of rebuilding ------

WATCH = Table((
    Key("sync", SCALARS, "files or directories of dir copied into the running container on change, instead of "
                         "a rebuild, by `--watch`: {'PATH IN DIR' = '/PATH/IN/CONTAINER'}"),
))

BASE = Table(
    (
        Key("pull", STRING, "an image to pull, e.g. 'busybox:latest'"),
        Key("rootfs", STRING, "a script in dir that writes a rootfs tarball to the path given as $1"),
        Key("changes", STRINGS, "Dockerfile instructions applied on import, e.g. ['CMD [\"sh\"]']"),
    ),
    at_least_one=("pull", "rootfs"),
)

IMAGE = Table((
    Key("tag", STRING, "the image's tag, e.g. 'radiasoft/httpd'", required=True),
    Key("dir", STRING, "the image's directory, relative to containers.toml", required=True),
    Key("engine", STRING, "the Docker engine this image is built and run on, as [project] engine (the "
                          "setting, DOCKYARD_ENGINE, DOCKER_HOST and DOCKER_CONTEXT come first)"),
    Key("dockerfile", STRING, "the Dockerfile's name inside dir"),
    Key("target", STRING, "the Dockerfile's stage to build, as `docker build --target` (default: its last)"),
    Key("build_network", STRING, "the network RUN steps have: 'default', 'host' or 'none' (docker build --network)"),
    Key("build_args", SCALARS, "a table of build arguments"),
    Key("labels", SCALARS, "a table of image labels"),
    Key("base", TABLE, "a base image that is pulled or imported instead of built", table=BASE),
    Key("run", TABLE, "how `run` starts the container", table=RUN),
    Key("deploy", TABLE, "how `deploy` runs it as a Swarm service", table=DEPLOY),
    Key("watch", TABLE, "what `up --watch` and `run --watch` sync into the running container", table=WATCH),
    Key("outside_project", BOOLEAN, "allow dir to lie outside the project's directory (default false)"),
))

PROJECT = Table((
    Key("name", STRING, "the project's name", required=True),
    Key("engine", STRING, "the Docker engine: unix://PATH, tcp://HOST:PORT, ssh://USER@HOST or a Docker "
                          "context's name (DOCKYARD_ENGINE, DOCKER_HOST and DOCKER_CONTEXT come first)"),
    Key("registry", STRING, "the registry `push` and `pull` use, HOST[:PORT] (--registry comes first)"),
    Key("secrets", STRINGS, "names of variables whose values dockyard prints as ******: in environment, "
                            "build_args and ${NAME}"),
))

VOLUME = Table((Key("external", BOOLEAN, "use the volume of this exact name; dockyard never creates or removes it"),))

DOCUMENT = Table((
    Key("project", TABLE, "the [project] table", required=True, table=PROJECT),
    Key("images", TABLES, "one [images.NAME] table per image", required=True, table=IMAGE,
        name_pattern=IMAGE_NAME_PATTERN, reserved_names=RESERVED_NAMES),
    Key("volumes", TABLES, "one [volumes.NAME] table per named volume that is not the project's own", table=VOLUME,
        name_pattern=VOLUME_PATTERN),
))


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a containers.toml document."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "containers.toml",
        "description": "dockyard's project file. Structure only: dockyard checks more when it loads it.",
        **_table_schema(DOCUMENT),
    }


def _table_schema(table: Table) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {key.name: _key_schema(key) for key in table.keys},
        "additionalProperties": False,
    }
    required = [key.name for key in table.keys if key.required]
    if required:
        schema["required"] = required
    if table.exactly_one:
        schema["oneOf"] = [{"required": [name]} for name in table.exactly_one]
    if table.at_least_one:
        schema["anyOf"] = [{"required": [name]} for name in table.at_least_one]
    return schema


_STRING = {"type": "string", "pattern": "\\S"}
_STRINGS = {"type": "array", "items": _STRING}


def _key_schema(key: Key) -> dict[str, Any]:
    described: dict[str, Any] = {"description": key.description}
    if key.type == STRING:
        return described | _STRING
    if key.type in (BOOLEAN, INTEGER, NUMBER):
        return described | {"type": key.type}
    if key.type == STRINGS:
        return described | _STRINGS
    if key.type == SCALARS:
        return described | {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}
    if key.type == COMMAND:
        return described | {"oneOf": [_STRING, _STRINGS]}
    assert key.table is not None, key
    if key.type == TABLE:
        return described | _table_schema(key.table)
    if key.type == TABLES:
        names: dict[str, Any] = {}
        if key.name_pattern:
            names["pattern"] = f"^{key.name_pattern}$"
        if key.reserved_names:
            names["not"] = {"enum": list(key.reserved_names)}
        tables = {"type": "object", "minProperties": 1, "additionalProperties": _table_schema(key.table)}
        return described | tables | ({"propertyNames": names} if names else {})
    raise AssertionError(f"unknown key type {key.type!r}")


SCHEMA_FILE = Path(__file__).with_name("containers.schema.json")


def dumps() -> str:
    """The schema as the committed ``containers.schema.json`` holds it."""
    return json.dumps(json_schema(), indent=2) + "\n"


def write(path: Path = SCHEMA_FILE) -> None:
    path.write_text(dumps(), encoding="utf-8")
