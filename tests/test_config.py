"""containers.toml loading and validation: every error names the file and the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import DEMO_APP, load_error, write_project
from dockyard import config
from dockyard.errors import DockyardError
from dockyard.graph import build_order, from_refs

BASIC = DEMO_APP + """
[images.app.run]
ports = ["8000:8000"]
environment = { HTTPD_PORT = 8000 }
ready = { url = "http://localhost:8000/", timeout = 5 }
"""


def test_loads_the_example_project():
    project = config.load(Path(__file__).parent.parent / "containers.toml")
    assert list(project.images) == ["busybox", "my-app", "httpd", "api"]
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


# -- hardening: what passed validation and then failed, or did harm, at run time ------

def app_run(tmp_path: Path, run_lines: str):
    """The app's RunSpec with ``run_lines`` as its whole [images.app.run] table."""
    toml = BASIC.replace('ports = ["8000:8000"]\nenvironment = { HTTPD_PORT = 8000 }\n'
                         'ready = { url = "http://localhost:8000/", timeout = 5 }\n', run_lines)
    return config.load(write_project(tmp_path, toml)).image("app").run


def run_error(tmp_path: Path, run_lines: str) -> str:
    toml = BASIC.replace('ports = ["8000:8000"]\nenvironment = { HTTPD_PORT = 8000 }\n'
                         'ready = { url = "http://localhost:8000/", timeout = 5 }\n', run_lines)
    message = load_error(tmp_path, toml)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize("mapping", [
    "127.0.0.256:18200:18200",
    "999.999.999.999:18200:18200",
    "\u0661\u0662\u0667.0.0.1:18200:18200",  # Arabic-Indic digits
    "127.0.0.01:18200:18200",
    "localhost:18200:18200",
    "[1:2:3:4:5:6:7:8:9]:18200:18200",
    "[fe80::1%eth0]:18200:18200",
    "[127.0.0.1]:18200:18200",
    "[::1:18200:18200",
])
def test_a_host_address_that_is_not_an_ip_address_is_refused(tmp_path, mapping):
    message = run_error(tmp_path, f'ports = ["{mapping}"]\n')
    assert ": images.app.run.ports[0]: " in message, message


@pytest.mark.parametrize("mapping, expected", [
    ("[::1]:8000:8000", ("::1", 8000, 8000, "tcp")),
    ("[0:0:0:0:0:0:0:1]:8000:80/udp", ("::1", 8000, 80, "udp")),
    ("192.168.1.10:8000:8000", ("192.168.1.10", 8000, 8000, "tcp")),
])
def test_ipv6_addresses_go_in_brackets(tmp_path, mapping, expected):
    port = app_run(tmp_path, f'ports = ["{mapping}"]\n').ports[0]
    assert (port.host_ip, port.host_port, port.container_port, port.protocol) == expected


def test_an_unbracketed_ipv6_address_says_to_use_brackets(tmp_path):
    assert "goes in brackets" in run_error(tmp_path, 'ports = ["::1:8000:8000"]\n')


@pytest.mark.parametrize("mapping", [
    "\u0668\u0660:80",  # Arabic-Indic 80
    "8000:\uff18\uff10",  # full-width 80
    "\u00b2:80",  # superscript two
    "+80:80", "8_0:80", " 80:80", "80:80/", "80:80/icmp", "000080000:80",
])
def test_port_numbers_are_ascii_digits(tmp_path, mapping):
    assert ": images.app.run.ports[0]: " in run_error(tmp_path, f'ports = ["{mapping}"]\n')


@pytest.mark.parametrize("policy", ["on-failure:\u00b2", "on-failure:\u0663", "on-failure:", "on-failure:-1",
                                    "always:3", "on-failure:" + "9" * 5000])
def test_restart_counts_are_ascii_digits(tmp_path, policy):
    message = run_error(tmp_path, f'restart = "{policy}"\n')
    assert ": images.app.run.restart: " in message and "not a restart policy" in message


def test_restart_on_failure_with_a_count(tmp_path):
    assert app_run(tmp_path, 'restart = "on-failure:3"\n').restart == "on-failure:3"


