"""Registry names and credentials: pure logic, no engine and no registry."""

from __future__ import annotations

import base64
import json

import pytest

from dockyard import registry
from dockyard.errors import DockyardError


class Spec:
    def __init__(self, ref: str) -> None:
        self.ref = ref


@pytest.mark.parametrize("ref, expected", [
    ("radiasoft/httpd:latest", ("localhost:5000/radiasoft/httpd", "latest")),
    ("httpd:1.2", ("localhost:5000/httpd", "1.2")),
    ("quay.io/team/httpd:latest", ("localhost:5000/team/httpd", "latest")),
    ("localhost:4000/httpd:v1", ("localhost:5000/httpd", "v1")),
])
def test_the_tag_is_rewritten_for_the_registry_replacing_any_registry_host(ref, expected):
    assert registry.remote_name(Spec(ref), "localhost:5000") == expected


def test_the_first_registry_given_wins_and_a_bad_one_names_its_source():
    assert registry.registry_of((None, "--registry"), ("http://reg.example.com:5000/", "x")) == "reg.example.com:5000"
    with pytest.raises(DockyardError, match="^--registry: 'a b' is not a registry address"):
        registry.registry_of(("a b", "--registry"))
    with pytest.raises(DockyardError, match="no registry given"):
        registry.registry_of((None, "--registry"), (None, "project.registry"))


def decoded(header: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(header))


def test_credentials_come_from_the_docker_config_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert decoded(registry._plain_auth("localhost:5000")) == {}  # no config file: anonymous
    auth = base64.b64encode(b"me:s3cret").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"https://localhost:5000": {"auth": auth}}}))
    assert decoded(registry._plain_auth("localhost:5000")) == {
        "username": "me", "password": "s3cret", "serveraddress": "localhost:5000"}
    assert decoded(registry._plain_auth("other:5000")) == {}


def test_a_credential_helper_is_left_to_docker_py(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "pass"}))
    assert registry._plain_auth("localhost:5000") is None


def test_layer_progress_is_a_line_per_status_change(capsys):
    import sys

    progress = registry.LayerProgress("httpd", "latest", sys.stdout)
    for message in [{"status": "The push refers to repository [x]"}, {"id": "abc", "status": "Preparing"},
                    {"id": "abc", "status": "Pushing", "progressDetail": {"current": 1}},
                    {"id": "abc", "status": "Pushing", "progressDetail": {"current": 2}},
                    {"id": "abc", "status": "Pushed"}, {"id": "latest", "status": "Pulling from x"}]:
        progress.message(message)
    assert capsys.readouterr().out.splitlines() == ["httpd: abc: Preparing", "httpd: abc: Pushing", "httpd: abc: Pushed"]
    assert progress.count("Pushed") == 1


@pytest.mark.parametrize("pushed, pulled, line", [
    (1, None, "busybox: pushed R/busybox:latest (1 layer pushed, 0 already there)"),
    (2, None, "busybox: pushed R/busybox:latest (2 layers pushed, 0 already there)"),
    (0, None, "busybox: pushed R/busybox:latest (up to date)"),
    (None, 1, "busybox: pulled R/busybox:latest as busybox:latest (1 layer pulled, 0 already here)"),
    (None, 3, "busybox: pulled R/busybox:latest as busybox:latest (3 layers pulled, 0 already here)"),
    (None, 0, "busybox: pulled R/busybox:latest as busybox:latest (up to date)"),
])
def test_layer_counts_read_as_english(pushed, pulled, line):
    from dockyard.tasks.registry import result_line

    result = {"image": "busybox", "remote": "R/busybox:latest", "tag": "busybox:latest", "layers_existing": 0,
              "status": "pushed" if pulled is None else "pulled", "layers_pushed": pushed, "layers_pulled": pulled}
    assert result_line(result) == line
