"""More names and networks for a container (`run.aliases`, `run.networks`) and one image's
`clean --volumes`: config checks without an engine, the rest on the real engine."""

from __future__ import annotations

import json
import time

import pytest

from dockyard import config
from dockyard.resources import extra_networks

from conftest import DEMO_APP, assert_clean_failure, load_error, unique, write_project

APP = DEMO_APP + """[images.app.run]
service = true
"""


# --- containers.toml -----------------------------------------------------------------------


def test_aliases_and_networks_are_read_into_the_run_settings(tmp_path):
    path = write_project(tmp_path, APP + 'aliases = ["backend", "db.internal"]\nnetworks = ["shared-net", "bridge"]\n')
    run = config.load(path).image("app").run
    assert run.aliases == ("backend", "db.internal") and run.networks == ("shared-net", "bridge")
    assert extra_networks(config.load(path).image("app"), "bridge") == ["shared-net"]


@pytest.mark.parametrize(("setting", "where", "words"), [
    ('aliases = ["under_score"]', "images.app.run.aliases[0]", "is not a hostname"),
    ('aliases = ["-dash"]', "images.app.run.aliases[0]", "is not a hostname"),
    ('aliases = ["ok", "a..b"]', "images.app.run.aliases[1]", "is not a hostname"),
    (f'aliases = ["{"x" * 64}"]', "images.app.run.aliases[0]", "is not a hostname"),
    ('aliases = ["same", "same"]', "images.app.run.aliases[1]", "listed twice"),
    ('aliases = "backend"', "images.app.run.aliases", "list"),
    ('network = "host"\naliases = ["backend"]', "images.app.run.aliases", "network is 'host'"),
    ('network = "bridge"\naliases = ["backend"]', "images.app.run.aliases", "project network"),
    ('networks = ["bad name"]', "images.app.run.networks[0]", "not a network"),
    ('networks = ["none"]', "images.app.run.networks[0]", "not a network"),
    ('networks = ["n1", "n1"]', "images.app.run.networks[1]", "listed twice"),
    ('networks = [1]', "images.app.run.networks[0]", "string"),
    ('network = "none"\nnetworks = ["n1"]', "images.app.run.networks", "cannot join other networks"),
])
def test_bad_aliases_and_networks_are_config_errors_with_their_key_path(tmp_path, setting, where, words):
    message = load_error(tmp_path, APP + setting + "\n")
    assert f": {where}" in message and words in message, message
    assert "\n" not in message


# --- on the real engine ------------------------------------------------------------------------


def add_api_settings(project, *lines: str) -> None:
    """The example's containers.toml ends with [images.api.run]: more keys go there."""
    project.config.write_text(project.config.read_text() + "".join(f"{line}\n" for line in lines))


@pytest.fixture
def external_network(docker_client):
    """A network someone else made (this test): dockyard must use it and leave it."""
    name = unique("dytest-ext")
    network = docker_client.api.create_network(name, driver="bridge")
    yield name
    for container in docker_client.api.inspect_network(network["Id"]).get("Containers") or {}:
        docker_client.api.disconnect_container_from_network(container, network["Id"], force=True)
    docker_client.api.remove_network(network["Id"])


def wget_from(docker_client, image: str, network: str, url: str, seconds: float = 15) -> str:
    """Fetch ``url`` from inside a throwaway container (made here) on ``network``, again until
    it answers: a service without a readiness check may take a moment to listen."""
    import docker

    deadline = time.monotonic() + seconds
    while True:
        try:
            return docker_client.containers.run(image, ["wget", "-q", "-O", "-", url], network=network,
                                                remove=True, labels={"dytest": "wget"}).decode()
        except docker.errors.ContainerError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def fetch_until(project, url: str, seconds: float = 15) -> str:
    """``url`` fetched from inside httpd, tried again until it answers or time is up."""
    deadline = time.monotonic() + seconds
    while True:
        result = project.inv("httpd.exec", f"wget -q -O - {url}", check=time.monotonic() > deadline)
        if result.returncode == 0:
            return result.stdout
        time.sleep(0.5)