@pytest.mark.parametrize("url, words", [
    ("http://127.0.0.1:abc/x", "port"),
    ("http://127.0.0.1:0/x", "port"),
    ("http://127.0.0.1:65536/x", "port"),
    ("http://127.0.0.1:\u0668\u0660/x", "ASCII"),
    ("http://[::1/x", "not a URL"),
    ("http://[::g]:80/x", "'::g'"),
    ("http://local host/x", "without spaces"),
    ("http://localhost/a b", "without spaces"),
    ("http://localhost/\\u0007", "control characters"),
    ("http:///x", "no host"),
    ("ftp://localhost/", "http://"),
    ("localhost:8000", "http://"),
])
def test_a_ready_url_urllib_cannot_open_is_refused(tmp_path, url, words):
    message = run_error(tmp_path, f'ports = ["8000:8000"]\nready = {{ url = "{url}" }}\n')
    assert ": images.app.run.ready.url: " in message and words in message, message


@pytest.mark.parametrize("url", ["http://localhost:8000/", "https://127.0.0.1/x?y=1#z", "http://[::1]:8001/cgi-bin/x",
                                 "http://user@my-host.example:1/"])
def test_ready_urls_that_urllib_can_open(tmp_path, url):
    published = 'ports = ["8000:8000", "443:443", "[::1]:8001:8001"]\n'  # a URL on this machine names a published port
    assert app_run(tmp_path, published + f'ready = {{ url = "{url}" }}\n').ready.url == url


def test_a_command_string_with_an_unbalanced_quote_is_refused(tmp_path):
    message = run_error(tmp_path, "command = \"httpd -f -p '18200\"\n")
    assert ": images.app.run.command: " in message and "No closing quotation" in message


def test_a_command_string_is_kept_as_written(tmp_path):
    assert app_run(tmp_path, "command = \"httpd -f -p '18200'\"\n").command == "httpd -f -p '18200'"
    assert app_run(tmp_path, 'command = ["httpd", "-f"]\n').command == ("httpd", "-f")


@pytest.mark.parametrize("line, where", [
    ('user = "www\\u0000data"', "images.app.run.user"),
    ('environment = { "A\\u0000B" = "1" }', "images.app.run.environment.'A\\x00B'"),
    ('volumes = ["./x\\u0000:/data"]', "images.app.run.volumes[0]"),
    ('command = ["sh", "\\u0000"]', "images.app.run.command[1]"),
])
def test_nul_characters_are_refused_anywhere(tmp_path, line, where):
    message = run_error(tmp_path, line + "\n")
    assert f": {where}: " in message and "NUL" in message, message


@pytest.mark.parametrize("change, where", [
    (('dir = "app"', f'dir = "{"d" * 300}"'), "images.app.dir"),
    (('dir = "app"', f'dir = "app"\ndockerfile = "{"f" * 300}"'), "images.app.dockerfile"),
    (('rootfs = "rootfs.sh"', f'rootfs = "{"r" * 300}.sh"'), "images.base.base.rootfs"),
    (("[images.app.run]", f'[images.app.run]\nvolumes = ["./{"v" * 300}:/data"]'), "images.app.run.volumes[0]"),
])
def test_over_long_paths_are_config_errors(tmp_path, change, where):
    old, new = change
    message = load_error(tmp_path, BASIC.replace(old, new, 1))
    assert f": {where}: " in message and "File name too long" in message, message


def test_values_in_messages_stay_on_one_line(tmp_path):
    message = load_error(tmp_path, BASIC.replace('tag = "demo/app"', 'tag = "demo/app\\nx"'))
    assert "\n" not in message and "'demo/app\\nx'" in message


@pytest.mark.parametrize("change, where", [
    (('tag = "demo/app"', 'tag = "demo/app\\n"'), "images.app.tag"),
    (('name = "demo"', 'name = "demo\\n"'), "project.name"),
    (("[images.app.run]", '[images.app.run]\nname = "app\\n"'), "images.app.run.name"),
    (("[images.app]", '[images."app\\n"]'), "images.'app\\n'"),
])
def test_a_trailing_newline_does_not_slip_past_a_pattern(tmp_path, change, where):
    old, new = change
    assert f": {where}: " in load_error(tmp_path, BASIC.replace(old, new, 1))


def test_a_file_over_one_mebibyte_is_refused(tmp_path):
    message = load_error(tmp_path, BASIC + "# " + "x" * (1024 * 1024) + "\n")
    assert "larger than 1 MiB" in message


def test_deeply_nested_arrays_fail_cleanly(tmp_path):
    message = load_error(tmp_path, BASIC + "x = " + "[" * 2000 + "]" * 2000 + "\n")
    assert "nested more than 32 levels" in message


