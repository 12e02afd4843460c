"""containers.toml loading and validation: every error names the file and the key path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dockyard import config
from dockyard.errors import DockyardError
from dockyard.graph import build_order, from_refs

BASIC = """
[project]
name = "demo"

[images.base]
tag = "demo/base"
dir = "base"
[images.base.base]
rootfs = "rootfs.sh"

[images.app]
tag = "demo/app"
dir = "app"

[images.app.run]
ports = ["8000:8000"]
environment = { HTTPD_PORT = 8000 }
ready = { url = "http://localhost:8000/", timeout = 5 }
"""


def write_project(root: Path, toml: str, dockerfiles: dict[str, str] | None = None) -> Path:
    dockerfiles = {"app": "FROM demo/base\nCMD true\n"} if dockerfiles is None else dockerfiles
    (root / "base").mkdir(exist_ok=True)
    (root / "base" / "rootfs.sh").write_text("exit 0\n")
    for directory, text in dockerfiles.items():
        (root / directory).mkdir(exist_ok=True)
        (root / directory / "Dockerfile").write_text(text)
    path = root / "containers.toml"
    path.write_text(textwrap.dedent(toml))
    config.load.cache_clear()
    return path


def load_error(tmp_path: Path, toml: str, dockerfiles: dict[str, str] | None = None) -> str:
    path = write_project(tmp_path, toml, dockerfiles)
    with pytest.raises(DockyardError) as caught:
        config.load(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    return message


def test_loads_the_example_project():
    project = config.load(Path(__file__).parent.parent / "containers.toml")
    assert list(project.images) == ["busybox", "my-app", "httpd"]
    httpd = project.image("httpd")
    assert httpd.ref == "radiasoft/httpd:latest"
    assert httpd.run.name == "httpd"
    assert httpd.parents == ("my-app",)
    assert project.image("my-app").parents == ("busybox",)
    assert httpd.run.ports[0] == config.PortMapping("127.0.0.1", 8000, 8000, "tcp")
    assert dict(httpd.run.environment) == {"HTTPD_PORT": "8000"}


def test_defaults_and_resolution(tmp_path):
    project = config.load(write_project(tmp_path, BASIC))
    app = project.image("app")
    assert app.run.name == "app"  # the tag's basename, as run-httpd.sh does
    assert app.dockerfile == "Dockerfile"
    assert app.parents == ("base",)
    assert dict(app.run.environment) == {"HTTPD_PORT": "8000"}
    assert app.run.ready == config.ReadyCheck(url="http://localhost:8000/", timeout=5.0)
    assert project.image("base").base.rootfs == tmp_path / "base" / "rootfs.sh"


@pytest.mark.parametrize("mapping, expected", [
    ("8000:8000", ("127.0.0.1", 8000, 8000, "tcp")),
    ("8080:80", ("127.0.0.1", 8080, 80, "tcp")),
    ("9000", ("127.0.0.1", 9000, 9000, "tcp")),
    ("0.0.0.0:8000:8000", ("0.0.0.0", 8000, 8000, "tcp")),
    ("53:53/udp", ("127.0.0.1", 53, 53, "udp")),
])
def test_port_mappings_publish_on_loopback_unless_told(tmp_path, mapping, expected):
    toml = BASIC.replace('ports = ["8000:8000"]', f'ports = ["{mapping}"]').replace(
        'ready = { url = "http://localhost:8000/", timeout = 5 }', "")
    port = config.load(write_project(tmp_path, toml)).image("app").run.ports[0]
    assert (port.host_ip, port.host_port, port.container_port, port.protocol) == expected


@pytest.mark.parametrize("change, where, words", [
    (('tag = "demo/app"', 'tga = "demo/app"'), "images.app.tga", "did you mean 'tag'"),
    (("[images.app.run]", "[images.app.runn]"), "images.app.runn", "did you mean 'run'"),
    (('ports = ["8000:8000"]', 'port = ["8000:8000"]'), "images.app.run.port", "did you mean 'ports'"),
    (('ports = ["8000:8000"]', 'ports = ["80x"]'), "images.app.run.ports[0]", "not a port mapping"),
    (('ports = ["8000:8000"]', 'ports = ["70000:80"]'), "images.app.run.ports[0]", "outside 1-65535"),
    (('ports = ["8000:8000"]', 'ports = "8000:8000"'), "images.app.run.ports", "expected a list"),
    (('ports = ["8000:8000"]', 'ports = [8000]'), "images.app.run.ports[0]", "expected a string, got an integer"),
    (("HTTPD_PORT = 8000", "HTTPD_PORT = [1]"), "images.app.run.environment.HTTPD_PORT", "expected a string"),
    (('dir = "app"', 'dir = "nowhere"'), "images.app.dir", "does not exist"),
    (('dir = "app"', "dir = 3"), "images.app.dir", "expected a string, got an integer"),
    (('tag = "demo/app"', 'tag = "Demo App"'), "images.app.tag", "not a valid image tag"),
    (('tag = "demo/app"', 'tag = "demo/base"'), "images.app.tag", "also the tag of images.base"),
    (('name = "demo"', 'name = "Not OK"'), "project.name", "lower-case"),
    (("timeout = 5", "timeout = -1"), "images.app.run.ready.timeout", "positive number"),
    (('url = "http://localhost:8000/"', 'url = "localhost"'), "images.app.run.ready.url", "http://"),
    (('url = "http://localhost:8000/", ', "port = 9999, "), "images.app.run.ready.port", "not published"),
    (("[images.app.run]", '[images.app.run]\nrestart = "sometimes"'), "images.app.run.restart",
     "not a restart policy"),
    (("[images.app.run]", '[images.app.run]\nvolumes = ["data"]'), "images.app.run.volumes[0]", "not a mount"),
    (("[images.app.run]", '[images.app.run]\nvolumes = ["./missing:/data"]'), "images.app.run.volumes[0]",
     "does not exist"),
    (("[images.app.run]", '[images.app.run]\nname = "bad name"'), "images.app.run.name",
     "not a valid container name"),
    (('rootfs = "rootfs.sh"', 'rootfs = "gone.sh"'), "images.base.base.rootfs", "does not exist"),
    (('rootfs = "rootfs.sh"', 'changes = []'), "images.base.base", "needs 'pull', 'rootfs'"),
    (('[images.app]', '[images.app]\nlabels = { "dockyard.key" = "x" }'), "images.app.labels.dockyard.key",
     "dockyard's own"),
    (("[images.app]", "[images.build]"), "images.build", "taken by the top-level task"),
    (("HTTPD_PORT = 8000", '"A=B" = "1"'), "images.app.run.environment.A=B", "without '='"),
    (('[images.app]', '[images.app]\ndockerfile = "../base/rootfs.sh"'), "images.app.dockerfile",
     "outside the image's directory"),
    (('dir = "app"', 'dir = "base/rootfs.sh"'), "images.app.dir", "is not a directory"),
    (("[images.app.run]", '[images.app.run]\nvolumes = ["~no-such-user-here/x:/a"]'), "images.app.run.volumes[0]",
     "cannot expand"),
    (("timeout = 5", "timeout = nan"), "images.app.run.ready.timeout", "positive number"),
    (('tag = "demo/app"', 'tag = "x/two:a:b"'), "images.app.tag", "not a valid image tag"),
])
def test_config_errors_name_the_key_path(tmp_path, change, where, words):
    old, new = change
    assert old in BASIC
    message = load_error(tmp_path, BASIC.replace(old, new, 1))
    assert f": {where}: " in message, message
    assert words in message, message


def test_missing_dockerfile_is_named(tmp_path):
    (tmp_path / "app").mkdir()
    message = load_error(tmp_path, BASIC, dockerfiles={})
    assert "images.app.dockerfile" in message and "Dockerfile does not exist" in message


def test_missing_project_table(tmp_path):
    message = load_error(tmp_path, "[images]\n")
    assert message.endswith("containers.toml: missing required key 'project' (the [project] table)")


def test_tags_may_have_capitals_after_the_colon(tmp_path):
    toml = BASIC.replace('tag = "demo/app"', 'tag = "registry.example.com:5000/demo/app:V1"')
    assert config.load(write_project(tmp_path, toml)).image("app").ref == "registry.example.com:5000/demo/app:V1"


def test_unknown_top_level_key(tmp_path):
    message = load_error(tmp_path, BASIC + "\n[imagez]\n")
    assert ": imagez: unknown key (did you mean 'images'?)" in message


def test_invalid_toml_says_where(tmp_path):
    message = load_error(tmp_path, BASIC + "\n[images.app\n")
    assert "invalid TOML" in message and "line" in message


def test_missing_file(tmp_path):
    with pytest.raises(DockyardError, match="containers.toml: no such file"):
        config.load(tmp_path / "containers.toml")


def test_duplicate_container_names(tmp_path):
    toml = BASIC.replace("[images.app.run]", '[images.app.run]\nname = "base"')
    assert "container name 'base' is also used by images.base" in load_error(tmp_path, toml)


def test_dependency_cycle_is_reported_with_its_path(tmp_path):
    toml = BASIC.replace('[images.base.base]\nrootfs = "rootfs.sh"\n', "")
    message = load_error(tmp_path, toml, dockerfiles={"base": "FROM demo/app\n", "app": "FROM demo/base\n"})
    assert "dependency cycle" in message
    assert "images.base -> images.app -> images.base" in message or \
        "images.app -> images.base -> images.app" in message


def test_self_reference_is_a_cycle(tmp_path):
    message = load_error(tmp_path, BASIC, dockerfiles={"app": "FROM demo/app\n"})
    assert "images.app -> images.app" in message


def test_from_lines(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "# syntax comment\nFROM --platform=linux/amd64 golang:1 AS build\nRUN make\n"
        "FROM build AS test\nFROM \\\n  demo/base\nCOPY --from=build /x /x\nfrom scratch\n"
    )
    assert from_refs(dockerfile) == ["golang:1", "demo/base"]


def make_images(edges: dict[str, tuple[str, ...]]):
    return {key: config.ImageSpec(key=key, tag=key, dir=Path("."), parents=parents) for key, parents in edges.items()}


def test_build_order_puts_parents_first_and_keeps_file_order():
    images = make_images({"c": ("b",), "a": (), "b": ("a",), "d": ()})
    assert build_order(images) == ["a", "b", "c", "d"]
    assert build_order(images, ["c"]) == ["a", "b", "c"]
    assert build_order(images, ["d"]) == ["d"]


def test_build_order_unknown_name():
    with pytest.raises(DockyardError, match="no image named 'x'"):
        build_order(make_images({"a": ()}), ["x"])


@pytest.mark.parametrize("ref, normal", [
    ("busybox", "busybox:latest"), ("radiasoft/httpd", "radiasoft/httpd:latest"),
    ("docker.io/library/busybox", "busybox:latest"), ("localhost:5000/x", "localhost:5000/x:latest"),
    ("x:1.2", "x:1.2"),
])
def test_normalize_ref(ref, normal):
    assert config.normalize_ref(ref) == normal
