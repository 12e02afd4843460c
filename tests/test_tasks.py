"""Every task of an image namespace, driven through the real `inv` program and engine."""

from __future__ import annotations

import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import REPO, assert_clean_failure, free_port, get, imported_modules

pytestmark = pytest.mark.integration


def test_tutorial_flow_serves_the_cgi_page_and_index(project):
    result = project.inv("httpd.run")
    assert "Container id: " in result.stdout
    assert f"Point your browser to: http://localhost:{project.port}" in result.stdout
    assert "Stop with: inv httpd.stop" in result.stdout
    status, page = get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")
    assert status == 200
    for expected in ("Hello, World!", "You are ", "My uname is Linux", "busybox httpd"):
        assert expected in page, page
    status, index = get(f"http://127.0.0.1:{project.port}/")
    assert status == 200
    assert index == (REPO / "images" / "busybox-httpd" / "index.html").read_text()
    # The run's own build went parents first, found from the FROM lines.
    assert result.stderr.index("imported") < result.stderr.index(f"built {project.tags['my-app']}") \
        < result.stderr.index(f"built {project.tags['httpd']}")


def test_run_publishes_on_loopback_only(project, docker_client):
    project.inv("httpd.run", "--quiet-build")
    container = docker_client.containers.get(project.container("httpd"))
    bindings = container.attrs["HostConfig"]["PortBindings"][f"{project.port}/tcp"]
    assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(project.port)}]


def test_run_is_reentrant_and_replaces_its_own_container(project, docker_client):
    project.inv("httpd.run", "--quiet-build")
    first = docker_client.containers.get(project.container("httpd")).id
    project.inv("httpd.stop")
    second_run = project.inv("httpd.run", "--quiet-build")
    second = docker_client.containers.get(project.container("httpd")).id
    assert first != second
    assert second in second_run.stdout
    assert get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")[0] == 200
    assert len(docker_client.containers.list(all=True, filters={"label": f"dockyard.owner={project.name}"})) == 1


def test_run_refuses_a_container_it_did_not_make(project, docker_client):
    project.inv("my-app.build", "--quiet")
    foreign = docker_client.containers.create(project.tags["my-app"], name=project.container("httpd"))
    try:
        result = project.inv("httpd.run", "--quiet-build", check=False)
        assert_clean_failure(result, f"a container named '{project.container('httpd')}' exists",
                             "something other than dockyard")
        foreign.reload()  # still there, untouched
        assert foreign.status == "created"
        assert_clean_failure(project.inv("httpd.stop", check=False), "something other than dockyard")
    finally:
        foreign.remove(force=True)


def test_run_on_a_taken_port_fails_cleanly_and_leaves_nothing(project, docker_client):
    project.inv("httpd.build", "--quiet")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", project.port))
        blocker.listen()
        result = project.inv("httpd.run", check=False)
    assert_clean_failure(result, f"port 127.0.0.1:{project.port} is already in use", "--port")
    assert docker_client.containers.list(all=True, filters={"name": project.container("httpd")}) == []


def test_a_run_that_cannot_start_puts_the_working_container_back(project, docker_client):
    project.inv("httpd.run", "--quiet-build")
    working = docker_client.containers.get(project.container("httpd")).id
    other = free_port()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", other))
        blocker.listen()
        result = project.inv("httpd.run", "--quiet-build", "--port", str(other), check=False)
    assert_clean_failure(result, f"port 127.0.0.1:{other} is already in use")
    again = docker_client.containers.get(project.container("httpd"))
    assert (again.id, again.status) == (working, "running")
    assert get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")[0] == 200
    names = [c.name for c in docker_client.containers.list(all=True, filters={"label": f"dockyard.owner={project.name}"})]
    assert names == [project.container("httpd")]