def test_deeply_nested_inline_tables_fail_cleanly(tmp_path):
    message = load_error(tmp_path, BASIC + "x = " + "{a = " * 500 + "1" + "}" * 500 + "\n")
    assert "nested more than 32 levels" in message


def test_brackets_inside_strings_and_comments_do_not_count(tmp_path):
    toml = BASIC.replace('[images.app.run]', '[images.app.run] # ' + "[" * 100) + \
        'command = ["sh", "' + "[{" * 100 + '", \'' + "." * 100 + "', '''" + "[" * 100 + "''']\n"
    assert config.load(write_project(tmp_path, toml)).image("app").run.command[1] == "[{" * 100


def test_a_dotted_key_of_forty_thousand_parts_fails_fast(tmp_path):
    import time

    started = time.monotonic()
    message = load_error(tmp_path, BASIC + ".".join(["a"] * 40000) + " = 1\n")
    assert "dotted key of more than 32 parts" in message
    assert time.monotonic() - started < 1


def test_an_integer_python_cannot_convert_is_invalid_toml(tmp_path):
    message = load_error(tmp_path, BASIC.replace("timeout = 5", "timeout = " + "9" * 5000))
    assert "invalid TOML" in message


@pytest.mark.parametrize("content", [b"\xff\xfe[project]\n", b"[project]\nname = \"\xc3\x28\"\n"])
def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path, content):
    path = tmp_path / "containers.toml"
    path.write_bytes(content)
    with pytest.raises(DockyardError, match="not UTF-8"):
        config.load(path)


def test_a_directory_instead_of_a_file_is_a_config_error(tmp_path):
    (tmp_path / "containers.toml").mkdir()
    with pytest.raises(DockyardError, match="containers.toml: a directory, not a regular file"):
        config.load(tmp_path / "containers.toml")


def test_a_dotenv_or_dockerignore_that_is_a_directory_is_one_line_naming_it(tmp_path):
    """A virtualenv named .env beside containers.toml is common: it made every command a traceback."""
    path = write_project(tmp_path, BASIC)
    (tmp_path / ".env").mkdir()
    with pytest.raises(DockyardError, match=r"\.env: a directory, not a regular file"):
        config.load(path)
    (tmp_path / ".env").rmdir()
    (tmp_path / "app" / ".dockerignore").mkdir()
    from dockyard.dockerignore import read_dockerignore

    with pytest.raises(DockyardError, match=r"\.dockerignore: a directory, not a regular file"):
        read_dockerignore(tmp_path / "app")


def special_file(path: Path, kind: str) -> None:
    """A FIFO, or a link to /dev/zero, at ``path``."""
    import os

    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")


@pytest.mark.parametrize("kind, words", [("fifo", "a FIFO, not a regular file"),
                                         ("zero", "a character device, not a regular file")])
def test_a_containers_toml_that_is_a_fifo_or_dev_zero_is_refused_at_once(tmp_path, kind, words):
    """A FIFO made every command wait for a writer, for ever."""
    from conftest import confined

    write_project(tmp_path, BASIC).unlink()
    special_file(tmp_path / "containers.toml", kind)
    code = "from dockyard import config\ntry:\n    config.load('containers.toml')\nexcept Exception as e:\n    print(e)"
    result = confined(["-c", code], tmp_path, timeout=20)
    assert result.stdout.strip() == f"{tmp_path / 'containers.toml'}: {words}; dockyard reads only regular files here"


@pytest.mark.parametrize("kind, words", [("fifo", "a FIFO, not a regular file"),
                                         ("zero", "a character device, not a regular file")])
def test_a_dockerfile_that_is_a_fifo_or_dev_zero_is_refused_at_once(tmp_path, kind, words):
    """Loading refuses them (they are not regular files); the builder reads FROM lines again
    when it builds, and a Dockerfile swapped for a FIFO since must not hang it."""
    from conftest import confined

    special_file(tmp_path / "Dockerfile", kind)
    code = ("from dockyard.graph import from_refs\nfrom pathlib import Path\ntry:\n    from_refs(Path('Dockerfile'))\n"
            "except Exception as e:\n    print(e)")
    result = confined(["-c", code], tmp_path, timeout=20)
    assert result.stdout.strip() == f"Dockerfile: {words}; dockyard reads only regular files here", result


