"""Beyond one machine: build on one engine and run on another, through a registry, and an
engine reached over ssh. The second engine is the tests' own (own socket and data root); the
registry is Debian's docker-registry on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from conftest import NO_ENGINE, get, remove_project_objects

pytestmark = pytest.mark.integration

ENGINE_VARIABLES = ("DOCKYARD_ENGINE", "DOCKER_HOST", "DOCKER_CONTEXT", "INVOKE_DOCKYARD_ENGINE")


def environment(**variables: str) -> dict:
    """Ours, with no engine choice but the ones given."""
    return {k: v for k, v in os.environ.items() if k not in ENGINE_VARIABLES} | variables


def project_objects(api, name: str) -> list[str]:
    """What an engine holds of the project: its containers' names and its images' tags."""
    containers = [c["Names"][0] for c in api.containers(all=True, filters={"label": f"dockyard.owner={name}"})]
    images = [tag for image in api.images() for tag in image.get("RepoTags") or [] if tag.startswith(f"{name}/")]
    return containers + images


@pytest.fixture
def on_the_second_engine(project, engine):
    """The project's objects on the second engine are removed afterwards too."""
    yield engine
    with engine.client() as api:
        remove_project_objects(SimpleNamespace(api=api), project.name)


def test_built_and_pushed_here_then_pulled_and_run_there(project, registry, on_the_second_engine, docker_client):
    project.inv("build", "--quiet")
    project.inv("push", "--registry", registry)
    # DOCKYARD_ENGINE comes first; a DOCKER_HOST that points nowhere proves it is not asked.
    there = environment(DOCKYARD_ENGINE=on_the_second_engine.host, DOCKER_HOST=NO_ENGINE)
    pulled = project.inv("pull", "--registry", registry, env=there)
    assert f"httpd: pulled {registry}/{project.tags['httpd']} as {project.tags['httpd']}" in pulled.stdout
    project.inv("httpd.run", "--no-build", env=there)

    status, body = get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")
    assert status == 200 and "Hello, World!" in body
    with on_the_second_engine.client() as api:
        assert api.inspect_container(project.container("httpd"))["State"]["Running"]
    assert not docker_client.api.containers(all=True, filters={"label": f"dockyard.owner={project.name}"})
    shown = project.inv("httpd.status", env=there).stdout
    assert f"engine: {on_the_second_engine.host}, chosen by DOCKYARD_ENGINE" in shown
    project.inv("httpd.stop", env=there)


def without_the_default_socket(*args: str) -> list[str]:
    """A command run where /var/run/docker.sock is /dev/null (a private mount namespace):
    anything that assumes the default socket fails."""
    script = 'mount --bind /dev/null /var/run/docker.sock && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *args]


def test_a_build_and_run_on_the_second_engine_never_touch_the_default_socket(project, on_the_second_engine,
                                                                              docker_client):
    env = environment(DOCKER_HOST=on_the_second_engine.host)
    ran = subprocess.run(without_the_default_socket(sys.executable, "-m", "invoke", "httpd.run"), cwd=project.root,
                         env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    status, body = get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")
    assert status == 200 and "Hello, World!" in body

    with on_the_second_engine.client() as api:
        there = project_objects(api, project.name)
    assert f"/{project.container('httpd')}" in there and project.tags["httpd"] in there
    assert project_objects(docker_client.api, project.name) == []
    # The same command, with the engine unusable, really is refused there: the check is real.
    refused = subprocess.run(without_the_default_socket("docker", "-H", "unix:///var/run/docker.sock", "info"),
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
