"""Which engine dockyard chooses, and why: pure logic, no engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard import config, engine_choice
from dockyard.engine_choice import Choice
from dockyard.errors import DockyardError

VARIABLES = ("DOCKYARD_ENGINE", "DOCKER_HOST", "DOCKER_CONTEXT")


@pytest.fixture(autouse=True)
def nothing_chosen_here(nothing_chosen):
    """Every test here starts with no engine chosen (conftest's ``nothing_chosen``)."""
    yield nothing_chosen


def test_with_nothing_set_the_default_socket_is_chosen():
    assert engine_choice.chosen() == Choice("unix:///var/run/docker.sock", "default")
    assert engine_choice.local_socket() == "/var/run/docker.sock"


def test_each_layer_wins_over_the_ones_after_it(monkeypatch, tmp_path):
    (tmp_path / "docker-config").mkdir()
    (tmp_path / "docker-config/config.json").write_text(json.dumps({"currentContext": "cli-context"}))
    assert engine_choice.chosen() == Choice("cli-context", "the Docker CLI's current context")
    engine_choice.use_project("unix:///project.sock", tmp_path / "containers.toml")
    assert engine_choice.chosen() == Choice("unix:///project.sock", f"project.engine in {tmp_path / 'containers.toml'}")
    monkeypatch.setenv("DOCKER_CONTEXT", "some-context")
    assert engine_choice.chosen() == Choice("some-context", "DOCKER_CONTEXT")
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2376")
    assert engine_choice.chosen() == Choice("tcp://10.0.0.1:2376", "DOCKER_HOST")
    monkeypatch.setenv("DOCKYARD_ENGINE", "ssh://builder@lab")
    assert engine_choice.chosen() == Choice("ssh://builder@lab", "DOCKYARD_ENGINE")
    engine_choice.use_setting("unix:///setting.sock")
    assert engine_choice.chosen() == Choice("unix:///setting.sock", engine_choice.SETTING)
    engine_choice.use_setting(None)
    assert engine_choice.chosen().source == "DOCKYARD_ENGINE"


def test_the_fast_path_socket_is_only_the_chosen_engine_when_it_is_a_unix_socket(monkeypatch):
    monkeypatch.setenv("DOCKYARD_ENGINE", "unix:///run/other.sock")
    assert engine_choice.local_socket() == "/run/other.sock"
    monkeypatch.setenv("DOCKYARD_ENGINE", "tcp://127.0.0.1:2375")
    assert engine_choice.local_socket() is None
    monkeypatch.setenv("DOCKYARD_ENGINE", "my-context")
    assert engine_choice.local_socket() is None
    monkeypatch.setenv("DOCKYARD_ENGINE", "default")
    assert engine_choice.local_socket() == "/var/run/docker.sock"


def test_docker_host_without_a_scheme_is_tcp_as_docker_py_reads_it(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "10.0.0.1:2375")
    assert engine_choice.chosen().value == "tcp://10.0.0.1:2375"


def test_a_broken_cli_config_means_the_default_socket(tmp_path):
    (tmp_path / "docker-config").mkdir()
    (tmp_path / "docker-config/config.json").write_text("{not json")
    assert engine_choice.local_socket() == "/var/run/docker.sock"


TOML = """
[project]
name = "p"
{extra}

[images.a]
tag = "p/a"
dir = "a"
"""


def load(tmp_path, extra: str):
    (tmp_path / "a").mkdir(exist_ok=True)
    (tmp_path / "a/Dockerfile").write_text("FROM scratch\n")
    path = tmp_path / "containers.toml"
    path.write_text(TOML.format(extra=extra))
    config.load.cache_clear()
    return config.load(path)


@pytest.mark.parametrize("value", ["unix:///run/docker.sock", "tcp://lab:2376", "ssh://me@lab", "lab-server"])
def test_project_engine_takes_addresses_and_context_names(tmp_path, value):
    assert load(tmp_path, f'engine = "{value}"').engine == value


@pytest.mark.parametrize("value, words", [("ftp://x", "expected unix://PATH"), ("unix://", "expected unix://PATH"),
                                          ("no spaces", "neither an address")])
def test_a_bad_project_engine_is_one_clear_error(tmp_path, value, words):
    with pytest.raises(config.DockyardError, match=words):
        load(tmp_path, f'engine = "{value}"')


@pytest.mark.parametrize("value, address", [("localhost:5000", "localhost:5000"), ("registry.example.com", "registry.example.com"),
                                            ("http://127.0.0.1:5000/", "127.0.0.1:5000")])
def test_project_registry_is_host_and_port(tmp_path, value, address):
    assert load(tmp_path, f'registry = "{value}"').registry == address


@pytest.mark.parametrize("value", ["local host:5000", "localhost:99999", "x/y"])
def test_a_bad_registry_is_one_clear_error(tmp_path, value):
    with pytest.raises(config.DockyardError, match="not a registry address"):
        load(tmp_path, f'registry = "{value}"')


def write_context(config_dir, name: str, host: str) -> None:
    import hashlib

    meta = config_dir / "contexts/meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Endpoints": {"docker": {"Host": host}}}))


