"""Make-like builds on the real engine: up to date, rebuilds, order, parallel, failures."""

from __future__ import annotations

import io
import os
import re
import sys

import pytest

from conftest import assert_clean_failure, make_project, remove_project_objects, statuses

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True, params=["buildkit", "classic"])
def builder(request, monkeypatch) -> str:
    """Every build test runs with each builder: BuildKit, and the classic one it falls back to."""
    monkeypatch.setenv("DOCKYARD_BUILDER", request.param)
    return request.param


def image_id(client, tag: str) -> str:
    return client.images.get(tag).id


def test_up_to_date_twice_in_a_row(project, docker_client):
    first = project.inv("build")
    assert statuses(first.stdout) == {"busybox": "built", "my-app": "built", "httpd": "built", "api": "built"}
    ids = {key: image_id(docker_client, tag) for key, tag in project.tags.items()}
    for _ in range(2):
        again = project.inv("build")
        assert set(statuses(again.stdout)) == {"busybox", "my-app", "httpd", "api"}
        assert set(statuses(again.stdout).values()) == {"up to date"}
        assert "Step 1/" not in again.stdout
        assert {key: image_id(docker_client, tag) for key, tag in project.tags.items()} == ids
    single = project.inv("httpd.build")
    assert "httpd is up to date" in single.stdout
    # Images carry the labels dockyard uses to recognise its own objects.
    labels = docker_client.images.get(project.tags["httpd"]).labels
    assert labels["dockyard.project"] == project.name and labels["dockyard.image"] == "httpd"
    assert re.fullmatch(r"[0-9a-f]{64}", labels["dockyard.key"])


def test_edit_rebuilds_the_image_and_removes_the_one_it_replaced(project, docker_client):
    project.inv("build")
    old = image_id(docker_client, project.tags["httpd"])
    index = project.root / "images" / "busybox-httpd" / "index.html"
    index.write_text(index.read_text().replace("Hello", "Hello again"))
    result = project.inv("httpd.build")
    new = image_id(docker_client, project.tags["httpd"])
    assert new != old
    assert "my-app is up to date" in result.stdout and "busybox is up to date" in result.stdout
    assert f"removed the replaced image {old[7:19]}" in result.stdout
    assert old not in {i["Id"] for i in docker_client.api.images(all=True)}


def test_a_swarm_whose_services_cannot_be_listed_keeps_the_replaced_image_and_the_build(project, docker_client,
                                                                                         monkeypatch, capsys):
    from dockyard import Project, engine
    from dockyard.engine import client

    project.inv("build", "--quiet")
    old = image_id(docker_client, project.tags["httpd"])
    request = client.request

    def no_quorum(method, path, what, **options):
        if path.startswith("/services"):
            raise engine.Refused(what, 500, "rpc error: code = Unknown desc = The swarm does not have a leader")
        return request(method, path, what, **options)

    monkeypatch.setattr(client, "request", no_quorum)  # engine.services' too
    index = project.root / "images" / "busybox-httpd" / "index.html"
    index.write_text(index.read_text().replace("Hello", "Hello again"))
    [outcome] = Project(project.config).build(["httpd"], quiet=True, output=sys.stdout)[-1:]
    assert outcome["status"] == "built"
    assert (f"kept the replaced image {old[7:19]}: the swarm's services, which may use it, could not be listed "
            "(rpc error: code = Unknown desc = The swarm does not have a leader)") in capsys.readouterr().out
    assert old in {i["Id"] for i in docker_client.api.images(all=True)}


def test_touching_a_file_without_changing_it_rebuilds_nothing(project):
    project.inv("build")
    script = project.root / "images" / "my-app" / "hello-world"
    os.utime(script, (1, 1))
    assert "my-app is up to date" in project.inv("my-app.build").stdout


def add_images(project, names: list[str]) -> None:
    """More images on the project's busybox, each its own (an ENV line: no container to run)."""
    with project.config.open("a") as config:
        for name in names:
            (project.root / "images" / name).mkdir()
            (project.root / "images" / name / "Dockerfile").write_text(f"FROM {project.tags['busybox']}\nENV N={name}\n")
            config.write(f'\n[images.{name}]\ntag = "{project.name}/{name}:latest"\ndir = "images/{name}"\n'
                         f'run = {{ name = "{project.name}-{name}" }}\n')