def test_run_port_and_env_overrides(project):
    other = free_port()
    result = project.inv("httpd.run", "--quiet-build", "--port", str(other), "--env", "GREETING=hi there")
    assert f"http://localhost:{other}" in result.stdout
    assert get(f"http://127.0.0.1:{other}/cgi-bin/hello-world")[0] == 200
    assert project.inv("httpd.exec", 'echo "$GREETING"').stdout == "hi there\n"
    assert_clean_failure(project.inv("httpd.run", "--port", "http", check=False), "--port 'http'")
    assert_clean_failure(project.inv("httpd.run", "--env", "NOEQUALS", check=False), "KEY=VALUE")


def test_run_times_out_with_the_last_log_lines(project):
    config = project.config.read_text().replace("/cgi-bin/hello-world\", timeout = 30", "/missing\", timeout = 2")
    project.config.write_text(config)
    result = project.inv("httpd.run", "--quiet-build", check=False)
    assert_clean_failure(result, "did not answer on", "within 2s", "(last answer: HTTP 404)", "last log lines")


def test_run_reports_a_container_that_exits(project):
    config = project.config.read_text().replace('[images.httpd.run]', '[images.httpd.run]\ncommand = "sh -c \'echo broken >&2; exit 3\'"')
    project.config.write_text(config)
    result = project.inv("httpd.run", "--quiet-build", check=False)
    assert_clean_failure(result, "exited (code 3)", "broken")


def test_one_shot_image_runs_in_the_foreground_like_docker_run(project):
    result = project.inv("my-app.run", "--quiet-build")
    assert result.stdout.strip() == "Hello, World!"


def test_stop_start_restart_and_status(project, docker_client):
    project.inv("httpd.run", "--quiet-build")
    name = project.container("httpd")
    status = project.inv("httpd.status").stdout
    assert "running" in status and f"127.0.0.1:{project.port}->{project.port}/tcp" in status
    assert "up to date" in status
    assert project.inv("httpd.stop").stdout.strip() == f"stopped {name}"
    assert docker_client.containers.get(name).status == "exited"
    assert project.inv("httpd.stop").stdout.strip() == f"{name} is not running"
    assert "exited" in project.inv("httpd.status").stdout
    project.inv("httpd.start")
    assert docker_client.containers.get(name).status == "running"
    started = docker_client.containers.get(name).attrs["State"]["StartedAt"]
    project.inv("httpd.restart")
    assert docker_client.containers.get(name).attrs["State"]["StartedAt"] != started
    assert get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")[0] == 200
    rows = __import__("json").loads(project.inv("status", "--json").stdout)
    assert [row["image"] for row in rows] == ["busybox", "my-app", "httpd", "api"]
    assert rows[2]["state"] == "running" and rows[0]["state"] == "absent"


def test_start_attach_replays_a_one_shot_container(project):
    project.inv("my-app.run", "--quiet-build")
    result = project.inv("my-app.start", "--attach")
    assert result.stdout.strip() == "Hello, World!"


def test_logs_tail_and_follow(project):
    project.inv("my-app.run", "--quiet-build")
    project.inv("my-app.start", "--attach")
    assert project.inv("my-app.logs").stdout == "Hello, World!\nHello, World!\n"
    assert project.inv("my-app.logs", "--tail", "1").stdout == "Hello, World!\n"
    project.inv("httpd.run", "--quiet-build")
    with subprocess.Popen([sys.executable, "-m", "invoke", "httpd.logs", "--follow"], cwd=project.root,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as follower:
        try:
            time.sleep(1.5)
            project.inv("httpd.exec", "echo follow-marker > /proc/1/fd/1")
            deadline = time.monotonic() + 10
            seen = ""
            while "follow-marker" not in seen and time.monotonic() < deadline:
                ready, _, _ = select.select([follower.stdout], [], [], 0.5)
                if ready:
                    seen += follower.stdout.readline()
            assert "follow-marker" in seen
            follower.send_signal(signal.SIGINT)
            _, errors = follower.communicate(timeout=10)
            assert follower.returncode == 0, errors
            assert "Traceback" not in errors
        finally:
            follower.kill()


def test_exec_runs_in_the_running_container(project):
    project.inv("httpd.run", "--quiet-build")
    assert project.inv("httpd.exec", "id -un").stdout == "root\n"
    assert project.inv("httpd.exec", "--user", "www-data", "id -un").stdout == "www-data\n"
    # Least privilege: the server's user can read the site but not write to it.
    denied = project.inv("httpd.exec", "--user", "www-data", "touch /www/x", check=False)
    assert_clean_failure(denied, "exited with code 1")
    assert_clean_failure(project.inv("my-app.exec", "true", check=False), "my-app")


def test_exec_logs_attach_restart_and_rm_on_the_local_engine_load_no_docker_py(project):
    """The tasks of a running container speak to the local socket with the standard library."""
    project.inv("httpd.run", "--quiet-build")
    for argv in (["httpd.exec", "echo out; echo err >&2"], ["httpd.logs", "--tail", "5"], ["httpd.restart"],
                 ["my-app.run"], ["my-app.start", "--attach"], ["httpd.rm", "--force"]):
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "invoke", *argv], cwd=project.root,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert not {"docker", "requests", "urllib3"} & imported_modules(done), argv
        if argv[0] == "httpd.exec":
            assert done.stdout == "out\n" and "\nerr\n" in done.stderr
        if argv[0].startswith("my-app"):
            assert done.stdout.endswith("Hello, World!\n")