def test_a_rootfs_script_outside_the_image_directory_is_refused(tmp_path):
    (tmp_path / "elsewhere.sh").write_text("exit 0\n")
    message = load_error(tmp_path, BASIC.replace('rootfs = "rootfs.sh"', 'rootfs = "../elsewhere.sh"'))
    assert ": images.base.base.rootfs: " in message and "outside the image's directory" in message


# -- ${VAR} interpolation --------------------------------------------------------------

def test_variables_are_replaced_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DEMO_PORT", "8123")
    monkeypatch.setenv("DEMO_EMPTY", "")
    monkeypatch.delenv("DEMO_UNSET", raising=False)
    run = app_run(tmp_path, 'ports = ["${DEMO_PORT}:80"]\n'
                            'environment = { A = "${DEMO_UNSET:-fallback}", B = "${DEMO_EMPTY:-used}", '
                            'C = "$${DEMO_PORT} costs $$5 and $HOME", D = "${DEMO_EMPTY}" }\n')
    assert run.ports[0].host_port == 8123
    assert dict(run.environment) == {"A": "fallback", "B": "used", "C": "${DEMO_PORT} costs $5 and $HOME", "D": ""}


def test_an_unset_required_variable_names_the_key_and_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("DEMO_UNSET", raising=False)
    message = run_error(tmp_path, 'ports = ["8000:8000"]\nvolumes = ["data:/data", "${DEMO_UNSET}:/x"]\n')
    assert ": images.app.run.volumes[1]: " in message and "DEMO_UNSET is not set" in message


@pytest.mark.parametrize("text", ["${1X}", "${A", "${A:?x}", "${A-x}", "${}", "${A B}"])
def test_a_malformed_variable_is_an_error(tmp_path, monkeypatch, text):
    monkeypatch.setenv("A", "1")
    message = run_error(tmp_path, f'user = "{text}"\n')
    assert ": images.app.run.user: " in message and "starts no ${VAR}" in message


def test_keys_are_not_interpolated(tmp_path, monkeypatch):
    monkeypatch.setenv("DEMO_KEY", "X")
    assert dict(app_run(tmp_path, 'environment = { "${DEMO_KEY}" = "1" }\n').environment) == {"${DEMO_KEY}": "1"}


def test_an_interpolated_value_is_validated_like_a_written_one(tmp_path, monkeypatch):
    monkeypatch.setenv("DEMO_ADDRESS", "127.0.0.256")
    message = run_error(tmp_path, 'ports = ["${DEMO_ADDRESS}:8000:8000"]\n')
    assert "'127.0.0.256' in '127.0.0.256:8000:8000' is not an IPv4 address" in message


