"""Which engine `inv` talks to: the setting, DOCKYARD_ENGINE, DOCKER_HOST, DOCKER_CONTEXT,
[project] engine, the Docker CLI's context; and one clear line when it is not there. The
words that name each choice are checked without an engine; the rest need one."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import assert_clean_failure, free_port, unique, write_project
from dockyard import engine, engine_choice
from dockyard.engine import remote
from dockyard.errors import DockyardError
from dockyard.project import Project
from dockyard.tasks.project import engine_line

integration = pytest.mark.integration

SOCKET = "unix:///var/run/docker.sock"
NOWHERE = "unix:///nonexistent.sock"


def environment(**variables: str) -> dict:
    """Ours, without any engine choice but the ones given."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DOCKYARD_ENGINE", "DOCKER_HOST", "DOCKER_CONTEXT", "INVOKE_DOCKYARD_ENGINE")}
    return env | variables


def set_project_engine(project, engine: str) -> None:
    project.config.write_text(project.config.read_text().replace(
        f'name = "{project.name}"', f'name = "{project.name}"\nengine = "{engine}"', 1))


@pytest.fixture
def docker_context():
    """A Docker context of a unique name for the default socket, removed afterwards."""
    name = unique("dytest-context")
    subprocess.run(["docker", "context", "create", name, "--docker", f"host={SOCKET}"], check=True,
                   capture_output=True)
    yield name
    subprocess.run(["docker", "context", "rm", "--force", name], capture_output=True)


@integration
def test_an_unreachable_engine_from_dockyard_engine_is_one_line_naming_it(project):
    result = project.inv("httpd.status", env=environment(DOCKYARD_ENGINE=NOWHERE, DOCKER_HOST=SOCKET), check=False)
    assert_clean_failure(result, NOWHERE, "DOCKYARD_ENGINE")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@integration
def test_the_invoke_setting_comes_before_the_environment(project):
    env = environment(INVOKE_DOCKYARD_ENGINE=NOWHERE, DOCKYARD_ENGINE=SOCKET)
    result = project.inv("busybox.status", env=env, check=False)
    assert_clean_failure(result, NOWHERE, "dockyard.engine")


@integration
def test_the_engine_of_containers_toml_is_used_after_the_environment(project):
    set_project_engine(project, NOWHERE)
    result = project.inv("status", env=environment(), check=False)
    assert_clean_failure(result, NOWHERE, f"chosen by project.engine in {project.config}")
    assert project.inv("status", env=environment(DOCKER_HOST=SOCKET)).returncode == 0


@integration
def test_an_unknown_context_is_one_clear_line(project):
    result = project.inv("status", env=environment(DOCKER_CONTEXT="nosuch"), check=False)
    assert_clean_failure(result, "DOCKER_CONTEXT", "'nosuch'", "does not exist")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@integration
def test_config_shows_the_engine_and_where_the_choice_came_from(project):
    shown = project.inv("config", env=environment()).stdout
    assert f"engine: {SOCKET}, chosen by default" in shown
    resolved = json.loads(project.inv("config", "--json", env=environment(DOCKYARD_ENGINE=NOWHERE)).stdout)
    assert resolved["engine"] == {"address": NOWHERE, "source": "DOCKYARD_ENGINE", "context": None}


@integration
def test_a_docker_context_is_followed_from_the_environment_and_from_containers_toml(project, docker_context):
    shown = project.inv("status", env=environment(DOCKER_CONTEXT=docker_context)).stdout
    assert f"engine: {SOCKET} (Docker context '{docker_context}'), chosen by DOCKER_CONTEXT" in shown
    set_project_engine(project, docker_context)
    rows = json.loads(project.inv("status", "--json", env=environment()).stdout)
    assert {row["engine"] for row in rows} == {SOCKET}
    shown = project.inv("config", env=environment()).stdout
    assert f"(Docker context '{docker_context}'), chosen by project.engine in {project.config}" in shown


# -- how each choice is said, without an engine -------------------------------------------




def make_context(config: Path, name: str, host: str) -> None:
    """A context in the Docker CLI's store as `docker context create` writes it."""
    import hashlib

    meta = config / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Endpoints": {"docker": {"Host": host}}}))


ONE_IMAGE = """
[project]
name = "p"
{project_engine}

[images.app]
tag = "p/app"
dir = "app"
{image_engine}
"""