def test_shell_is_an_interactive_tty_in_a_fresh_container(project, docker_client):
    project.inv("httpd.build", "--quiet")
    pid, fd = pty.fork()
    if pid == 0:  # the child: `inv httpd.shell` on a real terminal
        os.chdir(project.root)
        os.execv(sys.executable, [sys.executable, "-m", "invoke", "httpd.shell"])
    output = b""

    def read_until(marker: bytes, seconds: float) -> bytes:
        nonlocal output
        deadline = time.monotonic() + seconds
        while marker not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                output += data
        return output

    try:
        read_until(b"# ", 60)  # the container's root prompt
        os.write(fd, b"tty; echo $((6*7)); exit\n")
        read_until(b"\x00never", 30)
    finally:
        try:
            os.kill(pid, signal.SIGKILL) if b"42" not in output else None
        except ProcessLookupError:
            pass
        _, status = os.waitpid(pid, 0)
    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "/dev/pts/" in text and "42" in text, text
    # The shell's container was thrown away; nothing of it is left.
    left = docker_client.containers.list(all=True, filters={"label": f"dockyard.owner={project.name}"})
    assert left == []


def test_config_task_prints_resolved_configuration(project):
    result = project.inv("config")
    assert "build order: busybox -> my-app -> httpd" in result.stdout
    assert f'run.ports = ["127.0.0.1:{project.port}->{project.port}/tcp"]' in result.stdout
    resolved = __import__("json").loads(project.inv("config", "--json").stdout)
    assert resolved["images"]["httpd"]["parents"] == ["my-app"]


def test_bad_config_is_one_line_for_any_task(project):
    project.config.write_text(project.config.read_text().replace("ports =", "portz ="))
    for argv in (["--list"], ["httpd.run"], ["config"]):
        result = project.inv(*argv, check=False)
        assert_clean_failure(result, "containers.toml: images.httpd.run.portz: unknown key (did you mean 'ports'?)")
        assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_engine_is_one_clear_line(project):
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    for argv in (["httpd.build"], ["httpd.status"], ["status"]):
        result = project.inv(*argv, check=False, env=env)
        assert_clean_failure(result, "cannot reach the Docker engine at unix:///nonexistent/docker.sock",
                             "DOCKER_HOST")
        assert len(result.stderr.strip().splitlines()) == 1



def test_restart_waits_on_the_port_the_container_publishes(project):
    other = free_port()
    project.inv("httpd.run", "--quiet-build", "--port", str(other))
    assert project.inv("httpd.restart").stdout.strip() == f"restarted {project.container('httpd')}"
    assert get(f"http://127.0.0.1:{other}/cgi-bin/hello-world")[0] == 200
    assert_clean_failure(project.inv("httpd.stop", "--timeout", "x", check=False), "--timeout 'x'")


