"""Faults: an engine killed or hanging mid-task, and Ctrl-C in the archive tasks.

The engine killed here is the tests' own (``second_engine`` in conftest.py), never the
shared one. Each test drives the real `inv` program, as a user would.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import assert_clean_failure, free_port, make_project
from dockyard import engine as engine_layer
from dockyard.engine.address import request_timeout
from dockyard.engine.errors import engine_errors
from dockyard.cleanup import LIVE_BUILD_GRACE, is_build_leftover
from dockyard.errors import DockyardError

integration = pytest.mark.integration


def start_inv(root: Path, *args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, timeout: float = 30) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def wait_until(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def one_line(result: subprocess.CompletedProcess) -> str:
    """The failure message: one line of ours on stderr (after any build output), and no
    traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("dockyard: ")]
    assert len(lines) == 1 and result.stderr.rstrip().endswith(lines[0]), result.stderr
    return lines[0]


def running_with(api, command_part: str) -> bool:
    return any(command_part in c["Command"] for c in api.containers())


def runs(api, container: str, command_part: str) -> bool:
    try:
        return any(command_part in row[-1] for row in api.top(container)["Processes"])
    except Exception:  # noqa: BLE001 - not started yet
        return False


@pytest.fixture(scope="module")
def project(tmp_path_factory, second_engine):
    """The example project, built once on the tests' own engine."""
    second_engine.start()
    made = make_project(tmp_path_factory.mktemp("faults") / "project")
    made.inv("build", env=second_engine.env())
    return made


@pytest.fixture(scope="module")
def big_container(project, second_engine):
    """The busybox container, running, with 300 MB of random data in its root filesystem
    (writable here): long to export."""
    second_engine.start()
    project.config.write_text(project.config.read_text().replace(
        'run = { name = "' + project.container("busybox") + '" }',
        'run = { name = "' + project.container("busybox") + '", read_only = false }'))
    project.inv("busybox.run", "--detach", "--", "sh", "-c",
                "head -c 300000000 /dev/urandom > /big && exec sleep 600", env=second_engine.env())
    name = project.container("busybox")
    with second_engine.client() as api:
        wait_until(lambda: runs(api, name, "sleep 600"), "the big file", 120)
    return name


def part_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.endswith(".part")]


# -- what the engine layer says, and what clean takes (no engine needed) -------------------

NOW = 1_800_000_000.0
BUILDER_RUN = {
    "Id": "c1", "Image": "sha256:" + "a" * 64, "Created": "2027-01-15T08:00:00Z",
    "Config": {"Image": "sha256:" + "a" * 64, "Cmd": ["/bin/sh", "-c", "make"],
               "Healthcheck": {"Test": ["NONE"]}, "Labels": {"dockyard.project": "p"}},
    "HostConfig": {"LogConfig": {"Type": "none"}},
    "State": {"Status": "exited", "ExitCode": 137, "FinishedAt": "2027-01-15T08:00:05.5Z"},
}


def _variant(**changes) -> dict:
    container = json.loads(json.dumps(BUILDER_RUN))
    for path, value in changes.items():
        *parents, key = path.split("__")
        place = container
        for parent in parents:
            place = place[parent]
        place[key] = value
    return container


def test_a_killed_build_step_is_a_leftover():
    assert is_build_leftover(BUILDER_RUN, NOW)


@pytest.mark.parametrize("why, container", [
    ("run by hand: the daemon's log driver", _variant(HostConfig__LogConfig__Type="json-file")),
    ("run by hand by tag, with the builder's log driver and no healthcheck",
     _variant(Config__Image="p/busybox:latest")),
    ("run by hand with a healthcheck", _variant(Config__Healthcheck=None)),
    ("ours: it has an owner", _variant(Config__Labels={"dockyard.owner": "p"})),
    ("exited 0 a moment ago: a running build may be committing it",
     _variant(State__ExitCode=0, State__FinishedAt="2027-01-15T07:59:59Z")),
])
def test_what_is_not_a_build_leftover(why, container):
    assert not is_build_leftover(container, NOW), why