def test_each_source_of_the_choice_is_named_in_plain_words(nothing_chosen, monkeypatch, tmp_path):
    def message() -> str:
        return f"{engine.where()} | {engine_line(Project(path).engine())}"

    make_context(nothing_chosen, "lab", "tcp://lab.example.com:2376")
    path = write_project(tmp_path, ONE_IMAGE.format(project_engine="", image_engine=""),
                         {"app": "FROM scratch\n"})
    assert message() == "unix:///var/run/docker.sock | engine: unix:///var/run/docker.sock, chosen by default"

    (nothing_chosen / "config.json").write_text(json.dumps({"currentContext": "lab"}))
    engine_choice._cli_current_context.cache_clear()
    lab = "tcp://lab.example.com:2376 (Docker context 'lab')"
    assert engine.where() == f"{lab}, chosen by the Docker CLI's current context"

    path = write_project(tmp_path, ONE_IMAGE.format(project_engine='engine = "lab"', image_engine=""),
                         {"app": "FROM scratch\n"})
    assert message().endswith(f"engine: {lab}, chosen by project.engine in {path}")
    assert engine.where() == f"{lab}, chosen by project.engine in {path}"

    path = write_project(tmp_path, ONE_IMAGE.format(project_engine="", image_engine='engine = "unix:///app.sock"'),
                         {"app": "FROM scratch\n"})
    with Project(path).on_engine_of("app"):
        assert engine.where() == f"unix:///app.sock, chosen by images.app.engine in {path}"

    monkeypatch.setenv("DOCKER_CONTEXT", "lab")
    assert engine.where() == f"{lab}, chosen by DOCKER_CONTEXT"
    monkeypatch.setenv("DOCKER_CONTEXT", "default")
    assert engine.where() == "unix:///var/run/docker.sock, chosen by DOCKER_CONTEXT, which names the default context"
    monkeypatch.setenv("DOCKER_HOST", "127.0.0.1:2376")  # no scheme: tcp, as docker-py reads it
    assert engine.where() == "tcp://127.0.0.1:2376, chosen by DOCKER_HOST"
    monkeypatch.setenv("DOCKYARD_ENGINE", "ssh://me@lab")
    assert engine.where() == "ssh://me@lab, chosen by DOCKYARD_ENGINE"
    engine_choice.use_setting("unix:///setting.sock")
    assert engine.where() == "unix:///setting.sock, chosen by dockyard.engine in Invoke's configuration"


def test_a_chosen_context_that_does_not_exist_is_named_with_what_chose_it(nothing_chosen, tmp_path):
    path = write_project(tmp_path, ONE_IMAGE.format(project_engine='engine = "nosuch"', image_engine=""),
                         {"app": "FROM scratch\n"})
    Project(path)
    with pytest.raises(DockyardError) as caught:
        engine.where()
    assert str(caught.value) == (f"Docker context 'nosuch', chosen by project.engine in {path}, does not exist "
                                 "(see `docker context ls`)")


def test_an_unreachable_engine_says_to_change_what_chose_it(nothing_chosen, monkeypatch, tmp_path):
    """Not "point DOCKER_HOST at a running engine" when a setting, DOCKYARD_ENGINE, a context or
    containers.toml chose the engine: DOCKER_HOST would change nothing then."""
    nowhere = f"tcp://127.0.0.1:{free_port()}"  # nothing listens (docker-py leaks a socket to a missing unix one)
    make_context(nothing_chosen, "lab", nowhere)

    def hint() -> str:
        with pytest.raises(DockyardError) as caught:
            remote.docker_client()
        message = str(caught.value)
        assert message.startswith(f"cannot reach the Docker engine at {nowhere}"), message
        return message.partition("(connection refused). Start it (e.g. `sudo systemctl start docker`) or ")[2]

    (nothing_chosen / "config.json").write_text(json.dumps({"currentContext": "lab"}))
    engine_choice._cli_current_context.cache_clear()
    assert hint() == "switch the Docker CLI to another context (`docker context use NAME`)."
    path = write_project(tmp_path, ONE_IMAGE.format(project_engine=f'engine = "{nowhere}"', image_engine=""),
                         {"app": "FROM scratch\n"})
    Project(path)
    assert hint() == f"point project.engine in {path} at a running engine."
    path = write_project(tmp_path, ONE_IMAGE.format(project_engine="", image_engine=f'engine = "{nowhere}"'),
                         {"app": "FROM scratch\n"})
    with Project(path).on_engine_of("app"):
        assert hint() == f"point images.app.engine in {path} at a running engine."
    monkeypatch.setenv("DOCKER_CONTEXT", "lab")
    assert hint() == "point DOCKER_CONTEXT at a running engine."
    monkeypatch.setenv("DOCKER_HOST", nowhere)
    assert hint() == "point DOCKER_HOST at a running engine."
    monkeypatch.setenv("DOCKYARD_ENGINE", nowhere)
    assert hint() == "point DOCKYARD_ENGINE at a running engine."
    engine_choice.use_setting(nowhere)
    assert hint() == "point dockyard.engine in Invoke's configuration at a running engine."
