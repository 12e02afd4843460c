"""Which engine `inv` talks to: the setting, DOCKYARD_ENGINE, DOCKER_HOST, DOCKER_CONTEXT,
[project] engine, the Docker CLI's context; and one clear line when it is not there."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import assert_clean_failure, unique

pytestmark = pytest.mark.integration

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


def test_an_unreachable_engine_from_dockyard_engine_is_one_line_naming_it(project):
    result = project.inv("httpd.status", env=environment(DOCKYARD_ENGINE=NOWHERE, DOCKER_HOST=SOCKET), check=False)
    assert_clean_failure(result, NOWHERE, "DOCKYARD_ENGINE")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_invoke_setting_comes_before_the_environment(project):
    env = environment(INVOKE_DOCKYARD_ENGINE=NOWHERE, DOCKYARD_ENGINE=SOCKET)
    result = project.inv("busybox.status", env=env, check=False)
    assert_clean_failure(result, NOWHERE, "dockyard.engine")


def test_the_engine_of_containers_toml_is_used_after_the_environment(project):
    set_project_engine(project, NOWHERE)
    result = project.inv("status", env=environment(), check=False)
    assert_clean_failure(result, NOWHERE, f"engine in {project.config}")
    assert project.inv("status", env=environment(DOCKER_HOST=SOCKET)).returncode == 0


def test_an_unknown_context_is_one_clear_line(project):
    result = project.inv("status", env=environment(DOCKER_CONTEXT="nosuch"), check=False)
    assert_clean_failure(result, "DOCKER_CONTEXT", "'nosuch'", "does not exist")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_config_shows_the_engine_and_where_the_choice_came_from(project):
    shown = project.inv("config", env=environment()).stdout
    assert f"engine: {SOCKET}, chosen by default" in shown
    resolved = json.loads(project.inv("config", "--json", env=environment(DOCKYARD_ENGINE=NOWHERE)).stdout)
    assert resolved["engine"] == {"address": NOWHERE, "source": "DOCKYARD_ENGINE", "context": None}


def test_a_docker_context_is_followed_from_the_environment_and_from_containers_toml(project, docker_context):
    shown = project.inv("status", env=environment(DOCKER_CONTEXT=docker_context)).stdout
    assert f"engine: {SOCKET} (Docker context '{docker_context}'), chosen by DOCKER_CONTEXT" in shown
    set_project_engine(project, docker_context)
    rows = json.loads(project.inv("status", "--json", env=environment()).stdout)
    assert {row["engine"] for row in rows} == {SOCKET}
    shown = project.inv("config", env=environment()).stdout
    assert f"(Docker context '{docker_context}'), chosen by engine in {project.config}" in shown