def test_a_context_is_read_from_the_cli_store_even_without_a_cli_config_file(monkeypatch, tmp_path):
    write_context(tmp_path / "docker-config", "lab", "unix:///run/lab.sock")
    monkeypatch.setenv("DOCKER_CONTEXT", "lab")
    found = engine_choice.context("lab")
    assert (found.host, found.tls_dir) == ("unix:///run/lab.sock", None)
    assert engine_choice.local_socket() == "/run/lab.sock"  # the fast path follows it
    assert engine_choice.context("nosuch") is None


def test_a_context_of_a_tcp_engine_has_no_fast_path(monkeypatch, tmp_path):
    write_context(tmp_path / "docker-config", "remote", "tcp://10.0.0.1:2376")
    engine_choice.use_project("remote", tmp_path / "containers.toml")
    assert engine_choice.local_socket() is None


def test_a_tcp_engine_gets_tls_from_the_environment_as_docker_from_env_does(monkeypatch, tmp_path):
    from dockyard.engine import remote

    for name in ("ca", "cert", "key"):
        (tmp_path / f"{name}.pem").write_text("not checked until a connection\n")
    monkeypatch.setenv("DOCKYARD_ENGINE", "tcp://lab.example.com:2376")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))
    options = remote._connection(engine_choice.chosen())
    assert options["base_url"] == "tcp://lab.example.com:2376"
    assert (options["tls"].verify, options["tls"].ca_cert) == (True, str(tmp_path / "ca.pem"))
    assert options["tls"].cert == (str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))


def tls_files(directory: Path, *names: str) -> Path:
    directory.mkdir(parents=True)
    for name in names:
        (directory / f"{name}.pem").write_text("not read until a connection\n")
    return directory


@pytest.mark.parametrize("verify", [None, "", "0", "1"])
def test_tls_from_the_environment_always_checks_the_engine_against_the_ca_file(monkeypatch, tmp_path, verify):
    """docker-py's kwargs_from_env would not check the engine's certificate when DOCKER_TLS_VERIFY is
    unset or empty: an impostor would be sent every request, a push's credentials among them."""
    from dockyard.engine import remote

    files = tls_files(tmp_path / "certs", "ca", "cert", "key")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(files))
    if verify is None:
        monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    else:
        monkeypatch.setenv("DOCKER_TLS_VERIFY", verify)
    monkeypatch.setenv("DOCKYARD_ENGINE", "tcp://lab.example.com:2376")
    tls = remote._connection(engine_choice.chosen())["tls"]
    assert (tls.verify, tls.ca_cert) == (True, str(files / "ca.pem"))

    (files / "ca.pem").unlink()  # no CA to check against is an error, not TLS unchecked
    with pytest.raises(DockyardError, match=r"TLS failed \(.*/certs has no ca\.pem\)"):
        remote.docker_client()