def test_a_no_op_asks_the_engine_as_often_for_28_images_as_for_16(project, monkeypatch):
    """The images are found in one listing of the project's, not by one request each."""
    from dockyard import Project, config
    from dockyard.engine import client

    asked = []
    send = client.open_answer  # every request to the engine goes through it
    monkeypatch.setattr(client, "open_answer", lambda method, path, what, **options: (
        asked.append(path), send(method, path, what, **options))[1])

    def no_op_requests() -> list[str]:
        config.load.cache_clear()  # containers.toml grew
        outcomes = Project(project.config).build(quiet=True, output=io.StringIO())
        assert {o["status"] for o in outcomes} == {"up to date"}
        made = list(asked)
        asked.clear()
        return made

    add_images(project, [f"extra{n}" for n in range(12)])
    project.inv("build", "--quiet")
    few = no_op_requests()
    add_images(project, [f"extra{n}" for n in range(12, 24)])
    project.inv("build", "--quiet")
    many = no_op_requests()
    assert 0 < len(many) == len(few) < 16, many


def test_a_parent_edit_rebuilds_its_children_and_nothing_else(project, docker_client):
    project.inv("build")
    busybox_id = image_id(docker_client, project.tags["busybox"])
    (project.root / "images" / "my-app" / "hello-world").write_text("#!/bin/sh\necho Hello, Make!\n")
    result = project.inv("httpd.build")
    assert "busybox is up to date" in result.stdout
    assert f"built {project.tags['my-app']}" in result.stdout
    assert f"built {project.tags['httpd']}" in result.stdout
    assert image_id(docker_client, project.tags["busybox"]) == busybox_id
    assert project.inv("my-app.run", "--quiet-build").stdout.strip() == "Hello, Make!"


def test_failed_build_keeps_the_old_image(project, docker_client):
    project.inv("build")
    old = image_id(docker_client, project.tags["httpd"])
    dockerfile = project.root / "images" / "busybox-httpd" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN exit 7\n")
    result = project.inv("httpd.build", check=False)
    assert_clean_failure(result, "build of", "failed", "exit")
    assert image_id(docker_client, project.tags["httpd"]) == old


def provision_step_cached(output: str, builder: str) -> bool:
    """Whether the build took httpd's provisioning step from the cache, as its builder says it."""
    if builder == "classic":
        return bool(re.search(r"RUN sh /cfg2/provision-httpd.sh\n.*---> Using cache", output))
    step = re.search(r"#(\d+) \[\d/\d\] RUN sh /cfg2/provision-httpd.sh$", output, re.MULTILINE)
    assert step, output
    return f"#{step[1]} CACHED\n" in output


def test_force_and_no_cache_rebuild(project, builder):
    project.inv("build")
    forced = project.inv("httpd.build", "--force")
    assert f"built {project.tags['httpd']}" in forced.stdout
    assert provision_step_cached(forced.stdout, builder), forced.stdout
    no_cache = project.inv("httpd.build", "--no-cache")
    assert f"built {project.tags['httpd']}" in no_cache.stdout
    assert not provision_step_cached(no_cache.stdout, builder), no_cache.stdout


def test_dockerignored_files_neither_reach_the_image_nor_cause_rebuilds(project):
    app = project.root / "images" / "my-app"
    (app / ".dockerignore").write_text("*.log\n")
    project.inv("build")
    (app / "debug.log").write_text("noise")
    assert "my-app is up to date" in project.inv("my-app.build").stdout
    (app / "notes.txt").write_text("signal")
    project.inv("my-app.build")
    project.inv("httpd.run", "--quiet-build")
    listing = project.inv("httpd.exec", "ls /cfg").stdout.split()
    assert "notes.txt" in listing and "debug.log" not in listing


def test_run_rebuilds_a_stale_image_and_no_build_skips_it(project, docker_client):
    project.inv("httpd.run", "--quiet-build")
    old = image_id(docker_client, project.tags["httpd"])
    index = project.root / "images" / "busybox-httpd" / "index.html"
    index.write_text("<p>version 2</p>\n")
    project.inv("httpd.run", "--no-build")
    assert image_id(docker_client, project.tags["httpd"]) == old
    assert "out of date" in project.inv("httpd.status").stdout
    project.inv("httpd.run")
    assert image_id(docker_client, project.tags["httpd"]) != old
    assert project.inv("httpd.exec", "cat /www/index.html").stdout == "<p>version 2</p>\n"


