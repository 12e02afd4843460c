"""The engine layer's own rules, without an engine: no private docker-py method anywhere, no
request or docker-py import outside the engine package, the rest of dockyard using only the
package's interface, and the engine's formats (queries, progress streams) read and written as
the engine takes them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import dockyard
from dockyard import engine
from dockyard.engine import answers
from dockyard.errors import DockyardError

PACKAGE = Path(dockyard.__file__).parent
# docker-py's private request methods and attributes, as an earlier engine.py called them.
PRIVATE = ("_result", "_get", "_url", "_raise_for_status", "_post", "_post_json", "_put", "_delete",
           "_set_auth_headers", "_stream_helper", "_get_raw_response_socket", "_read_from_socket",
           "_multiplexed_buffer_helper", "_multiplexed_response_stream_helper", "_attach_params",
           "_auth_configs", "_retrieve_server_version", "_stream_raw_result")
# The engine layer: the modules that may make a request or load docker-py.
ENGINE_PACKAGE = "engine/"
# What reaches an engine other than through the package's functions: docker-py, the HTTP
# clients under it or the standard library's, a unix socket, the package's transports.
REACHING = re.compile(r"^\s*(import|from)\s+(docker|requests|urllib3|http\.client)\b|^\s*from\s+http\s+import\s+.*\bclient\b"
                      r"|\bAF_UNIX\b|docker\.errors|\.api\.|\bdocker_client\(|\bengine\.(local|remote|client)\.")
# Lines REACHING matches that reach no engine, each with what it does reach.
NOT_THE_ENGINE = {
    "containers.py: import http.client": "the readiness check's GET of a container's published port",
}
# The package's modules that hold the engine's formats, which operations import by name.
FORMATS = {"ports", "buildkit"}


def sources() -> dict[str, str]:
    return {str(path.relative_to(PACKAGE)): path.read_text(encoding="utf-8") for path in PACKAGE.rglob("*.py")}


def outside_the_engine() -> dict[str, str]:
    return {name: text for name, text in sources().items() if not name.startswith(ENGINE_PACKAGE)}


def test_no_private_docker_py_method_is_called():
    calls = re.compile(r"\.api\._|\bapi\._[a-z]|\.(" + "|".join(PRIVATE) + r")\(")
    found = [f"{name}: {line.strip()}" for name, text in sources().items()
             for line in text.splitlines() if calls.search(line)]
    assert found == []


def test_only_the_engine_package_makes_requests_or_loads_docker_py():
    found = [f"{name}: {line.strip()}" for name, text in outside_the_engine().items()
             for line in text.splitlines() if REACHING.search(line)]
    assert [line for line in found if line not in NOT_THE_ENGINE] == []


def engine_imports(tree: ast.AST) -> list[tuple[int, str, tuple[str, ...]]]:
    """(line, the package's module imported or "" for the package itself, the names taken from it)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[:2] == ["dockyard", "engine"]:
                    found.append((node.lineno, parts[2] if len(parts) > 2 else "", ()))
        elif isinstance(node, ast.ImportFrom):
            parts = node.module.split(".") if node.module else []
            parts = parts[1:] if parts[:1] == ["dockyard"] else parts
            names = tuple(alias.name for alias in node.names)
            if parts[:1] == ["engine"]:
                found.append((node.lineno, parts[1] if len(parts) > 1 else "", () if len(parts) > 1 else names))
            elif not parts and "engine" in names:  # from . import engine; from dockyard import engine
                found.append((node.lineno, "", ()))
    return found


def test_the_rest_of_dockyard_uses_only_the_engine_packages_interface():
    """``engine.X`` for an X that the package's ``__init__`` exposes, and its formats' modules:
    never a transport, the client's own module or a private name."""
    interface = set(engine.__all__)
    found = []
    for name, text in outside_the_engine().items():
        tree = ast.parse(text)
        for line, module, names in engine_imports(tree):
            if module and module not in FORMATS:
                found.append(f"{name}:{line}: imports engine.{module}")
            found += [f"{name}:{line}: imports engine.{n}" for n in names if n not in interface | FORMATS]
        bound = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                 and node.module in (None, "dockyard") for alias in node.names if alias.name == "engine"}
        found += [f"{name}:{node.lineno}: engine.{node.attr}" for node in ast.walk(tree)
                  if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id in bound and node.attr not in interface]
    assert found == []


def test_a_filter_flag_is_sent_as_the_engine_reads_it():
    assert engine.query("/images/json", filters={"dangling": True, "label": ["a=b", "c"]}) == \
        "/images/json?filters=%7B%22dangling%22%3A+%5B%22true%22%5D%2C+%22label%22%3A+%5B%22a%3Db%22%2C+%22c%22%5D%7D"
    assert engine.query("/images/get", names=["a:1", "b:2"]) == "/images/get?names=a%3A1&names=b%3A2"


class Pieces(engine.Answer):
    def __init__(self, *pieces: bytes) -> None:
        super().__init__("load x")
        self.status, self._pieces = 200, pieces

    def pieces(self, size=None):
        yield from self._pieces


def test_a_progress_stream_is_read_across_pieces_lines_or_not():
    answer = Pieces(b'{"stream": "Step 1"}\r\n{"stream"', b': "caf\xc3', b'\xa9"}{"aux": {"ID": "sha256:1"}}\n')
    assert list(answer.messages()) == [{"stream": "Step 1"}, {"stream": "café"}, {"aux": {"ID": "sha256:1"}}]


def test_a_progress_stream_that_ends_in_the_middle_is_one_line(monkeypatch):
    monkeypatch.setattr(answers, "endpoint", lambda: "unix:///var/run/docker.sock")
    with pytest.raises(DockyardError, match="^load x: the Docker engine at unix:///var/run/docker.sock answered "
                                            "with something that is not JSON$"):
        list(Pieces(b'{"stream": "a"}{"str').messages())