def test_an_https_address_speaks_tls_checked_against_the_docker_directory(monkeypatch, tmp_path):
    from dockyard.engine import remote

    for name in ("DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    files = tls_files(tmp_path / ".docker", "ca", "cert", "key")
    monkeypatch.setenv("DOCKYARD_ENGINE", "https://lab.example.com:2376")
    options = remote._connection(engine_choice.chosen())
    assert options["base_url"] == "tcp://lab.example.com:2376"
    assert (options["tls"].verify, options["tls"].ca_cert) == (True, str(files / "ca.pem"))
    monkeypatch.setenv("DOCKYARD_ENGINE", "tcp://lab.example.com:2375")  # no TLS asked for: none
    assert remote._connection(engine_choice.chosen())["tls"] is False
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "")
    assert remote._connection(engine_choice.chosen())["tls"] is False


def test_a_context_that_skips_verification_says_so_once_and_silences_urllib3_for_its_host_only(
        monkeypatch, tmp_path, capsys):
    import hashlib
    import warnings

    from urllib3.exceptions import InsecureRequestWarning

    from dockyard.engine import remote

    monkeypatch.setattr(remote, "_unverified_said", set())
    write_context(tmp_path / "docker-config", "lab", "tcp://127.0.0.1:2376")
    meta = tmp_path / "docker-config/contexts/meta" / hashlib.sha256(b"lab").hexdigest() / "meta.json"
    written = json.loads(meta.read_text())
    written["Endpoints"]["docker"]["SkipTLSVerify"] = True  # and no TLS files: TLS all the same
    meta.write_text(json.dumps(written))
    monkeypatch.setenv("DOCKER_CONTEXT", "lab")
    for _ in range(2):
        tls = remote._connection(engine_choice.chosen())["tls"]
        assert (tls.verify, tls.cert) == (False, None)
    assert capsys.readouterr().err.splitlines() == [
        "dockyard: warning: the Docker engine at tcp://127.0.0.1:2376 (Docker context 'lab') is reached over "
        "TLS without checking its certificate (the context has skip-tls-verify)"]

    said = "Unverified HTTPS request is being made to host '{}'. Adding certificate verification is strongly advised."
    warnings.warn(said.format("127.0.0.1"), InsecureRequestWarning)  # silenced: an error here otherwise
    with pytest.warns(InsecureRequestWarning):
        warnings.warn(said.format("127.0.0.10"), InsecureRequestWarning)


def test_an_ssh_engine_goes_through_the_ssh_program_by_a_private_socket(monkeypatch):
    from dockyard.engine import remote, ssh_relay

    monkeypatch.setenv("DOCKYARD_ENGINE", "ssh://builder@lab:2222")
    options = remote._connection(engine_choice.chosen())
    relay = ssh_relay.relay("ssh://builder@lab:2222", 60)
    assert options["base_url"] == f"unix://{relay.path}"
    assert relay.command[0] == "ssh"  # the program on PATH, with the user's ~/.ssh/config
    assert relay.command[-7:] == ["-l", "builder", "-p", "2222", "--", "lab", "docker system dial-stdio"]
    assert "BatchMode=yes" in relay.command  # never a prompt in the middle of a build


def test_an_image_engine_comes_after_the_environment_and_before_the_project(monkeypatch, tmp_path):
    from dockyard import engine

    engine_choice.use_project("unix:///project.sock", tmp_path / "containers.toml")
    with engine.using(Choice("unix:///image.sock", "images.a.engine")):
        assert engine_choice.chosen() == Choice("unix:///image.sock", "images.a.engine")
        with engine.using(None):  # an image that names none is on the project's engine
            assert engine_choice.chosen().value == "unix:///project.sock"
        assert engine_choice.chosen().value == "unix:///image.sock"
        monkeypatch.setenv("DOCKER_CONTEXT", "some-context")
        assert engine_choice.chosen() == Choice("some-context", "DOCKER_CONTEXT")
    monkeypatch.delenv("DOCKER_CONTEXT")
    assert engine_choice.chosen().value == "unix:///project.sock"


SPLIT = """
[project]
name = "p"

[images.base]
tag = "p/base"
dir = "base"
{base_engine}
base = {{ rootfs = "rootfs.sh" }}

[images.app]
tag = "p/app"
dir = "app"
engine = "unix:///other.sock"
"""


def test_an_image_built_from_a_parent_on_another_engine_is_refused_when_loaded(tmp_path):
    from conftest import load_error

    message = load_error(tmp_path, SPLIT.format(base_engine=""), {"app": "FROM p/base\nCMD true\n"})
    assert "images.app.engine" in message and "FROM base" in message and "the project's engine" in message