def test_config_and_graph_import_in_one_direction():
    import ast

    import dockyard.graph

    tree = ast.parse(Path(dockyard.graph.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "config" not in imported and not any(name and name.endswith(".config") for name in imported)
    assert config.normalize_ref is dockyard.graph.normalize_ref


def test_an_image_name_with_a_dot_is_refused_when_loaded_saying_what_is_allowed(tmp_path):
    """Invoke reads a dot as a namespace separator: `[images."web.v2"]` made every command,
    `inv --list` too, end in KeyError: 'web'."""
    message = load_error(tmp_path, BASIC.replace("[images.app]", '[images."app.v2"]').replace(
        "[images.app.run]", '[images."app.v2".run]'))
    assert ": images.app.v2: image names are lower-case letters, digits, '_' or '-'" in message, message
    assert "no '.'" in message


def test_inv_list_with_a_dotted_image_name_is_one_line(tmp_path):
    from conftest import assert_clean_failure, inv

    write_project(tmp_path, BASIC.replace("[images.app]", '[images."app.v2"]').replace(
        "[images.app.run]", '[images."app.v2".run]'))
    (tmp_path / "tasks.py").write_text("from pathlib import Path\nfrom dockyard import namespace\n\n"
                                       "ns = namespace(Path(__file__).with_name('containers.toml'))\n")
    result = inv(tmp_path, "--list", timeout=60)
    assert_clean_failure(result, "images.app.v2: image names are")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


RUN_LIMITS = BASIC.replace("[images.app.run]", "[images.app.run]\nLIMIT")


@pytest.mark.parametrize("limit, where, words", [
    ("cpus = 1e300", "cpus", "must be from 0.01 to 8192 CPUs"),
    ("cpus = 1e10", "cpus", "must be from 0.01 to 8192 CPUs"),
    ("cpus = 1e-12", "cpus", "must be from 0.01 to 8192 CPUs"),
    ("cpus = 0.009", "cpus", "must be from 0.01"),
    ("cpus = nan", "cpus", "must be from 0.01"),
    ("cpus = 0", "cpus", "must be from 0.01"),
    ("pids = 9223372036854775807", "pids", "from 1 to 4194304"),
    ("pids = 4194305", "pids", "from 1 to 4194304"),
    ("pids = 0", "pids", "or -1 for no limit"),
    ("pids = -2", "pids", "or -1 for no limit"),
    ('memory = "999999999999g"', "memory", "outside what the engine takes"),
    ('memory = "8589934592g"', "memory", "outside what the engine takes"),  # 2**63 bytes
    ('memory = "5m"', "memory", "from '6m' (its minimum)"),
    ('memory = "6291455"', "memory", "from '6m' (its minimum)"),
    ('tmpfs = ["/tmp,exec,size=1g"]', "tmpfs[0]", "options go after a ':'"),
    ('tmpfs = ["tmp"]', "tmpfs[0]", "absolute PATH"),
    ('tmpfs = ["/"]', "tmpfs[0]", "other than /"),
    ('tmpfs = ["/:size=1m"]', "tmpfs[0]", "other than /"),
    ('tmpfs = ["/tmp:bogus"]', "tmpfs[0]", "'bogus' in '/tmp:bogus' is not a tmpfs option"),
    ('tmpfs = ["/tmp:foo=1"]', "tmpfs[0]", "is not a tmpfs option"),
    ('tmpfs = ["/tmp:size=abc"]', "tmpfs[0]", "'size=abc' in"),
    ('tmpfs = ["/tmp:size=1g:x"]', "tmpfs[0]", "is not a tmpfs option"),
    ('tmpfs = ["/tmp:mode=999"]', "tmpfs[0]", "is not a tmpfs option"),
    ('tmpfs = ["/tmp:noexec,,size=1m"]', "tmpfs[0]", "is not a tmpfs option"),
    ('tmpfs = ["/tmp", "/tmp:size=1m"]', "tmpfs[1]", "listed twice"),
])
def test_resource_limits_outside_what_the_engine_takes_are_refused_when_loaded(tmp_path, limit, where, words):
    message = load_error(tmp_path, RUN_LIMITS.replace("LIMIT", limit))
    assert f": images.app.run.{where}: " in message, message
    assert words in message, message


@pytest.mark.parametrize("limit, field, value", [
    ("cpus = 0.01", "cpus", 0.01),
    ("cpus = 2", "cpus", 2.0),
    ("cpus = 8192", "cpus", 8192.0),
    ("pids = -1", "pids", -1),
    ("pids = 4194304", "pids", 4194304),
    ('memory = "6m"', "memory", "6m"),
    ('memory = "6291456"', "memory", "6291456"),
    ('memory = "8589934591g"', "memory", "8589934591g"),  # 2**63 - 2**30 bytes
    ('tmpfs = ["/tmp", "/run:size=64m,noexec,nosuid,mode=1777", "/cache:"]', "tmpfs",
     ("/tmp", "/run:size=64m,noexec,nosuid,mode=1777", "/cache:")),
    ('tmpfs = ["/tmp:uid=1000,gid=1000,nr_inodes=5k,size=50%"]', "tmpfs",
     ("/tmp:uid=1000,gid=1000,nr_inodes=5k,size=50%",)),
])
def test_resource_limits_the_engine_takes_load(tmp_path, limit, field, value):
    run = config.load(write_project(tmp_path, RUN_LIMITS.replace("LIMIT", limit))).image("app").run
    assert getattr(run, field) == value


def test_tmpfs_options_reach_the_engine_as_docker_run_tmpfs_passes_them(tmp_path, monkeypatch):
    from dockyard import containers, engine

    monkeypatch.setattr(engine, "known_log_driver", lambda: "none")
    toml = RUN_LIMITS.replace("LIMIT", 'tmpfs = ["/tmp", "/run:size=64m,noexec"]\nmemory = "1g"')
    run = config.load(write_project(tmp_path, toml)).image("app").run
    settings = containers.privileges(run)
    assert settings["Tmpfs"] == {"/tmp": "", "/run": "size=64m,noexec"}
    assert settings["Memory"] == 1024 ** 3


def test_a_ready_url_on_this_machine_must_name_a_published_host_port(tmp_path, monkeypatch):
    # The trap: the host port comes from the environment, the URL still names the default.
    monkeypatch.setenv("SITE_PORT", "18111")
    message = run_error(tmp_path, 'ports = ["${SITE_PORT}:8080"]\n'
                                  'ready = { url = "http://localhost:8000/cgi-bin/hello-world" }\n')
    assert ": images.app.run.ready.url: 'http://localhost:8000/cgi-bin/hello-world' asks port 8000 of this " \
           "machine, and ports publishes 18111;" in message, message
    for url in ("http://127.0.0.1:8080/", "http://[::1]/"):  # the container's port; http's 80
        message = run_error(tmp_path, f'ports = ["${{SITE_PORT}}:8080"]\nready = {{ url = "{url}" }}\n')
        assert ": images.app.run.ready.url: " in message and "ports publishes 18111" in message, message
    message = run_error(tmp_path, 'ready = { url = "http://localhost:8000/" }\n')
    assert "ports publishes no TCP port" in message, message
    # The same variable in both: the URL follows the port.
    run = app_run(tmp_path, 'ports = ["${SITE_PORT}:8080"]\n'
                            'ready = { url = "http://localhost:${SITE_PORT}/cgi-bin/hello-world" }\n')
    assert run.ready.url == "http://localhost:18111/cgi-bin/hello-world"
    # Another machine's address, or the host's own network, publishes nothing to compare with.
    assert app_run(tmp_path, 'ready = { url = "http://my-host.example:8000/" }\n').ready is not None
    assert app_run(tmp_path, 'network = "host"\nready = { url = "http://localhost:8080/" }\n').ready is not None


@pytest.mark.parametrize("setting, words", [
    ('target = "2fast"', "images.app.target: '2fast' is not a stage name"),
    ('build_network = "bridge"', "images.app.build_network: 'bridge' is not one of default, host, none"),
])
def test_a_build_target_or_network_the_engine_would_refuse_is_refused_when_loaded(tmp_path, setting, words):
    message = load_error(tmp_path, BASIC.replace('[images.app.run]', f'{setting}\n[images.app.run]', 1))
    assert words in message, message


def test_a_build_target_and_network_load_and_default_is_the_engines(tmp_path):
    toml = BASIC.replace('[images.app.run]', 'target = "tools"\nbuild_network = "host"\n[images.app.run]', 1)
    app = config.load(write_project(tmp_path, toml)).image("app")
    assert (app.target, app.build_network) == ("tools", "host")
    toml = BASIC.replace('[images.app.run]', 'build_network = "default"\n[images.app.run]', 1)
    assert config.load(write_project(tmp_path, toml)).image("app").build_network is None


def test_a_ready_url_on_ipv6_loopback_must_find_its_port_published_there(tmp_path):
    toml = BASIC.replace('ports = ["8000:8000"]', 'ports = ["127.0.0.1:8000:8000"]').replace(
        'url = "http://localhost:8000/"', 'url = "http://[::1]:8000/"')
    assert "asks port 8000 of this machine, and ports publishes it on 127.0.0.1 only, not at ::1" \
        in load_error(tmp_path, toml)
    for published in ('"[::1]:8000:8000"', '"0.0.0.0:8000:8000"'):
        ok = BASIC.replace('ports = ["8000:8000"]', f"ports = [{published}]").replace(
            'url = "http://localhost:8000/"', 'url = "http://[::1]:8000/"')
        assert config.load(write_project(tmp_path, ok)).image("app").run.ready.url == "http://[::1]:8000/"


def test_a_memory_limit_may_have_a_fraction_as_docker_run_takes_it(tmp_path):
    toml = BASIC.replace("[images.app.run]\n", '[images.app.run]\nmemory = "1.5g"\n', 1)
    assert config.size_bytes(config.load(write_project(tmp_path, toml)).image("app").run.memory) == 1536 * 1024 ** 2


def test_a_project_engine_may_be_an_https_address_as_docker_host_may(tmp_path):
    toml = BASIC.replace('name = "demo"', 'name = "demo"\nengine = "https://127.0.0.1:2376"', 1)
    assert config.load(write_project(tmp_path, toml)).engine == "https://127.0.0.1:2376"
