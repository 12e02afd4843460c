"""Several dockyard processes at once on one project and engine."""

from __future__ import annotations

import fcntl
import io
import os
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from conftest import get
from dockyard import builder, turns
from dockyard.config import normalize_ref
from dockyard.errors import DockyardError

RUNS = 4


@pytest.fixture
def turn(tmp_path, monkeypatch):
    """What a build's turn needs of a session and an image, and the lock file it takes."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    output = builder.Output(io.StringIO())
    session = SimpleNamespace(output=output, interrupted=threading.Event())
    spec = SimpleNamespace(key="httpd", ref="example/httpd:latest")
    lock = tmp_path / "dockyard" / f"build-{turns.lock_name(os.environ['DOCKER_HOST'], normalize_ref(spec.ref))}.lock"
    return session, spec, lock


def hold(lock) -> int:
    """Take the lock as another process would: through another open file."""
    lock.parent.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_a_build_waits_for_the_turn_another_holds(turn):
    session, spec, lock = turn
    other = hold(lock)
    entered = threading.Event()

    def build():
        with builder._turn_to_build(session, spec):
            entered.set()

    waiter = threading.Thread(target=build)
    waiter.start()
    time.sleep(0.5)
    assert not entered.is_set()
    assert "waiting for another build of example/httpd:latest on this engine" in session.output.stream.getvalue()
    os.close(other)
    waiter.join(timeout=5)
    assert entered.is_set()


def test_an_interrupt_ends_the_wait_for_a_turn(turn):
    session, spec, lock = turn
    other = hold(lock)
    try:
        session.interrupted.set()
        with pytest.raises(DockyardError, match="interrupted while waiting to build example/httpd:latest") as e:
            with builder._turn_to_build(session, spec):
                pass
        assert e.value.code == 130
    finally:
        os.close(other)


def test_a_lock_directory_others_can_write_to_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "dockyard").mkdir(mode=0o777)
    (tmp_path / "dockyard").chmod(0o777)
    with pytest.raises(DockyardError, match="is not a private directory of this user"):
        turns.lock_dir()


@pytest.mark.integration
def test_simultaneous_runs_build_each_image_once_and_leave_one_container(project, docker_client):
    runs = [subprocess.Popen([sys.executable, "-m", "invoke", "httpd.run"], cwd=project.root, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(RUNS)]
    results = [(run, *run.communicate(timeout=120)) for run in runs]
    report = "\n\n".join(f"exit {run.returncode}\nstdout:\n{out}\nstderr:\n{err}" for run, out, err in results)
    builds = "\n".join(err for _, _, err in results)

    # The builds took turns: each image was made once, and the other runs found it made.
    made = {"busybox": f"imported {project.tags['busybox']}", "my-app": f"built {project.tags['my-app']}",
            "httpd": f"built {project.tags['httpd']}"}
    for image, line in made.items():
        assert builds.count(line) == 1, report
        assert builds.count(f"{image} is up to date") == RUNS - 1, report
    dangling = docker_client.api.images(filters={"dangling": True, "label": f"dockyard.project={project.name}"})
    assert dangling == [], report

    # The replaces took turns too: each run put its container in the place of the one before,
    # none lost a race (no run put an old container back), and what is left is one container
    # of ours, running and answering.
    assert [run.returncode for run, _, _ in results] == [0] * RUNS, report
    assert "Traceback" not in report and "back" not in builds, report
    ours = docker_client.api.containers(all=True, filters={"label": f"dockyard.owner={project.name}"})
    assert [c["Names"] for c in ours] == [[f"/{project.container('httpd')}"]], report
    assert ours[0]["State"] == "running", report
    assert get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")[0] == 200
