"""The engine layer's own rules, without an engine: no private docker-py method anywhere, no
request or docker-py import outside the engine layer, and the engine's formats (queries,
progress streams) read and written as the engine takes them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import dockyard
from dockyard import engine
from dockyard.engine import client
from dockyard.errors import DockyardError

PACKAGE = Path(dockyard.__file__).parent
# docker-py's private request methods and attributes, as an earlier engine.py called them.
PRIVATE = ("_result", "_get", "_url", "_raise_for_status", "_post", "_post_json", "_put", "_delete",
           "_set_auth_headers", "_stream_helper", "_get_raw_response_socket", "_read_from_socket",
           "_multiplexed_buffer_helper", "_multiplexed_response_stream_helper", "_attach_params",
           "_auth_configs", "_retrieve_server_version", "_stream_raw_result")
# The engine layer: the modules that may make a request or load docker-py.
ENGINE_LAYER = {"engine/client.py", "engine_choice.py", "ssh_relay.py"}


def sources() -> dict[str, str]:
    return {str(path.relative_to(PACKAGE)): path.read_text(encoding="utf-8") for path in PACKAGE.rglob("*.py")}


def test_no_private_docker_py_method_is_called():
    calls = re.compile(r"\.api\._|\bapi\._[a-z]|\.(" + "|".join(PRIVATE) + r")\(")
    found = [f"{name}: {line.strip()}" for name, text in sources().items()
             for line in text.splitlines() if calls.search(line)]
    assert found == []


def test_only_the_engine_layer_makes_requests_or_loads_docker_py():
    reaching = re.compile(r"^\s*(import docker\b|from docker\b)|engine\.client\(\)|docker\.errors|\.api\.")
    found = [f"{name}: {line.strip()}" for name, text in sources().items() if name not in ENGINE_LAYER
             for line in text.splitlines() if reaching.search(line)]
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
    monkeypatch.setattr(client, "endpoint", lambda: "unix:///var/run/docker.sock")
    with pytest.raises(DockyardError, match="^load x: the Docker engine at unix:///var/run/docker.sock answered "
                                            "with something that is not JSON$"):
        list(Pieces(b'{"stream": "a"}{"str').messages())