def test_an_old_metadata_step_is_a_leftover():
    step = _variant(Config__Healthcheck=None, Config__Cmd=["/bin/sh", "-c", "#(nop) ", "LABEL a=b"],
                    State__Status="created", State__ExitCode=0)
    created = NOW  # its Created time
    assert is_build_leftover(step, created + LIVE_BUILD_GRACE + 1)
    assert not is_build_leftover(step, created + 5)


def test_engine_timeout_comes_from_the_environment(monkeypatch):
    assert request_timeout() == 60
    monkeypatch.setenv("DOCKYARD_ENGINE_TIMEOUT", "2.5")
    assert request_timeout() == 2.5
    for bad in ("0", "-1", "soon", "²"):
        monkeypatch.setenv("DOCKYARD_ENGINE_TIMEOUT", bad)
        with pytest.raises(DockyardError, match="DOCKYARD_ENGINE_TIMEOUT"):
            request_timeout()


def test_an_engine_lost_or_stuck_mid_task_is_one_line_naming_it():
    import requests
    import urllib3

    with pytest.raises(DockyardError) as lost:
        with engine_errors("build x"):
            raise urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead(5 bytes read)")
    assert str(lost.value) == (f"build x: the Docker engine at {engine_layer.endpoint()} went away "
                               "before finishing its answer; is it still running?")
    with pytest.raises(DockyardError, match=r"^list images: .* did not answer within 60 s"):
        with engine_errors("list images"):
            raise requests.exceptions.ReadTimeout("Read timed out. (read timeout=60)")
    with pytest.raises(DockyardError, match=r"^waiting for web to answer: .* went away \(connection refused\)"):
        with engine_layer.doing("waiting for web to answer"), engine_errors("inspect c"):
            raise requests.exceptions.ConnectionError("[Errno 111] Connection refused")


# -- an engine killed mid-task -------------------------------------------------------------


