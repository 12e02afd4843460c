"""push and pull through a real registry: Debian's docker-registry, served on loopback by the
tests (the engine trusts loopback registries without TLS)."""

from __future__ import annotations

import json
import os

import pytest

from conftest import assert_clean_failure, free_port, get, remove_project_objects, serve_registry, statuses

pytestmark = pytest.mark.integration


def test_pushed_images_come_back_by_pull_run_without_a_build_and_are_up_to_date(project, registry, docker_client):
    project.inv("build", "--quiet")
    pushed = project.inv("push", "--registry", registry)
    assert f"httpd: pushed {registry}/{project.tags['httpd']}" in pushed.stdout
    assert "Pushed" in pushed.stdout  # a line per layer status change

    remove_project_objects(docker_client, project.name)  # every image and tag of ours is gone
    assert not docker_client.api.images(filters={"label": f"dockyard.project={project.name}"})

    # The registry from containers.toml this time, rather than the flag.
    project.config.write_text(project.config.read_text().replace(
        f'name = "{project.name}"', f'name = "{project.name}"\nregistry = "{registry}"', 1))
    pulled = json.loads(project.inv("pull", "--json").stdout)
    assert [r["image"] for r in pulled] == ["busybox", "my-app", "httpd", "api"]
    assert all(r["status"] == "pulled" and r["registry"] == registry for r in pulled)

    project.inv("httpd.run", "--no-build")
    status, body = get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")
    assert status == 200 and body
    assert set(statuses(project.inv("build").stdout).values()) == {"up to date"}
    again = project.inv("busybox.pull").stdout
    assert f"busybox: pulled {registry}/{project.tags['busybox']} as {project.tags['busybox']} (up to date)" in again


def test_push_of_one_image_rewrites_its_tag_for_the_registry(project, registry, docker_client):
    composed = project.inv("busybox.build", "busybox.push", "--registry", registry)  # one line, as Make
    assert f"busybox: pushed {registry}/{project.tags['busybox']}" in composed.stdout
    env = {**os.environ, "INVOKE_DOCKYARD_REGISTRY": registry}  # the setting, not the flag
    result = json.loads(project.inv("busybox.push", "--json", env=env).stdout)
    assert result["remote"] == f"{registry}/{project.tags['busybox']}"
    assert result["digest"].startswith("sha256:")
    assert (result["layers_pushed"], result["layers_existing"]) == (0, 1)  # pushed by the line above
    assert docker_client.api.inspect_image(result["remote"])["Id"] == docker_client.api.inspect_image(
        project.tags["busybox"])["Id"]


def test_a_registry_that_refuses_is_one_clear_line_naming_it(project):
    nobody = f"127.0.0.1:{free_port()}"
    project.inv("busybox.build")
    for task in ("busybox.push", "busybox.pull"):
        result = project.inv(task, "--registry", nobody, check=False)
        assert_clean_failure(result, nobody)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_read_only_registry_refuses_the_push_in_one_line(project, tmp_path):
    port = free_port()
    process = serve_registry(tmp_path, port, read_only=True)
    try:
        project.inv("busybox.build")
        result = project.inv("busybox.push", "--registry", f"localhost:{port}", check=False)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert_clean_failure(result, f"the registry localhost:{port}")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_pushing_an_image_that_is_not_built_says_build_it(project, registry):
    result = project.inv("api.push", "--registry", registry, check=False)
    assert_clean_failure(result, "does not exist", "inv api.build")


def test_no_registry_anywhere_is_one_clear_line(project):
    result = project.inv("push", check=False)
    assert_clean_failure(result, "no registry given", "--registry")


def test_the_python_api_pushes_and_pulls(project, registry, docker_client):
    from dockyard import Project

    api = Project(project.config)
    api.build(["busybox"], quiet=True)
    [pushed] = api.push(["busybox"], registry=registry)
    for tag in (project.tags["busybox"], pushed["remote"]):
        docker_client.api.remove_image(tag)  # the image itself is gone with its last tag
    [pulled] = api.pull(["busybox"], registry=registry)
    assert (pushed["status"], pulled["status"]) == ("pushed", "pulled")
    assert pulled["image_id"] == docker_client.api.inspect_image(project.tags["busybox"])["Id"]
    assert api.build(["busybox"])[0]["status"] == "up to date"


def test_a_failed_push_leaves_no_registry_tag_and_the_users_own_tag_as_it_was(project, tmp_path, docker_client):
    """The push tags the image REGISTRY/REPOSITORY:TAG; when the registry refuses (read-only)
    or is down, that tag goes again, never the image, and a tag the user had stays."""
    import docker

    project.inv("busybox.build", "my-app.build", "--quiet")
    api = docker_client.api
    busybox, my_app = (api.inspect_image(project.tags[key])["Id"] for key in ("busybox", "my-app"))
    port = free_port()
    process = serve_registry(tmp_path, port, read_only=True)
    try:
        for registry in (f"localhost:{port}", f"127.0.0.1:{free_port()}"):  # refuses; nothing listens
            remote = f"{registry}/{project.tags['busybox']}"
            result = project.inv("busybox.push", "--registry", registry, check=False)
            assert_clean_failure(result, f"the registry {registry}")
            with pytest.raises(docker.errors.ImageNotFound):
                api.inspect_image(remote)
            assert api.inspect_image(project.tags["busybox"])["Id"] == busybox  # the image and its own tag

            api.tag(my_app, remote.rpartition(":")[0], "latest")  # the user's: another image under that name
            result = project.inv("busybox.push", "--registry", registry, check=False)
            assert_clean_failure(result, f"the registry {registry}")
            assert api.inspect_image(remote)["Id"] == my_app
            api.tag(busybox, remote.rpartition(":")[0], "latest", force=True)  # the user's, on the image itself
            project.inv("busybox.push", "--registry", registry, check=False)
            assert api.inspect_image(remote)["Id"] == busybox
            api.remove_image(remote)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert api.inspect_image(project.tags["my-app"])["Id"] == my_app


def test_pushes_on_the_socket_path_go_on_while_other_threads_make_and_drop_the_docker_py_client(project, registry):
    """The standard-library push chose its socket once: a docker-py client made (and dropped)
    by another thread at any moment of it must not turn it to a traceback."""
    import threading
    import time

    from dockyard import Project, engine
    from dockyard.engine import remote

    api = Project(project.config)
    api.build(["busybox"], quiet=True)
    api.push(["busybox"], registry=registry)  # the layers are there: each push below is short
    import docker  # noqa: F401 - loaded once, so that making a client takes a moment, not an import

    engine.close()
    stop = threading.Event()
    failures: list[BaseException] = []
    made = []

    def churn() -> None:
        while not stop.is_set():
            made.append(remote.docker_client())
            time.sleep(0.005)
            remote._clients.clear()  # forgotten, not closed: a push may still be using it
            time.sleep(0.005)

    def pushes() -> None:
        try:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                assert api.push(["busybox"], registry=registry)[0]["status"] == "pushed"
        except BaseException as e:  # noqa: BLE001 - reported below, with its kind
            failures.append(e)

    threads = [threading.Thread(target=churn)] + [threading.Thread(target=pushes) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads[1:]:
        thread.join()
    stop.set()
    threads[0].join()
    for client in made:
        client.close()
    assert not failures, [f"{type(e).__name__}: {e}" for e in failures]
    assert len(made) > 10  # the client came and went many times during the pushes
