"""Services without an engine: which images are services, start order, the checks at load,
volume and network settings, and `--env NAME`."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard import Project, config
from dockyard.errors import DockyardError
from dockyard.resources import binds, network_mode
from dockyard.services import start_order
from dockyard.tasks.core import parse_env

from conftest import REPO
from conftest import DEMO_ROOTFS_BASE, load_error, write_project

SERVICES = DEMO_ROOTFS_BASE + """
[images.tool]
tag = "demo/tool"
dir = "tool"

[images.db]
tag = "demo/db"
dir = "db"
[images.db.run]
service = true
volumes = ["data:/data", "shared:/shared:ro"]

[images.api]
tag = "demo/api"
dir = "api"
[images.api.run]
ports = ["8081:8081"]
after = ["db"]

[images.site]
tag = "demo/site"
dir = "site"
[images.site.run]
ports = ["8000:80"]
after = ["api"]

[volumes.shared]
external = true
"""
DOCKERFILES = {key: "FROM demo/base\n" for key in ("tool", "db", "api", "site")}


def load(tmp_path: Path, toml: str = SERVICES) -> config.ProjectSpec:
    return config.load(write_project(tmp_path, toml, DOCKERFILES))


def test_an_image_with_ports_or_a_ready_check_is_a_service_and_the_rest_are_one_shot(tmp_path):
    project = load(tmp_path)
    assert {key: spec.run.service for key, spec in project.images.items()} == \
        {"base": False, "tool": False, "db": True, "api": True, "site": True}


def test_the_example_runs_api_then_httpd_and_my_app_is_one_shot():
    example = Project(REPO / "containers.toml")
    assert example.services == ["api", "httpd"]
    assert not example.image("my-app").run.service and not example.image("busybox").run.service


def test_start_order_puts_what_a_service_needs_first(tmp_path):
    project = load(tmp_path, SERVICES.replace('[images.db]', '[images.cache]\ntag = "demo/cache"\ndir = "db"\n'
                                              'run = { service = true }\n\n[images.db]'))
    assert start_order(project.images) == ["cache", "db", "api", "site"]
    assert start_order(project.images, ["api"]) == ["db", "api"]
    with pytest.raises(DockyardError, match="'tool' is a one-shot image, not a service"):
        start_order(project.images, ["tool"])


def test_after_naming_an_unknown_image_is_a_config_error(tmp_path):
    message = load_error(tmp_path, SERVICES.replace('after = ["db"]', 'after = ["dbb"]'), DOCKERFILES)
    assert "images.api.run.after[0]: no image named 'dbb' (did you mean 'db'?)" in message


def test_after_naming_a_one_shot_image_is_a_config_error(tmp_path):
    message = load_error(tmp_path, SERVICES.replace('after = ["db"]', 'after = ["tool"]'), DOCKERFILES)
    assert "images.api.run.after[0]: 'tool' is a one-shot image, not a service" in message
    assert "images.tool.run.service = true" in message
    assert "images.tool.run.completes = true if it is a step that must finish first" in message


def test_an_after_cycle_is_a_config_error(tmp_path):
    toml = SERVICES.replace('service = true\nvolumes', 'service = true\nafter = ["site"]\nvolumes')
    message = load_error(tmp_path, toml, DOCKERFILES)
    assert "images.db.run.after: a cycle: db -> site -> api -> db" in message
    message = load_error(tmp_path, SERVICES.replace('after = ["db"]', 'after = ["api"]'), DOCKERFILES)
    assert "a cycle: api -> api" in message


def test_two_services_publishing_one_host_address_and_port_on_one_engine_is_a_config_error(tmp_path):
    message = load_error(tmp_path, SERVICES.replace('"8000:80"', '"8081:80"'), DOCKERFILES)
    assert "images.site.run.ports[0]: 127.0.0.1:8081/tcp is also published by images.api.run.ports[0]" in message
    message = load_error(tmp_path, SERVICES.replace('"8000:80"', '"0.0.0.0:8081:80"'), DOCKERFILES)
    assert "0.0.0.0:8081/tcp is also published by images.api.run.ports[0]" in message
    # Another address, another protocol, or an image that is not a service: no clash.
    for ports in ('"127.0.0.2:8081:80"', '"8081:80/udp"'):
        load(tmp_path, SERVICES.replace('"8000:80"', ports))
    load(tmp_path, SERVICES.replace('"8000:80"]', '"8081:80"]\nservice = false'))
    # Nor two services on two engines: two hosts, two project networks (the same names too).
    elsewhere = SERVICES.replace('tag = "demo/site"', 'tag = "demo/site"\nengine = "tcp://127.0.0.1:2399"').replace(
        '"8000:80"]', '"8081:80"]\naliases = ["db"]')
    project = config.load(write_project(tmp_path, elsewhere, {**DOCKERFILES, "site": "FROM busybox:latest\n"}))
    assert (project.image("site").run.aliases, project.image("site").run.ports[0].host_port) == (("db",), 8081)


def test_named_volumes_are_the_projects_unless_external(tmp_path):
    project = load(tmp_path)
    assert binds(project, project.image("db")) == ["demo_data:/data", "shared:/shared:ro"]
    assert network_mode(project, project.image("db")) == "demo_default"
    message = load_error(tmp_path, SERVICES.replace('"data:/data"', '"da/ta:/data"'), DOCKERFILES)
    assert "images.db.run.volumes[0]: 'da/ta' is not a volume name" in message
    message = load_error(tmp_path, SERVICES.replace("external = true", "external = 1"), DOCKERFILES)
    assert "volumes.shared.external: expected true or false" in message


def test_network_is_the_projects_or_one_of_the_engines(tmp_path):
    project = load(tmp_path, SERVICES.replace("service = true\n", 'service = true\nnetwork = "host"\n'))
    assert network_mode(project, project.image("db")) == "host"
    message = load_error(tmp_path, SERVICES.replace("service = true\n", 'service = true\nnetwork = "mine"\n'),
                         DOCKERFILES)
    assert "images.db.run.network: 'mine' is not a network; use one of project, bridge, host, none" in message


def test_up_down_and_logs_are_reserved_names(tmp_path):
    message = load_error(tmp_path, SERVICES.replace("[images.tool]", "[images.logs]"), DOCKERFILES)
    assert "is taken by the top-level task `inv logs`" in message


def test_env_name_without_a_value_takes_this_environments(monkeypatch):
    monkeypatch.setenv("DYTEST_TOKEN", "from-the-host")
    monkeypatch.delenv("DYTEST_UNSET", raising=False)
    assert parse_env(["DYTEST_TOKEN", "A=1", "B="]) == {"DYTEST_TOKEN": "from-the-host", "A": "1", "B": ""}
    with pytest.raises(DockyardError, match="DYTEST_UNSET is not set here; give KEY=VALUE or export DYTEST_UNSET"):
        parse_env(["DYTEST_UNSET"])


def with_site(setting: str) -> str:
    """SERVICES with one more line in images.site.run."""
    return SERVICES.replace('after = ["api"]\n', f'after = ["api"]\n{setting}\n')


@pytest.mark.parametrize(("toml", "where", "other"), [
    # An alias that is another image's key, container name or alias.
    (with_site('aliases = ["web", "db"]'), "images.site.run.aliases[1]", "the image key images.db"),
    (with_site('aliases = ["DB"]'), "images.site.run.aliases[0]", "the image key images.db"),
    (SERVICES.replace('service = true\n', 'service = true\nname = "database"\n').replace(
        'after = ["api"]\n', 'after = ["api"]\naliases = ["database"]\n'),
     "images.site.run.aliases[0]", "the container name of images.db (images.db.run.name)"),
    (SERVICES.replace('service = true\n', 'service = true\naliases = ["store"]\n').replace(
        'after = ["api"]\n', 'after = ["api"]\naliases = ["www", "store"]\n'),
     "images.site.run.aliases[1]", "an alias of images.db (images.db.run.aliases[0])"),
    # A container name that is another image's key, or an alias, including one-shot images'.
    (SERVICES.replace('service = true\n', 'service = true\nname = "database"\n').replace(
        '"8081:8081"]\n', '"8081:8081"]\nname = "db"\n'), "images.api.run.name", "the image key images.db"),
    (SERVICES.replace('tag = "demo/tool"', 'tag = "demo/api-tool"').replace(
        'after = ["api"]\n', 'after = ["api"]\naliases = ["api-tool"]\n'),
     "images.site.run.aliases[0]", "the container name of images.tool (images.tool.run.name)"),
])
def test_two_images_answering_to_one_name_on_the_project_network_is_a_config_error(tmp_path, toml, where, other):
    message = load_error(tmp_path, toml, DOCKERFILES)
    assert f": {where}: '" in message and f"is also {other} on the project network" in message, message
    assert "\n" not in message


def test_names_off_the_project_network_or_of_the_same_image_do_not_clash(tmp_path):
    # The image's own key or container name as an alias is the same container.
    project = load(tmp_path, with_site('aliases = ["site", "www"]'))
    assert project.image("site").run.aliases == ("site", "www")
    # A container on another network is not reached by these names.
    load(tmp_path, SERVICES.replace('service = true\n', 'service = true\nname = "database"\n').replace(
        '"8081:8081"]\n', '"8081:8081"]\nname = "db"\nnetwork = "bridge"\n'))


def with_step(*lines: str) -> str:
    """SERVICES where tool is a step (completes = true) that db needs first."""
    run = "\n".join(("[images.tool.run]", "completes = true", *lines))
    return SERVICES.replace('dir = "tool"\n', f'dir = "tool"\n{run}\n').replace(
        "service = true\nvolumes", 'service = true\nafter = ["tool"]\nvolumes')


def test_a_step_that_completes_is_a_service_that_after_may_name_and_comes_first(tmp_path):
    project = load(tmp_path, with_step())
    assert project.image("tool").run.completes and project.image("tool").run.service
    assert start_order(project.images) == ["tool", "db", "api", "site"]
    assert start_order(project.images, ["db"]) == ["tool", "db"]
    assert not project.image("db").run.completes


@pytest.mark.parametrize(("setting", "where", "words"), [
    ("service = false", "images.tool.run.service", "service = false: `up` would never run it"),
    ('ready = { port = 80 }\nports = ["8090:80"]', "images.tool.run.ready", "a ready check"),
    ('restart = "on-failure"', "images.tool.run.restart", "a restart policy: the engine would run it again"),
])
def test_a_step_refuses_what_would_keep_it_from_running_to_its_end(tmp_path, setting, where, words):
    message = load_error(tmp_path, with_step(setting), DOCKERFILES)
    assert f": {where}: completes = true (a step `up` runs to its end) does not go with {words}" in message, message
    load(tmp_path, with_step('restart = "no"', "service = true"))  # what it is anyway


def test_deploy_leaves_the_steps_out_of_the_services_it_runs_on_a_swarm(tmp_path, monkeypatch):
    project = Project(write_project(tmp_path, with_step(), DOCKERFILES))
    deployed = []
    monkeypatch.setattr(Project, "_deploy", lambda self, keys, **options: deployed.extend(keys) or [])
    project.deploy()
    assert deployed == ["db", "api", "site"]
