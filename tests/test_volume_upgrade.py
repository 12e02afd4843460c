"""A project's data from dockyard 0.1 is not left behind without a word: 0.1 named a volume as
containers.toml does (`data`), 0.2 made it the project's (`PROJECT_data`). `run` and `up` warn,
once, when the old volume exists and the new one does not; the fixes they name, and the
CHANGELOG's upgrade note gives, work as written."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import unique
from doc_blocks import block

pytestmark = pytest.mark.integration


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("dockyard: warning: the volume ")]


@pytest.fixture
def old_volume(project, docker_client):
    """A volume as dockyard 0.1 left it (no labels), which httpd and api both mount."""
    name = unique("dytest-old")
    docker_client.api.create_volume(name)
    config = project.config.read_text().replace('volumes = ["data:/data"]', f'volumes = ["{name}:/data"]')
    config = config.replace('after = ["api"]', f'after = ["api"]\nvolumes = ["{name}:/data"]')
    project.config.write_text(config)
    yield name
    for container in docker_client.api.containers(all=True, filters={"volume": name}):
        docker_client.api.remove_container(container["Id"], force=True)
    docker_client.api.remove_volume(name, force=True)


def test_run_and_up_warn_once_of_a_volume_left_by_0_1(project, docker_client, old_volume):
    scoped = f"{project.name}_{old_volume}"
    # up prepares both services, in threads: one warning for the volume they share.
    up = project.inv("up", "--quiet-build")
    [warning] = warnings_of(up.stderr)
    assert f"'{old_volume}'" in warning and f"'{scoped}'" in warning
    assert f"[volumes.{old_volume}] external = true" in warning
    copy = f"docker run --rm -v {old_volume}:/from:ro -v {scoped}:/to busybox cp -a /from/. /to/"
    assert warning.endswith(copy)
    assert docker_client.api.inspect_volume(scoped)["Labels"]["dockyard.owner"] == project.name
    # Once the project's volume exists, nothing more is said.
    assert warnings_of(project.inv("api.run", "--detach", timeout=120).stderr) == []

    # What 0.1 left there, and the CHANGELOG's copy, as written (busybox: the project's own).
    docker_client.containers.run(project.tags["busybox"], ["sh", "-c", "echo from-0.1 > /v/marker"],
                                 volumes={old_volume: {"bind": "/v"}}, remove=True)
    project.inv("down", "--volumes")
    commands = (block("upgrade-copy").text.replace("myproject", project.name).replace("app-state", old_volume)
                .replace(" busybox ", f" {project.tags['busybox']} ")
                .replace("inv up", "inv up --quiet-build").replace("inv ", f"{sys.executable} -m invoke "))
    copied = subprocess.run(["bash", "-euc", commands], cwd=project.root, capture_output=True, text=True, timeout=300)
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert warnings_of(copied.stderr) == []
    assert project.inv("api.exec", "cat /data/marker").stdout == "from-0.1\n"
    project.inv("down", "--volumes")

    # The other fix, as the CHANGELOG writes it: the old volume, used by its own name.
    with project.config.open("a") as config:
        config.write("\n" + block("upgrade-external").text.replace("app-state", old_volume))
    ran = project.inv("api.run", "--detach", timeout=120)
    assert warnings_of(ran.stderr) == []
    mounts = docker_client.api.inspect_container(project.container("api"))["Mounts"]
    assert [m["Name"] for m in mounts if m["Type"] == "volume"] == [old_volume]
    assert project.inv("api.exec", "cat /data/marker").stdout == "from-0.1\n"
    project.inv("down")


def test_a_volume_of_another_dockyard_project_is_not_taken_for_0_1s(project, docker_client, old_volume):
    docker_client.api.remove_volume(old_volume)
    docker_client.api.create_volume(old_volume, labels={"dockyard.owner": "someone-else"})
    assert warnings_of(project.inv("api.run", "--detach", "--quiet-build", timeout=120).stderr) == []
    project.inv("down", "--volumes")