def test_shell_and_exec_without_a_terminal_keep_stdout_and_stderr_apart(project):
    result = project.inv("httpd.shell", input="echo out; echo err >&2\n")
    assert result.stdout == "out\n"
    assert result.stderr.endswith("err\n")
    project.inv("httpd.run", "--quiet-build")
    result = project.inv("httpd.exec", "echo out; echo err >&2")
    assert (result.stdout, result.stderr) == ("out\n", "err\n")
    assert_clean_failure(project.inv("httpd.shell", "--command", "no-such-shell", input="", check=False),
                         "no-such-shell")


def test_ctrl_c_during_a_build_stops_at_once_and_tags_nothing(project, docker_client):
    project.inv("build", "--quiet")
    old = docker_client.images.get(project.tags["httpd"]).id
    dockerfile = project.root / "images" / "busybox-httpd" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN sleep 30\n")
    with subprocess.Popen([sys.executable, "-m", "invoke", "httpd.build"], cwd=project.root, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as build:
        seen = ""
        while "RUN sleep 30" not in seen:
            line = build.stdout.readline()
            assert line, "the build ended before it reached the slow step"
            seen += line
        time.sleep(1)
        started = time.monotonic()
        build.send_signal(signal.SIGINT)
        _, errors = build.communicate(timeout=20)
    assert time.monotonic() - started < 10
    assert build.returncode == 130
    assert "interrupted: the build of httpd was abandoned" in errors and "Traceback" not in errors
    time.sleep(2)  # the engine cancels the build when its client goes away
    assert docker_client.images.get(project.tags["httpd"]).id == old


def test_ctrl_c_in_start_attach_stops_the_container(project, docker_client):
    project.inv("httpd.run", "--quiet-build")
    project.inv("httpd.stop")
    with subprocess.Popen([sys.executable, "-m", "invoke", "httpd.start", "--attach"], cwd=project.root,
                          text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as attached:
        deadline = time.monotonic() + 30
        while docker_client.containers.get(project.container("httpd")).status != "running":
            assert time.monotonic() < deadline, "the container never started"
            time.sleep(0.2)
        attached.send_signal(signal.SIGINT)
        _, errors = attached.communicate(timeout=30)
    assert "stopping the container" in errors and "Traceback" not in errors
    assert attached.returncode != 0
    assert docker_client.containers.get(project.container("httpd")).status == "exited"


def test_ctrl_c_in_an_attached_run_reading_a_pipe_stops_the_new_container_and_keeps_it(project, docker_client):
    project.inv("httpd.run", "--quiet-build")
    old = docker_client.containers.get(project.container("httpd")).id
    with subprocess.Popen([sys.executable, "-m", "invoke", "httpd.run", "--attach"], cwd=project.root, text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as attached:
        deadline = time.monotonic() + 30
        while [(c.id != old, c.status) for c in docker_client.containers.list(
                all=True, filters={"name": f"^{project.container('httpd')}$"})] != [(True, "running")]:
            assert time.monotonic() < deadline, "the new container never started"
            time.sleep(0.2)
        time.sleep(0.5)  # its output is being followed
        attached.send_signal(signal.SIGINT)
        _, errors = attached.communicate(timeout=30)
    assert "stopping the container" in errors and "Traceback" not in errors
    assert attached.returncode == 143  # the server's, ended by the stop's SIGTERM
    now = docker_client.containers.get(project.container("httpd"))
    assert (now.id != old, now.status) == (True, "exited")
    assert not docker_client.containers.list(all=True, filters={"id": old})


def test_ctrl_c_in_a_shell_reading_a_pipe_ends_it_at_once_and_leaves_no_container(project, docker_client):
    project.inv("build", "--quiet")
    ours = {"label": f"dockyard.owner={project.name}"}  # the shell's container carries it too
    before = {c["Id"] for c in docker_client.api.containers(all=True, filters=ours)}
    with subprocess.Popen([sys.executable, "-m", "invoke", "busybox.shell"], cwd=project.root, text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as shell:
        shell.stdin.write("echo ready\n")
        shell.stdin.flush()
        assert shell.stdout.readline() == "ready\n"
        started = time.monotonic()
        shell.send_signal(signal.SIGINT)
        _, errors = shell.communicate(timeout=30)
    assert time.monotonic() - started < 5  # not a 10-second stop of a shell that ignores SIGTERM
    assert shell.returncode == 130 and "interrupted" in errors and "Traceback" not in errors
    assert {c["Id"] for c in docker_client.api.containers(all=True, filters=ours)} - before == set()


def test_ctrl_c_while_run_waits_says_what_is_left(project, docker_client):
    config = project.config.read_text().replace("/cgi-bin/hello-world\", timeout = 30", "/missing\", timeout = 60")
    project.config.write_text(config)
    project.inv("build", "--quiet")
    with subprocess.Popen([sys.executable, "-m", "invoke", "httpd.run"], cwd=project.root,
                          text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as run:
        deadline = time.monotonic() + 30
        while not docker_client.containers.list(filters={"name": project.container("httpd")}):
            assert time.monotonic() < deadline, "the container never started"
            time.sleep(0.2)
        time.sleep(0.5)
        run.send_signal(signal.SIGINT)
        _, errors = run.communicate(timeout=30)
    assert run.returncode == 130
    assert f"interrupted while waiting for {project.container('httpd')}; it is left running" in errors
    assert "Traceback" not in errors
    assert docker_client.containers.get(project.container("httpd")).status == "running"


def run_in_process(project, capsys, monkeypatch, *argv: str) -> tuple[int, str, str]:
    """`inv ARGV` by Invoke's own program in this process (so a test can hold the engine's
    hand): exit code, stdout, stderr."""
    from invoke import Program

    from dockyard import namespace

    monkeypatch.setattr(sys, "argv", ["inv", *argv])  # where the words after `--` are read
    try:
        Program(namespace=namespace(project.config), version="0").run(["inv", *argv])
        code = 0
    except SystemExit as e:
        code = e.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_one_shot_run_detached_that_finished_already_says_its_exit_code(project, docker_client, monkeypatch,
                                                                         capsys):
    from dockyard import containers

    start_again = containers.start_again

    def start_and_let_it_finish(spec, container_id):  # as a quick one-shot does before run looks
        start_again(spec, container_id)
        docker_client.api.wait(container_id, timeout=30)

    project.inv("build", "--quiet")
    monkeypatch.setattr(containers, "start_again", start_and_let_it_finish)
    code, out, err = run_in_process(project, capsys, monkeypatch, "my-app.run", "-n", "--detach")
    name = project.container("my-app")
    assert (code, err) == (0, "")
    assert f"{name} exited (code 0)" in out and "Stop with" not in out
    assert docker_client.api.inspect_container(name)["State"]["ExitCode"] == 0
    code, out, err = run_in_process(project, capsys, monkeypatch, "my-app.run", "-n", "--detach", "--json")
    assert code == 0 and __import__("json").loads(out)["exit_code"] == 0
    # A failure is still one: its code, and its last words.
    code, _, err = run_in_process(project, capsys, monkeypatch, "my-app.run", "-n", "--detach", "--",
                                  "sh", "-c", "echo it-went-wrong; exit 3")
    assert code == 3 and f"{name} exited (code 3); last log lines:" in err and "it-went-wrong" in err
    assert "Traceback" not in err
    # One still running when run looks is started, as `docker run -d` leaves it.
    monkeypatch.setattr(containers, "start_again", start_again)
    running = project.inv("my-app.run", "-n", "--detach", "--", "sleep", "30").stdout
    assert f"Stop with: inv my-app.stop" in running and "exited" not in running
    assert docker_client.api.inspect_container(name)["State"]["Running"]


@pytest.mark.integration
def test_the_readiness_check_goes_straight_to_the_container_whatever_proxy_the_environment_names(project):
    # A proxy set for the user's downloads must not carry the check of a port on this machine:
    # through one that is not there, the page never answered and the run failed.
    environment = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy")}
    environment.update(http_proxy="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    result = project.inv("httpd.run", "--quiet-build", "--ready-timeout", "10", env=environment)
    assert f"Point your browser to: http://localhost:{project.port}" in result.stdout