def test_an_image_and_its_parent_on_one_engine_of_their_own_load(tmp_path):
    from conftest import write_project

    path = write_project(tmp_path, SPLIT.format(base_engine='engine = "unix:///other.sock"'),
                         {"app": "FROM p/base\nCMD true\n"})
    spec = config.load(path)
    assert (spec.images["app"].engine, spec.images["base"].engine, spec.engine) == (
        "unix:///other.sock", "unix:///other.sock", None)


def config_output(path, capsys, *argv: str) -> str:
    """`inv config ARGV` over this containers.toml, in this process (fast)."""
    from invoke import Program

    from dockyard import namespace

    try:
        Program(namespace=namespace(path), version="0").run(["inv", "config", *argv])
    except SystemExit as e:
        assert not e.code, capsys.readouterr().err
    return capsys.readouterr().out


def test_config_shows_an_image_engine_where_it_differs_from_the_projects(tmp_path, capsys, monkeypatch):
    from conftest import write_project

    path = write_project(tmp_path, SPLIT.format(base_engine='engine = "unix:///other.sock"'),
                         {"app": "FROM p/base\nCMD true\n"})
    shown = config_output(path, capsys)
    assert "engine: unix:///var/run/docker.sock, chosen by default\n" in shown
    assert f"[app]\n  engine: unix:///other.sock, chosen by images.app.engine in {path}\n" in shown
    monkeypatch.setenv("DOCKYARD_ENGINE", "unix:///env.sock")  # the environment still wins
    resolved = json.loads(config_output(path, capsys, "--json"))
    assert {image["engine"]["address"] for image in resolved["images"].values()} == {"unix:///env.sock"}



# Engines named by Docker contexts that do not exist: `up` fails at its first request,
# before any connection is made, naming the engine it would have used.
SERVICES_SPLIT = """
[project]
name = "p"
{project_engine}

[images.web]
tag = "p/web"
dir = "web"

[images.web.run]
ports = ["8000:8000"]

[images.api]
tag = "p/api"
dir = "api"
engine = "other-context"

[images.api.run]
service = true
"""


def up_error(path) -> str:
    """What `Project.up` says about these services' engine."""
    from dockyard import DockyardError, Project

    with pytest.raises(DockyardError) as caught:
        Project(path).up(build=False)
    return str(caught.value)


def test_up_across_image_engines_is_not_refused_when_the_environment_sends_everything_to_one(
        tmp_path, monkeypatch):
    from conftest import write_project

    path = write_project(tmp_path, SERVICES_SPLIT.format(project_engine=""),
                         {"web": "FROM scratch\nCMD true\n", "api": "FROM scratch\nCMD true\n"})
    assert "different engines" in up_error(path)  # where each image's engine holds
    monkeypatch.setenv("DOCKYARD_ENGINE", "env-context")
    message = up_error(path)
    assert "different engines" not in message and "'env-context'" in message, message


def test_up_is_not_refused_when_an_image_names_the_projects_own_engine(tmp_path):
    from conftest import write_project

    path = write_project(tmp_path, SERVICES_SPLIT.format(project_engine='engine = "other-context"'),
                         {"web": "FROM scratch\nCMD true\n", "api": "FROM scratch\nCMD true\n"})
    message = up_error(path)
    assert "different engines" not in message and "'other-context'" in message, message


def test_an_images_save_is_made_on_that_images_engine(tmp_path):
    """`inv app.save` reads the image where it was built (and where `inv app.load` puts it)."""
    from conftest import write_project

    from dockyard import DockyardError, Project

    path = write_project(tmp_path, SPLIT.format(base_engine='engine = "other-context"').replace(
        '"unix:///other.sock"', '"other-context"').replace('name = "p"', 'name = "p"\nengine = "project-context"'),
        {"app": "FROM p/base\nCMD true\n"})
    with pytest.raises(DockyardError) as caught:
        Project(path).save(["app"], tmp_path / "app.tar")
    assert "'other-context'" in str(caught.value), caught.value
    assert not (tmp_path / "app.tar").exists()


