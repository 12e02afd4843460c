"""Fixtures and helpers shared by the tests: the real engine, throwaway copies of the example
project, and the checks every test module uses.

Integration tests (marked ``integration``) talk to the engine that DOCKER_HOST (or the
default socket) names. If none answers they fail, loudly: they never skip. Every other test
runs with DOCKER_HOST pointing nowhere, so one that touches an engine by mistake fails.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from example_project import ISOLATED_TOML

REPO = Path(__file__).resolve().parent.parent
NO_ENGINE = "unix:///nonexistent/dockyard-tests-use-no-engine.sock"


@pytest.fixture(autouse=True)
def no_engine_outside_integration(request, monkeypatch):
    """Engine-free tests must stay engine-free: point them at an engine that is not there."""
    if request.node.get_closest_marker("integration") is None:
        monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)


def assert_clean_failure(result: subprocess.CompletedProcess, *words: str) -> None:
    """A user error: non-zero exit, a message with these words, and no traceback."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    for word in words:
        assert word in result.stderr, f"{word!r} not in:\n{result.stderr}"


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def statuses(summary: str) -> dict[str, str]:
    """{'busybox': 'up to date', ...} from the summary `inv build` prints last."""
    rows = summary.split("build summary:")[-1].splitlines()[1:]
    matches = (re.match(r"\s+(\S+)\s+(built|up to date|failed|skipped)\s", r) for r in rows)
    return {m[1]: m[2] for m in matches if m}


def inv(root: Path, *args: str, env: dict | None = None, **options) -> subprocess.CompletedProcess:
    """The real `inv` program in ``root``, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=root, capture_output=True,
                          text=True, env=env, **options)


@pytest.fixture(scope="session")
def docker_client():
    # Tests that need an engine say so with the integration marker.
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as e:  # noqa: BLE001 - any failure here means no engine
        pytest.fail(f"no Docker engine answers ({e}); integration tests need one: start dockerd", pytrace=False)
    yield client
    client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(prefix: str = "dytest") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Project:
    """A copy of the example project whose names, tags and port are unique to one test."""

    root: Path
    name: str
    port: int
    tags: dict[str, str] = field(default_factory=dict)

    def inv(self, *args: str, check: bool = True, timeout: float = 300, input: str | None = None,
            env: dict | None = None) -> subprocess.CompletedProcess:
        """Run the real `inv` program in the project, as a user would."""
        result = inv(self.root, *args, timeout=timeout, input=input, env=env)
        if check and result.returncode != 0:
            raise AssertionError(f"inv {' '.join(args)} exited {result.returncode}\n"
                                 f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        return result

    def container(self, key: str) -> str:
        return f"{self.name}-{key}"

    @property
    def config(self) -> Path:
        return self.root / "containers.toml"


def make_project(root: Path, name: str | None = None, port: int | None = None) -> Project:
    """Copy images/ and write a containers.toml like the example's, with unique names."""
    name = name or unique()
    port = port or free_port()
    shutil.copytree(REPO / "images", root / "images")
    shutil.copy(REPO / "tasks.py", root / "tasks.py")
    tags = {"busybox": f"{name}/busybox:latest", "my-app": f"{name}/my-app:latest",
            "httpd": f"{name}/httpd:latest", "api": f"{name}/api:latest"}
    # The Dockerfiles name their parents by the example's tags; point them at ours.
    for directory, old, new in (("my-app", "busybox", tags["busybox"]), ("busybox-httpd", "my-app", tags["my-app"]),
                                ("api", "busybox", tags["busybox"])):
        dockerfile = root / "images" / directory / "Dockerfile"
        text = re.sub(rf"^FROM {old}\b", f"FROM {new}", dockerfile.read_text(), flags=re.MULTILINE)
        dockerfile.write_text(text)
    (root / "containers.toml").write_text(ISOLATED_TOML.format(name=name, port=port))
    return Project(root=root, name=name, port=port, tags=tags)


def remove_project_objects(client, name: str) -> None:
    """Force-remove every container, network, volume and image the project made: by label, then
    by tag prefix.

    Low-level calls only: listing through the models inspects each object again, which
    races with anything else removing objects on the same engine.
    """
    import docker

    api = client.api
    for label in ("dockyard.owner", "dockyard.project"):  # ours, and any made from our images
        for container in api.containers(all=True, filters={"label": f"{label}={name}"}):
            try:
                api.remove_container(container["Id"], force=True)
            except docker.errors.APIError as e:
                if e.status_code not in (404, 409):  # gone, or its removal already under way
                    raise
    owned = {"label": f"dockyard.owner={name}"}
    for network in api.networks(filters=owned):
        try:
            api.remove_network(network["Id"])
        except docker.errors.NotFound:
            pass
    for volume in api.volumes(filters=owned).get("Volumes") or []:
        try:
            api.remove_volume(volume["Name"], force=True)
        except docker.errors.NotFound:
            pass
    images = [i["Id"] for i in api.images(all=True, filters={"label": f"dockyard.project={name}"})]
    images += [i["Id"] for i in api.images() if any(t.startswith(f"{name}/") for t in i.get("RepoTags") or [])]
    # Children before parents: retry until nothing more can go.
    for _ in range(4):
        remaining = []
        for image in dict.fromkeys(images):
            try:
                api.remove_image(image, force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError:
                remaining.append(image)
        images = remaining
        if not images:
            break


@pytest.fixture
def project(tmp_path, docker_client):
    made = make_project(tmp_path / "project")
    yield made
    remove_project_objects(docker_client, made.name)