@pytest.mark.integration
def test_a_container_answers_by_its_aliases_on_the_project_network(project, docker_client):
    add_api_settings(project, 'aliases = ["backend", "visits.internal"]')
    project.inv("up", "--quiet-build")
    for host in ("backend", "visits.internal", "api", project.container("api")):
        page = project.inv("httpd.exec", f"wget -q -O - http://{host}:8081/cgi-bin/visits").stdout
        assert '"service": "api"' in page, (host, page)
    aliases = docker_client.api.inspect_container(project.container("api"))["NetworkSettings"]["Networks"][
        f"{project.name}_default"]["Aliases"]
    assert {"api", "backend", "visits.internal"} <= set(aliases)

    # A changed alias is a changed setting: up replaces the api container, and the old name is gone.
    project.config.write_text(project.config.read_text().replace('"backend", ', ""))
    outcomes = {o["name"]: o["action"] for o in json.loads(project.inv("up", "--quiet-build", "--json").stdout)}
    assert outcomes[project.container("api")] == "replaced"
    # The api has no readiness check: its new server may take a moment to listen.
    assert '"service": "api"' in fetch_until(project, "http://visits.internal:8081/cgi-bin/visits")
    lookup = project.inv("httpd.exec", "wget -q -O - http://backend:8081/cgi-bin/visits", check=False)
    assert "bad address 'backend:8081'" in lookup.stderr, lookup.stderr


@pytest.mark.integration
def test_a_container_joins_an_existing_network_which_down_leaves_alone(project, docker_client, external_network):
    add_api_settings(project, f'networks = ["{external_network}"]')
    project.inv("up", "--quiet-build", "--only", "api")
    api = project.container("api")
    networks = docker_client.api.inspect_container(api)["NetworkSettings"]["Networks"]
    assert set(networks) == {f"{project.name}_default", external_network}
    # Reached from a container on that network only, by the container's name.
    page = wget_from(docker_client, project.tags["busybox"], external_network, f"http://{api}:8081/cgi-bin/visits")
    assert '"service": "api"' in page
    assert project.inv("up", "--quiet-build", "--only", "api").stdout.splitlines()[0] == f"{api}: unchanged"
    # Joining is a setting: without the network, up replaces the container.
    project.config.write_text(project.config.read_text().replace(f'networks = ["{external_network}"]\n', ""))
    assert project.inv("up", "--quiet-build", "--only", "api").stdout.splitlines()[0] == \
        f"{api}: replaced (settings changed)"
    assert set(docker_client.api.inspect_container(api)["NetworkSettings"]["Networks"]) == {f"{project.name}_default"}
    project.inv("down")
    assert docker_client.api.inspect_network(external_network)["Name"] == external_network


@pytest.mark.integration
def test_a_missing_network_is_refused_in_one_line_and_the_running_container_stays(project, docker_client):
    project.inv("api.run", "--quiet-build", "--detach")
    api = project.container("api")
    before = docker_client.api.inspect_container(api)["Id"]
    missing = unique("dytest-missing")
    add_api_settings(project, f'networks = ["{missing}"]')
    for args in (["api.run", "--quiet-build", "--detach"], ["up", "--quiet-build"]):
        result = project.inv(*args, check=False)
        assert_clean_failure(result, f"the network '{missing}'", "images.api.run.networks", "does not exist")
        errors = [line for line in result.stderr.splitlines() if line.startswith("dockyard:")]
        assert errors == [result.stderr.strip().splitlines()[-1]], result.stderr  # one line, the last
    containers = docker_client.api.containers(all=True, filters={"label": f"dockyard.owner={project.name}"})
    assert [c["Id"] for c in containers] == [before]
    assert docker_client.api.inspect_container(api)["State"]["Running"]


@pytest.mark.integration
def test_one_images_clean_volumes_removes_only_the_volumes_it_mounts(project, docker_client):
    project.inv("up", "--quiet-build", "--only", "api")
    volume = f"{project.name}_data"
    assert docker_client.api.inspect_volume(volume)
    # httpd mounts no volume: its clean leaves api's.
    assert "volume" not in project.inv("httpd.clean", "--volumes").stdout
    # While api's container runs, its volume is in use and stays.
    assert "volume" not in project.inv("api.clean", "--volumes", "--dry-run").stdout
    project.inv("api.stop")
    dry = json.loads(project.inv("api.clean", "--volumes", "--dry-run", "--json").stdout)
    assert dry["volumes"] == [{"name": volume, "volume": "data"}]
    assert f"would remove volume {volume}" in project.inv("api.clean", "--volumes", "--dry-run").stdout
    assert docker_client.api.inspect_volume(volume)
    removed = project.inv("api.clean", "--volumes").stdout
    assert f"removed container {project.container('api')}" in removed and f"removed volume {volume}" in removed
    assert not docker_client.api.volumes(filters={"name": volume}).get("Volumes")
    assert_clean_failure(project.inv("api.clean", "--volumes", "--all", check=False), "does not go with --all")