BAD_ADDRESSES = [("tcp://h:99999", "the port '99999' is not a number from 1 to 65535"),
                 ("tcp://[::1", "not an address"),
                 ("ssh://x@h:99999", "the port '99999' is not a number from 1 to 65535"),
                 ("tcp://127.0.0.1", "it names no port"),
                 ("tcp://127.0.0.1:2375x", "the port '2375x'"),
                 ("ssh://me@lab/path", "nothing may follow ssh://"),
                 ("tcp://lab:2376?x=1", "nothing but a path may follow"),
                 ("tcp://la_b:2376:1", "the port '2376:1'"),
                 ("tcp://la b:2376", "'la b' is not a host name or address"),
                 ("tcp://[::g]:2376", "not an address")]


@pytest.mark.parametrize("value, words", BAD_ADDRESSES)
def test_a_project_engine_address_with_a_bad_port_or_form_is_refused_when_loaded(tmp_path, value, words):
    from conftest import load_error

    message = load_error(tmp_path, TOML.format(extra=f'engine = "{value}"'), {"a": "FROM scratch\n"})
    assert f": project.engine: '{value}': {words}" in message, message
    assert "expected unix://PATH, tcp://HOST:PORT" in message


@pytest.mark.parametrize("value, words", BAD_ADDRESSES[:4])
def test_an_image_engine_address_with_a_bad_port_or_form_is_refused_when_loaded(tmp_path, value, words):
    from conftest import load_error

    toml = TOML.format(extra="") + f'engine = "{value}"\n'
    message = load_error(tmp_path, toml, {"a": "FROM scratch\n"})
    assert f": images.a.engine: '{value}': {words}" in message, message


@pytest.mark.parametrize("value", ["tcp://lab:2376", "tcp://[::1]:2375", "tcp://:2375", "https://lab:2376/base",
                                   "ssh://me@lab:2222", "unix:///run/docker.sock"])
def test_engine_addresses_docker_py_takes_are_taken(value):
    assert engine_choice.address_problem(value) is None


@pytest.mark.parametrize("variable", ["DOCKER_HOST", "DOCKYARD_ENGINE"])
@pytest.mark.parametrize("value, words", BAD_ADDRESSES)
def test_a_bad_engine_address_from_the_environment_is_one_line_naming_where_it_came_from(
        monkeypatch, variable, value, words):
    from dockyard import engine
    from dockyard.engine import remote
    from dockyard.errors import DockyardError

    monkeypatch.setenv(variable, value)
    for use in (engine.endpoint, lambda: remote._connection(engine_choice.chosen())):
        with pytest.raises(DockyardError) as caught:
            use()
        assert str(caught.value).startswith(f"the engine address '{value}', chosen by {variable}, is not usable: "
                                            f"{words}"), caught.value


def test_inv_with_a_bad_docker_host_port_says_so_in_one_line(tmp_path):
    from conftest import assert_clean_failure, inv, write_project

    write_project(tmp_path, TOML.format(extra=""), {"a": "FROM scratch\n"})
    (tmp_path / "tasks.py").write_text("from pathlib import Path\nfrom dockyard import namespace\n\n"
                                       "ns = namespace(Path(__file__).with_name('containers.toml'))\n")
    import os

    for value in ("tcp://h:99999", "ssh://x@h:99999", "tcp://[::1"):
        result = inv(tmp_path, "a.status", env={**os.environ, "DOCKER_HOST": value}, timeout=60)
        assert_clean_failure(result, f"'{value}', chosen by DOCKER_HOST, is not usable")
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_docker_context_with_a_bad_address_is_one_line_naming_the_context(monkeypatch, tmp_path):
    from dockyard import engine
    from dockyard.engine import remote
    from dockyard.errors import DockyardError

    write_context(tmp_path / "docker-config", "lab", "tcp://lab:99999")
    monkeypatch.setenv("DOCKER_CONTEXT", "lab")
    for use in (engine.endpoint, lambda: remote._connection(engine_choice.chosen())):
        with pytest.raises(DockyardError) as caught:
            use()
        assert str(caught.value) == ("Docker context 'lab', chosen by DOCKER_CONTEXT, has the engine address "
                                     "'tcp://lab:99999', which is not usable: the port '99999' is not a number "
                                     "from 1 to 65535")