def host_runs(command: str) -> bool:
    """A process of this command line runs on the host (BuildKit's RUN steps are no containers
    the engine lists, but they are processes)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().replace(b"\0", b" ").strip() == command.encode():
                return True
        except OSError:
            continue
    return False


def kill_engine_during_a_build(project, engine, builder: str) -> None:
    """Start a build of my-app whose RUN step sleeps, kill the engine during that step: one
    line naming the engine and the build."""
    env = engine.env(DOCKYARD_BUILDER=builder)
    dockerfile = project.root / "images/my-app/Dockerfile"
    original = dockerfile.read_text()
    dockerfile.write_text(original + "RUN sleep 117\n")
    build = start_inv(project.root, "my-app.build", env=env)
    with engine.client() as api:
        if builder == "classic":
            wait_until(lambda: running_with(api, "sleep 117"), "the build's RUN step")
        else:
            wait_until(lambda: host_runs("sleep 117"), "the build's RUN step")
    engine.kill()
    result = finish(build)
    dockerfile.write_text(original)  # my-app is up to date again for the other tests
    assert_clean_failure(result, engine.host)
    line = one_line(result)
    assert "build" in line and project.tags["my-app"] in line, line


@integration
def test_engine_killed_during_a_buildkit_build_says_so_and_leaves_no_container(project, engine):
    kill_engine_during_a_build(project, engine, "buildkit")
    engine.start()
    with engine.client() as api:
        assert [c for c in api.containers(all=True) if "sleep 117" in c["Command"]] == []
    assert "sleep 117" not in project.inv("my-app.build", env=engine.env(DOCKYARD_BUILDER="buildkit")).stdout


@integration
def test_engine_killed_during_a_classic_build_says_so_and_clean_removes_the_leftover(project, engine):
    kill_engine_during_a_build(project, engine, "classic")
    env = engine.env()
    engine.start()
    with engine.client() as api:
        base = project.tags["busybox"]
        leftover = [c for c in api.containers(all=True) if "sleep 117" in c["Command"]]
        assert len(leftover) == 1 and leftover[0]["State"] == "exited", leftover
        # Someone's own containers of our image: by hand, and by hand with the builder's
        # log driver and healthcheck; neither is a build leftover.
        by_hand = api.create_container(base, "true")["Id"]
        lookalike = api.create_container(
            base, "true", healthcheck={"test": ["NONE"]},
            host_config=api.create_host_config(log_config={"type": "none"}))["Id"]
        for container in (by_hand, lookalike):
            api.start(container)
            api.wait(container)
        planned = json.loads(project.inv("clean", "--dry-run", "--json", env=env).stdout)
        assert [c["id"] for c in planned["containers"]] == [leftover[0]["Id"]]
        sized = {c["Id"]: c.get("SizeRw", 0) for c in api.containers(all=True, size=True)}
        assert planned["containers"][0]["size"] == sized[leftover[0]["Id"]]  # asked by its inspect
        project.inv("clean", env=env)
        remaining = {c["Id"] for c in api.containers(all=True)}
        assert leftover[0]["Id"] not in remaining and {by_hand, lookalike} <= remaining


@integration
def test_engine_killed_while_following_logs_is_a_failure(project, engine):
    env = engine.env()
    project.inv("busybox.run", "--detach", "--", "sh", "-c", "echo started; exec sleep 300", env=env)
    follow = start_inv(project.root, "busybox.logs", "--follow", env=env)
    assert follow.stdout.readline() == "started\n"
    engine.kill()
    result = finish(follow)
    assert_clean_failure(result, engine.host, project.container("busybox"))
    assert one_line(result).startswith(f"dockyard: follow the logs of {project.container('busybox')}: ")


@integration
def test_engine_killed_while_run_waits_for_readiness(project, engine):
    env = engine.env()
    # httpd listens on another port than the one published: the readiness check never passes.
    run = start_inv(project.root, "httpd.run", "--env", f"HTTPD_PORT={free_port()}", env=env)
    with engine.client() as api:
        wait_until(lambda: runs(api, project.container("httpd"), "httpd"), "httpd to start")
    engine.kill()
    result = finish(run)
    assert_clean_failure(result, engine.host, project.container("httpd"))
    assert "waiting for" in one_line(result)


@integration
def test_engine_killed_during_export_leaves_no_file(project, big_container, engine, tmp_path):
    export = start_inv(project.root, "busybox.export", "-o", str(tmp_path / "fs.tar.gz"),
                       env=engine.env())
    wait_until(lambda: any(p.stat().st_size > 1 << 20 for p in part_files(tmp_path)),
               "the export to start")
    engine.kill()
    result = finish(export)
    assert_clean_failure(result, engine.host, big_container)
    assert "IncompleteRead" not in result.stderr and "cannot write" not in result.stderr
    assert "went away" in one_line(result)
    assert list(tmp_path.iterdir()) == []


# -- an engine that accepts and never answers ------------------------------------------------


@pytest.fixture
def silent_engine():
    """A unix socket that accepts connections and never says a word."""
    directory = Path(tempfile.mkdtemp(prefix="dy-silent-", dir="/tmp"))  # socket paths are short
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(directory / "docker.sock"))
    server.listen(64)
    server.settimeout(0.1)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            with contextlib.suppress(OSError):
                accepted.append(server.accept()[0])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"unix://{directory / 'docker.sock'}"
    done.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()
    shutil.rmtree(directory)


@pytest.mark.parametrize("task", ["busybox.build", "busybox.logs", "clean"])
@integration
def test_an_engine_that_never_answers_fails_in_bounded_time(tmp_path, silent_engine, task):
    project = make_project(tmp_path / "project")
    env = {**os.environ, "DOCKER_HOST": silent_engine, "DOCKYARD_ENGINE_TIMEOUT": "2"}
    started = time.monotonic()
    result = project.inv(task, check=False, env=env, timeout=60)
    assert time.monotonic() - started < 15
    assert_clean_failure(result, silent_engine, "did not answer within 2 s")
    one_line(result)


# -- Ctrl-C in the archive tasks ------------------------------------------------------------


def interrupted(process: subprocess.Popen, task: str) -> None:
    process.send_signal(signal.SIGINT)
    result = finish(process)
    assert result.returncode == 130, result.stderr
    assert one_line(result) == f"dockyard: interrupted: {task} stopped"


@integration
def test_ctrl_c_during_export_exits_130_and_leaves_no_file(project, big_container, engine, tmp_path):
    export = start_inv(project.root, "busybox.export", "-o", str(tmp_path / "fs.tar"), env=engine.env())
    wait_until(lambda: any(p.stat().st_size > 1 << 20 for p in part_files(tmp_path)),
               "the export to start")
    interrupted(export, "export")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("task", ["import", "load"])
@integration
def test_ctrl_c_during_an_upload_exits_130_and_makes_no_image(project, engine, task):
    """The archive comes on stdin, cut short: Ctrl-C arrives while dockyard sends it."""
    tag = f"{project.name}/interrupted:latest"
    args = ["busybox.import", "-", "--tag", tag] if task == "import" else ["busybox.load", "-"]
    upload = subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=project.root,
                              env=engine.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    upload.stdin.write(_tar_start())
    upload.stdin.flush()
    time.sleep(1.5)  # it has sniffed the archive and is sending it to the engine
    upload.send_signal(signal.SIGINT)
    stdout, stderr = upload.communicate(timeout=30)
    result = subprocess.CompletedProcess(args, upload.returncode, stdout.decode(), stderr.decode())
    assert result.returncode == 130, result.stderr
    assert one_line(result) == f"dockyard: interrupted: {task} stopped"
    with engine.client() as api:
        assert not api.images(name=tag.split(":")[0])


def _tar_start() -> bytes:
    """The first 2 MB of a tar with a bigger member: a valid start of an archive."""
    member = tarfile.TarInfo("big")
    member.size = 50 << 20
    return member.tobuf(format=tarfile.USTAR_FORMAT) + b"x" * (2 << 20)


@integration
def test_load_of_a_filesystem_tar_says_what_it_is(project, engine, tmp_path):
    export = tmp_path / "fs.tar"  # what `export` writes: a root filesystem, no image metadata
    with tarfile.open(export, "w") as tar:
        for name in ("bin", "etc"):
            member = tarfile.TarInfo(name)
            member.type = tarfile.DIRTYPE
            tar.addfile(member)
        passwd = b"root:x:0:0:root:/root:/bin/sh\n"
        member = tarfile.TarInfo("etc/passwd")
        member.size = len(passwd)
        tar.addfile(member, io.BytesIO(passwd))
    result = project.inv("busybox.load", str(export), check=False, env=engine.env())
    assert_clean_failure(result, "not of images", "`import`")
    assert "repositories" not in result.stderr.replace("repositories file", "")
    one_line(result)


@integration
def test_ctrl_c_during_save_exits_130_and_leaves_no_file(project, big_container, engine, tmp_path):
    """Last: it makes the busybox image big (a commit of the big container), so that
    saving it takes long enough to be interrupted."""
    env = engine.env()
    project.inv("busybox.commit", "--tag", project.tags["busybox"], env=env)
    with engine.client() as api:
        assert api.inspect_image(project.tags["busybox"])["Size"] > 200_000_000
    save = start_inv(project.root, "busybox.save", "-o", str(tmp_path / "image.tar.gz"), env=env)
    wait_until(lambda: any(p.stat().st_size > 1 << 20 for p in part_files(tmp_path)),
               "the save to start")
    interrupted(save, "save")
    assert list(tmp_path.iterdir()) == []
