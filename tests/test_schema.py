"""The published JSON Schema and the loader agree on what a well-formed containers.toml is.

Both come from the key tables in dockyard.schema. The schema covers structure (keys,
types, required keys); the loader checks more (paths, formats, duplicates, cycles), so a
document the schema accepts may still fail to load, but never for a structural reason.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dockyard import config, schema
from dockyard.errors import DockyardError
from conftest import toml_text

VALID: dict[str, Any] = {
    "project": {"name": "demo", "secrets": ["P"]},
    "images": {
        "base": {"tag": "demo/base", "dir": "base",
                 "base": {"pull": "busybox:latest", "rootfs": "rootfs.sh", "changes": ['CMD ["sh"]']}},
        "app": {
            "tag": "demo/app", "dir": "app", "dockerfile": "Dockerfile",
            "build_args": {"A": "1", "N": 2}, "labels": {"x": True, "y": 1.5},
            "run": {
                "name": "app", "ports": ["8000:8000"], "environment": {"P": 8000}, "env_file": ["app.env"],
                "command": "httpd -f",
                "user": "www-data", "volumes": ["data:/data"], "workdir": "/www", "restart": "always",
                "ready": {"url": "http://localhost:8000/", "timeout": 5}, "init": True, "completes": False,
            },
        },
    },
}

# Messages of the structural checks, the part of the loader the schema mirrors.
STRUCTURAL = ("unknown key", "missing required key", "expected a", "expected true or false", "give exactly one of",
              "needs '", "must not be empty", "none defined", "image names are", "is taken by the top-level task")
WRONG_VALUES = ["x", " ", 1, 1.5, True, ["x"], [1], {"x": "y"}, {"x": [1]}, [], {}]


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    for name in ("app", "base"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "base" / "rootfs.sh").write_text("exit 0\n")
    (tmp_path / "app.env").write_text("TOKEN=1\n")
    return tmp_path


def load_outcome(project_dir: Path, document: dict[str, Any]) -> str | None:
    """None when the document loads, else the loader's message without the file name."""
    path = project_dir / "containers.toml"
    path.write_text(toml_text(document), encoding="utf-8")
    config.load.cache_clear()
    try:
        config.load(path)
    except DockyardError as e:
        return str(e)[len(f"{path}: "):]
    return None


def schema_accepts(document: dict[str, Any]) -> bool:
    return jsonschema.Draft202012Validator(schema.json_schema()).is_valid(document)


def paths(value: Any, at: tuple = ()) -> Iterator[tuple]:
    """Every key path in a document, tables before what they hold."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield at + (key,)
            yield from paths(item, at + (key,))


def tables(value: Any, at: tuple = ()) -> Iterator[tuple]:
    if isinstance(value, dict):
        yield at
        for key, item in value.items():
            yield from tables(item, at + (key,))


def changed(path: tuple, change) -> dict[str, Any]:
    document = copy.deepcopy(VALID)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    change(parent, path[-1])
    return document


def mutations() -> Iterator[tuple[str, dict[str, Any]]]:
    """Each key deleted, each value replaced by values of every type, an unknown key in each table."""
    for path in paths(VALID):
        where = ".".join(path)
        yield f"delete {where}", changed(path, lambda parent, key: parent.pop(key))
        for wrong in WRONG_VALUES:
            yield f"{where} = {wrong!r}", changed(path, lambda parent, key, wrong=wrong: parent.update({key: wrong}))
    for path in tables(VALID):
        document = copy.deepcopy(VALID)
        table = document
        for key in path:
            table = table[key]
        table["zz"] = "x"
        yield f"unknown key in {'.'.join(path) or 'the document'}", document
    for name in ("Bad Name", "build", "-x", "", "web.v2"):
        document = copy.deepcopy(VALID)
        document["images"][name] = document["images"].pop("app")
        yield f"image named {name!r}", document
    yield "no images", {"project": {"name": "demo"}, "images": {}}
    yield "both url and port", changed(("images", "app", "run", "ready", "port"),
                                       lambda parent, key: parent.update({key: 8000}))


def test_the_committed_schema_is_the_generated_one():
    assert schema.SCHEMA_FILE.read_text(encoding="utf-8") == schema.dumps(), \
        "run: python -c 'from dockyard import schema; schema.write()'"


def test_the_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(json.loads(schema.SCHEMA_FILE.read_text(encoding="utf-8")))


def test_the_valid_document_passes_both(project_dir):
    assert schema_accepts(VALID)
    assert load_outcome(project_dir, VALID) is None


def test_schema_and_loader_agree_on_structure(project_dir):
    checked = 0
    for name, document in mutations():
        message = load_outcome(project_dir, document)
        structural = message is not None and any(words in message for words in STRUCTURAL)
        assert schema_accepts(document) == (not structural), f"{name}: loader says {message!r}"
        checked += 1
    assert checked > 300


@pytest.mark.parametrize("name, change", [
    ("a directory that does not exist", lambda d: d["images"]["app"].update(dir="missing")),
    ("a bad tag", lambda d: d["images"]["app"].update(tag="Demo App")),
    ("a bad port mapping", lambda d: d["images"]["app"]["run"].update(ports=["127.0.0.256:80:80"])),
    ("a bad ready URL", lambda d: d["images"]["app"]["run"]["ready"].update(url="http://[::1/x")),
    ("a negative timeout", lambda d: d["images"]["app"]["run"]["ready"].update(timeout=-1)),
    ("a NUL character", lambda d: d["images"]["app"]["run"].update(user="a\0b")),
    ("an unset variable", lambda d: d["images"]["app"]["run"].update(user="${DOCKYARD_SCHEMA_UNSET}")),
    ("a duplicate tag", lambda d: d["images"]["app"].update(tag="demo/base")),
    ("a restart policy", lambda d: d["images"]["app"]["run"].update(restart="sometimes")),
    ("cpus beyond the engine's", lambda d: d["images"]["app"]["run"].update(cpus=1e300)),
    ("a tmpfs with options after a comma", lambda d: d["images"]["app"]["run"].update(tmpfs=["/tmp,exec"])),
    ("an env file that does not exist", lambda d: d["images"]["app"]["run"].update(env_file="missing.env")),
    ("a secret's name with '='", lambda d: d["project"].update(secrets=["A=B"])),
])
def test_what_only_the_loader_checks(project_dir, monkeypatch, name, change):
    monkeypatch.delenv("DOCKYARD_SCHEMA_UNSET", raising=False)
    document = copy.deepcopy(VALID)
    change(document)
    assert schema_accepts(document), name
    message = load_outcome(project_dir, document)
    assert message is not None and not any(words in message for words in STRUCTURAL), message


def test_every_key_in_the_tables_has_a_description_and_a_known_type():
    types = {schema.STRING, schema.BOOLEAN, schema.INTEGER, schema.NUMBER, schema.STRINGS, schema.SCALARS,
             schema.COMMAND, schema.TABLE, schema.TABLES}

    def keys(table: schema.Table) -> Iterator[schema.Key]:
        for key in table.keys:
            yield key
            if key.table is not None:
                yield from keys(key.table)

    for key in keys(schema.DOCUMENT):
        assert key.description and key.type in types, key
        assert (key.table is not None) == (key.type in (schema.TABLE, schema.TABLES)), key