def test_no_build_on_a_missing_image_says_so(project):
    result = project.inv("httpd.run", "--no-build", check=False)
    assert_clean_failure(result, "does not exist", "inv httpd.build")


def test_offline_base_falls_back_to_the_rootfs_and_says_so(project):
    config = project.config.read_text().replace(
        '[images.busybox.base]\n', '[images.busybox.base]\npull = "127.0.0.1:9/nothing:latest"\n')
    project.config.write_text(config)
    result = project.inv("busybox.build")
    assert "cannot pull 127.0.0.1:9/nothing:latest" in result.stdout
    assert "making it offline from rootfs.sh" in result.stdout
    assert f"imported {project.tags['busybox']}" in result.stdout


def test_parallel_build_with_a_failure_skips_its_dependents_and_builds_the_rest(tmp_path, docker_client):
    project = make_project(tmp_path / "p")
    try:
        # Two more independent branches on busybox; one of them fails, with a child.
        images = project.root / "images"
        for name, body in (("good", "RUN echo good > /good"), ("bad", "RUN exit 3"), ("child", None)):
            (images / name).mkdir()
            parent = f"{project.name}/bad:latest" if name == "child" else project.tags["busybox"]
            (images / name / "Dockerfile").write_text(f"FROM {parent}\n{body or 'RUN true'}\n")
        with project.config.open("a") as config:
            for name in ("good", "bad", "child"):
                config.write(f'\n[images.{name}]\ntag = "{project.name}/{name}"\ndir = "images/{name}"\n'
                             f'run = {{ name = "{project.name}-{name}" }}\n')
        result = project.inv("build", "--jobs", "3", check=False)
        assert_clean_failure(result, "build failed for bad, child")
        assert statuses(result.stdout) == {"busybox": "built", "my-app": "built", "httpd": "built", "api": "built",
                                           "good": "built", "bad": "failed", "child": "skipped"}
        assert re.search(r"^bad\s+\| ", result.stdout, re.MULTILINE)  # lines carry their image
        assert docker_client.images.get(f"{project.name}/good").id
    finally:
        remove_project_objects(docker_client, project.name)


def test_a_target_stage_and_the_build_network_are_built_as_asked_and_up_to_date_after(project, docker_client,
                                                                                      builder):
    project.inv("busybox.build")
    staged = project.root / "images" / "staged"
    staged.mkdir()
    (staged / "Dockerfile").write_text(
        f"FROM {project.tags['busybox']} AS tools\nRUN ls /sys/class/net > /networks; echo tools > /stage\n"
        f"FROM {project.tags['busybox']}\nRUN echo final > /stage\n")
    with project.config.open("a") as config:
        config.write(f'\n[images.staged]\ntag = "{project.name}/staged"\ndir = "images/staged"\n'
                     f'target = "tools"\nbuild_network = "none"\nrun = {{ name = "{project.name}-staged" }}\n')
    project.inv("staged.build")
    seen = docker_client.containers.run(f"{project.name}/staged", ["cat", "/stage", "/networks"], remove=True)
    assert seen.decode().split() == ["tools", "lo"]  # the target stage, with no network but loopback
    labels = docker_client.images.get(f"{project.name}/staged").labels
    assert labels["dockyard.project"] == project.name and labels["dockyard.image"] == "staged"
    assert "staged is up to date" in project.inv("staged.build").stdout
    # Another network is another build: the key holds it.
    project.config.write_text(project.config.read_text().replace('build_network = "none"', 'build_network = "default"'))
    assert f"built {project.name}/staged" in project.inv("staged.build").stdout
    if builder == "classic":  # its layer cache does not tell build networks apart (docker build's neither)
        project.inv("staged.build", "--no-cache")
    seen = docker_client.containers.run(f"{project.name}/staged", ["cat", "/networks"], remove=True)
    assert "eth0" in seen.decode().split()
