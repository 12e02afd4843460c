"""Composing dockyard as users do: several tasks on one line, a user's tasks.py calling ours
(pre/post, a task body with its own Context, a task added to an image's namespace), the
Python API, settings from Invoke's configuration layers, pipes and `--`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import assert_clean_failure, get, inv_into_closed_pipe, statuses
from doc_blocks import block

pytestmark = pytest.mark.integration

# The manual's own examples (docs/python-api.md), run as written.
USER_TASKS = block("users-tasks.py").text


def test_tasks_of_two_images_on_one_line_all_run(project, docker_client):
    project.inv("httpd.run", "--quiet-build")
    project.inv("my-app.run", "--quiet-build")  # a one-shot: it has exited
    both = project.inv("httpd.stop", "my-app.stop")
    lines = both.stdout.strip().splitlines()
    assert lines == [f"stopped {project.container('httpd')}", f"{project.container('my-app')} is not running"]
    assert docker_client.containers.get(project.container("httpd")).status == "exited"
    built = project.inv("busybox.build", "my-app.build", "httpd.build")
    for key in ("busybox", "my-app", "httpd"):
        assert f"{key} is up to date" in built.stdout
    rows = project.inv("httpd.status", "--json", "my-app.status", "--json").stdout
    decoder, text, found = json.JSONDecoder(), rows.strip(), []
    while text:
        row, end = decoder.raw_decode(text)
        found.append(row["image"])
        text = text[end:].strip()
    assert found == ["httpd", "my-app"]


def test_a_users_tasks_py_chains_dockyard_tasks(project, docker_client):
    (project.root / "tasks.py").write_text(USER_TASKS)
    release = project.inv("release")
    assert "my-app is up to date" in release.stdout or f"built {project.tags['my-app']}" in release.stdout
    assert release.stdout.index("release body ran") < release.stdout.index("IMAGE  ")
    assert "absent" in release.stdout.split("release body ran")[1]
    cycle = project.inv("cycle")
    assert "exec-in-httpd" in cycle.stdout and "Hello, World!" in cycle.stdout
    assert f"stopped {project.container('httpd')}" in cycle.stdout
    assert f"removed {project.container('my-app')}" in cycle.stdout
    assert (project.root / "httpd-fs.tar").stat().st_size > 0
    assert docker_client.containers.get(project.container("httpd")).status == "exited"
    project.inv("httpd.start")
    smoke = project.inv("httpd.smoke")
    assert smoke.stdout.strip() == "smoke-ok"
    listing = project.inv("--list").stdout
    assert "httpd.smoke" in listing and "release" in listing


def test_the_readmes_python_api_example_runs_as_written(project):
    script = block("python-script").text
    result = subprocess.run([sys.executable, "-c", script], cwd=project.root, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (project.root / "httpd.tar.gz").stat().st_size > 0
    assert "'image': 'httpd'" in result.stdout


def test_the_python_api_builds_runs_and_stops(project, capsys):
    from dockyard import DockyardError, Project

    api = Project(project.config)
    assert api.images == ["busybox", "my-app", "httpd", "api"]
    outcomes = api.build(jobs=2, quiet=True)
    assert [o["status"] for o in outcomes] == ["built"] * 4
    assert [o["status"] for o in api.build()] == ["up to date"] * 4
    started = api.run("httpd", quiet_build=True)
    assert started["url"] == f"http://localhost:{project.port}" and started["name"] == project.container("httpd")
    assert started["ports"] == [{"host_ip": "127.0.0.1", "host_port": project.port,
                                 "container_port": project.port, "protocol": "tcp"}]
    assert get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")[0] == 200
    ran = api.exec("httpd", "id -un; exit 3", capture=True)
    assert (ran["exit_code"], ran["stdout"]) == (3, "root\n")
    row = api.status(["httpd"])[0]
    assert row["state"] == "running" and row["exit_code"] is None and row["uptime_seconds"] >= 0
    assert row["ports"][0]["host_port"] == project.port
    assert api.stop("httpd")["stopped"] is True
    assert api.status(["httpd"])[0]["state"] == "exited"
    with pytest.raises(DockyardError, match="no image named 'nosuch'"):
        api.run("nosuch")
    json.dumps([outcomes, started, ran, row])  # plain data all through


def test_json_from_every_task_that_prints_a_result(project):
    built = json.loads(project.inv("httpd.build", "--json").stdout)
    assert [o["image"] for o in built] == ["busybox", "my-app", "httpd"]
    assert {o["status"] for o in built} == {"built"}
    every = json.loads(project.inv("build", "--json").stdout)
    assert {o["image"]: o["status"] for o in every if o["image"] != "api"} == dict.fromkeys(
        ["busybox", "my-app", "httpd"], "up to date")
    ran = json.loads(project.inv("httpd.run", "--json").stdout)
    assert ran["url"] == f"http://localhost:{project.port}" and len(ran["id"]) == 64
    executed = json.loads(project.inv("httpd.exec", "echo out; echo err >&2", "--json").stdout)
    assert executed == {"image": "httpd", "name": project.container("httpd"),
                        "command": ["sh", "-c", "echo out; echo err >&2"], "exit_code": 0,
                        "stdout": "out\n", "stderr": "err\n"}
    status = json.loads(project.inv("httpd.status", "--json").stdout)
    assert status["ports"] == [{"host_ip": "127.0.0.1", "host_port": project.port,
                                "container_port": project.port, "protocol": "tcp"}]
    assert status["exit_code"] is None and isinstance(status["restart_count"], int)
    assert status["started_at"].endswith("+00:00")
    stopped = json.loads(project.inv("httpd.stop", "--json").stdout)
    assert stopped["stopped"] is True
    stopped_row = json.loads(project.inv("httpd.status", "--json").stdout)
    assert stopped_row["state"] == "exited" and isinstance(stopped_row["exit_code"], int)
    removed = json.loads(project.inv("httpd.rm", "--json").stdout)
    assert removed == {"image": "httpd", "name": project.container("httpd"), "removed": True}


def test_one_shot_run_passes_the_words_after_the_double_dash(project):
    result = project.inv("my-app.run", "--quiet-build", "--", "sh", "-c", 'printf "[%s]" "$@"', "x", "a", "b c")
    assert result.stdout == "[a][b c]"
    project.inv("httpd.run", "--quiet-build")
    passed = project.inv("httpd.exec", 'printf "<%s>" "$@"', "--", "one", "two words")
    assert passed.stdout == "<one><two words>"
    shell = project.inv("httpd.shell", "--no-build", "--", "echo", "from", "shell", input="")
    assert shell.stdout == "from shell\n"


def test_shell_uses_the_run_settings(project):
    config = project.config.read_text().replace("[images.httpd.run]",
                                                '[images.httpd.run]\nuser = "www-data"\nworkdir = "/www"')
    project.config.write_text(config)
    result = project.inv("httpd.shell", input="id -un; pwd\n")
    assert result.stdout == "www-data\n/www\n"


def test_settings_from_invoke_configuration_layers(project):
    (project.root / "invoke.yaml").write_text("dockyard:\n  quiet: true\n  jobs: 2\n")
    quiet = project.inv("build")
    assert "Step " not in quiet.stdout + quiet.stderr and set(statuses(quiet.stdout).values()) == {"built"}
    env = {**os.environ, "INVOKE_DOCKYARD_READY_TIMEOUT": "2"}
    project.config.write_text(project.config.read_text().replace("/cgi-bin/hello-world\", timeout = 30",
                                                                 "/missing\", timeout = 30"))
    slow = project.inv("httpd.run", env=env, check=False)
    assert_clean_failure(slow, "within 2s")
    flag_wins = project.inv("httpd.run", "--ready-timeout", "1", env=env, check=False)
    assert_clean_failure(flag_wins, "within 1s")


def test_pull_does_not_pull_the_projects_own_parents(project):
    project.inv("build", "--quiet")
    result = project.inv("httpd.build", "--pull", "--quiet")
    assert "pulling" not in result.stdout + result.stderr
    assert f"built {project.tags['httpd']}" in result.stdout


def test_build_output_into_a_closed_pipe_ends_quietly(project):
    result = inv_into_closed_pipe(project.root, "build")
    assert (result.returncode, result.stderr) == (141, "")


def test_logs_into_a_closed_pipe_ends_quietly(project):
    project.inv("my-app.run", "--quiet-build")
    result = inv_into_closed_pipe(project.root, "my-app.logs")
    assert (result.returncode, result.stderr) == (141, "")


def test_ctrl_c_in_library_use_cancels_the_engine_build(project, docker_client):
    project.inv("build", "--quiet")
    dockerfile = project.root / "images" / "busybox-httpd" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN sleep 60\n")
    script = textwrap.dedent(f"""
        import sys, time
        from dockyard import DockyardError, Project
        try:
            Project({str(project.config)!r}).build(["httpd"], output=sys.stdout)
        except DockyardError as e:
            print("caught", e.code, flush=True)
        time.sleep(60)  # a release script that goes on after the interrupt
    """)
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as release:
        try:
            seen = ""
            while "RUN sleep 60" not in seen:
                line = release.stdout.readline()
                assert line, "the build ended before it reached the slow step"
                seen += line
            time.sleep(1)
            release.send_signal(signal.SIGINT)
            line = ""
            for line in iter(release.stdout.readline, ""):
                if line.startswith("caught"):
                    break
            assert line.strip() == "caught 130"
            deadline = time.monotonic() + 15
            while running_build_steps(docker_client, project.name):
                assert time.monotonic() < deadline, "the engine kept building after the interrupt"
                time.sleep(0.5)
            assert release.poll() is None  # cancelled while the script lives on
        finally:
            release.kill()


def running_build_steps(client, project_name: str) -> list:
    """Containers running a build step of the project's images (they inherit its labels)."""
    return [c for c in client.api.containers(filters={"label": f"dockyard.project={project_name}"})
            if "sleep 60" in c.get("Command", "")]
