"""A replace under interrupts, on the real engine: `run` and `up` put a new container in the
place of the old one, and whatever moment Ctrl-C (once or twice) or SIGTERM comes, the old or
the new container is left under its name, running, and nothing else; what an interrupted
replace left behind (a killed process, an engine gone) is put in order by the next run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from conftest import get

pytestmark = pytest.mark.integration


def start_inv(project, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=project.root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def containers_of(docker_client, project) -> dict[str, tuple[str, str]]:
    """The project's containers: name -> (id, state)."""
    rows = docker_client.api.containers(all=True, filters={"label": f"dockyard.owner={project.name}"})
    return {row["Names"][0].lstrip("/"): (row["Id"], row["State"]) for row in rows}


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def assert_serving(docker_client, project, services: tuple[str, ...] = ("httpd",), report: str = "") -> None:
    """Each service's container under its own name, running, and nothing else of the project's."""
    held = containers_of(docker_client, project)
    assert sorted(held) == sorted(project.container(key) for key in services), report + f"\n{held}"
    assert {state for _, state in held.values()} == {"running"}, report + f"\n{held}"
    assert get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")[0] == 200


SLOW_STOP = 'cap_add = ["SETUID", "SETGID"]\nafter = ["api"]'


def slow_to_stop(project) -> None:
    """Without an init, busybox httpd ignores the stop's SIGTERM: the engine kills it after 10 s."""
    project.config.write_text(project.config.read_text().replace(SLOW_STOP, SLOW_STOP + "\ninit = false"))


def test_ctrl_c_while_a_slow_server_stops_puts_it_back_running(project, docker_client):
    slow_to_stop(project)
    project.inv("httpd.run", "--quiet-build")
    old = containers_of(docker_client, project)[project.container("httpd")][0]
    with start_inv(project, "httpd.run", "--no-build") as run:
        # The new container is made before the old one is stopped: then the stop has begun.
        wait_for(lambda: len(containers_of(docker_client, project)) == 2, "the new container")
        time.sleep(2)
        run.send_signal(signal.SIGINT)
        _, errors = run.communicate(timeout=60)
    assert run.returncode == 130, errors
    assert "Traceback" not in errors
    assert f"interrupted; putting {project.container('httpd')} back as it was" in errors
    assert f"{project.container('httpd')} is back as it was" in errors
    assert_serving(docker_client, project, report=errors)
    assert containers_of(docker_client, project)[project.container("httpd")][0] == old


def replace_begun(docker_client, project) -> bool:
    """A new container is made under a passing name: the replace is under way."""
    return any("-dockyard-" in name for name in containers_of(docker_client, project))


def assert_interrupted_or_finished(returncode: int, errors: str, number: int = signal.SIGINT) -> None:
    """128 + the signal: the interrupt was taken, and said. 0: the work had finished before
    the signals came. -signal: a signal came while Python was shutting down (after the work
    finished, or after the first signal was taken and said), once it had given the signal
    back its default action, which ends the process."""
    assert returncode in (0, 128 + number, -number), errors
    if returncode == 128 + number:
        assert "interrupted" in errors, errors
    if returncode == 0:
        assert "interrupted" not in errors, errors


@pytest.mark.parametrize("delay", [0, 0.05, 0.15, 0.4])
def test_ctrl_c_twice_at_any_moment_of_a_run_leaves_the_old_or_the_new_container(project, docker_client, delay):
    project.inv("httpd.run", "--quiet-build")
    with start_inv(project, "httpd.run", "--no-build") as run:
        wait_for(lambda: replace_begun(docker_client, project), "the replace to begin")
        time.sleep(delay)
        run.send_signal(signal.SIGINT)
        time.sleep(0.002)
        run.send_signal(signal.SIGINT)
        _, errors = run.communicate(timeout=60)
    assert "Traceback" not in errors and "release unlocked lock" not in errors, errors
    assert_interrupted_or_finished(run.returncode, errors)
    assert_serving(docker_client, project, report=errors)


@pytest.mark.parametrize("delay", [0.05, 0.3])
def test_a_closed_terminal_during_a_run_leaves_the_old_or_the_new_container(project, docker_client, delay):
    """SIGHUP (the terminal closed, the ssh session lost) is an interrupt like Ctrl-C: the
    replace finishes or rolls back; it used to kill the process half-way, the service down."""
    project.inv("httpd.run", "--quiet-build")
    with start_inv(project, "httpd.run", "--no-build") as run:
        wait_for(lambda: replace_begun(docker_client, project), "the replace to begin")
        time.sleep(delay)
        run.send_signal(signal.SIGHUP)
        _, errors = run.communicate(timeout=60)
    assert "Traceback" not in errors, errors
    assert_interrupted_or_finished(run.returncode, errors, signal.SIGHUP)
    assert_serving(docker_client, project, report=errors)


@pytest.mark.parametrize("delay", [0, 0.05, 0.15, 0.4])
def test_ctrl_c_twice_at_any_moment_of_up_leaves_each_service_old_or_new(project, docker_client, delay):
    project.inv("up")
    # A changed setting: up replaces both services.
    project.config.write_text(project.config.read_text().replace(
        'service = true', 'service = true\nenvironment = { CHANGED = "yes" }').replace(
        'environment = { HTTPD_PORT', 'environment = { CHANGED = "yes", HTTPD_PORT'))
    with start_inv(project, "up") as up:
        wait_for(lambda: replace_begun(docker_client, project), "the replace to begin")
        time.sleep(delay)
        up.send_signal(signal.SIGINT)
        time.sleep(0.002)
        up.send_signal(signal.SIGINT)
        _, errors = up.communicate(timeout=60)
    assert "Traceback" not in errors and "release unlocked lock" not in errors, errors
    assert_interrupted_or_finished(up.returncode, errors)
    assert_serving(docker_client, project, ("httpd", "api"), report=errors)


@pytest.mark.parametrize("signals", [(signal.SIGTERM,), (signal.SIGINT, signal.SIGINT)], ids=["SIGTERM", "Ctrl-C twice"])
def test_an_interrupted_attached_run_stops_the_new_container_and_leaves_nothing_else(project, docker_client,
                                                                                      signals):
    project.inv("httpd.run", "--quiet-build")
    old = containers_of(docker_client, project)[project.container("httpd")][0]
    with start_inv(project, "httpd.run", "--no-build", "--attach") as attached:
        wait_for(lambda: containers_of(docker_client, project).get(project.container("httpd"), (old,))[0] != old
                 and containers_of(docker_client, project)[project.container("httpd")][1] == "running",
                 "the new container to run")
        time.sleep(0.5)
        for number in signals:
            attached.send_signal(number)
            time.sleep(0.002)
        _, errors = attached.communicate(timeout=30)
    assert "stopping the container" in errors and "Traceback" not in errors, errors
    assert attached.returncode != 0
    held = containers_of(docker_client, project)
    assert list(held) == [project.container("httpd")], held  # the old one, set aside, is gone
    assert held[project.container("httpd")][0] != old and held[project.container("httpd")][1] == "exited", held


def set_aside_as_an_interrupted_run_leaves_it(docker_client, project, token: str) -> tuple[str, str]:
    """What a run killed between setting the old container aside and starting the new one
    leaves: the old one stopped under `NAME-dockyard-TOKEN-old`, the new one made under
    `NAME-dockyard-TOKEN` and never started. Their ids."""
    api = docker_client.api
    name = project.container("httpd")
    old = api.inspect_container(name)
    api.stop(old["Id"], timeout=10)
    api.rename(old["Id"], f"{name}-dockyard-{token}-old")
    new = api.create_container(project.tags["httpd"], name=f"{name}-dockyard-{token}",
                               labels={"dockyard.owner": project.name, "dockyard.image": "httpd"})
    return old["Id"], new["Id"]


def test_status_shows_what_an_interrupted_run_left_and_the_next_run_puts_it_in_order(project, docker_client):
    project.inv("httpd.run", "--quiet-build")
    name = project.container("httpd")
    old, new = set_aside_as_an_interrupted_run_leaves_it(docker_client, project, "0badc0de")

    shown = project.inv("httpd.status").stdout
    assert f"{name}-dockyard-0badc0de-old (exited): left by an interrupted run of {name}" in shown, shown
    assert f"{name}-dockyard-0badc0de (created): left by an interrupted run of {name}" in shown, shown
    row = json.loads(project.inv("httpd.status", "--json").stdout)
    row = row[0] if isinstance(row, list) else row
    assert sorted(left["name"] for left in row["leftovers"]) == [f"{name}-dockyard-0badc0de",
                                                                 f"{name}-dockyard-0badc0de-old"]

    ran = project.inv("httpd.run", "--no-build")
    assert f"removed {name}-dockyard-0badc0de, which an interrupted run of {name} made and never started" \
        in ran.stderr, ran.stderr
    assert f"put {name} back from {name}-dockyard-0badc0de-old" in ran.stderr, ran.stderr
    assert_serving(docker_client, project, report=ran.stderr)
    assert old not in {i for i, _ in containers_of(docker_client, project).values()}  # replaced, as run does
    assert "left by an interrupted run" not in project.inv("httpd.status").stdout


def test_up_removes_an_old_container_an_interrupted_run_had_already_replaced(project, docker_client):
    project.inv("up")
    name = project.container("httpd")
    image = docker_client.api.inspect_container(name)["Image"]
    # The old one set aside, the new one running under the name: killed before removing the old.
    aside = docker_client.api.create_container(image, name=f"{name}-dockyard-feedf00d-old",
                                               labels={"dockyard.owner": project.name, "dockyard.image": "httpd"})
    running = containers_of(docker_client, project)[name][0]
    done = project.inv("up")
    assert f"removed {name}-dockyard-feedf00d-old, the old {name} an interrupted run had already replaced" \
        in done.stderr, done.stderr
    assert_serving(docker_client, project, ("httpd", "api"), report=done.stderr)
    assert containers_of(docker_client, project)[name][0] == running  # up left the service alone
    assert not docker_client.api.containers(all=True, filters={"id": aside["Id"]})


@pytest.mark.parametrize("step", ["create", "set aside"])
def test_an_interrupt_while_a_request_is_answered_waits_for_the_answer_and_rolls_back_what_was_done(
        project, docker_client, step):
    """The engine does what a request asks even when its client is interrupted meanwhile: the
    interrupt is raised only once the answer is in, so the roll back knows what to undo."""
    project.inv("httpd.run", "--quiet-build")
    old = containers_of(docker_client, project)[project.container("httpd")][0]
    script = f"""
import os, signal, sys
from dockyard import Project, containers
real = {{"create": containers._create, "set aside": containers._rename}}[{step!r}]

def interrupted_while_answered(*args, **kwargs):
    answer = real(*args, **kwargs)
    if {step!r} == "create" or "aside" in args[-1]:
        os.kill(os.getpid(), signal.SIGINT)  # as if Ctrl-C came while the engine answered
    return answer

setattr(containers, {{"create": "_create", "set aside": "_rename"}}[{step!r}], interrupted_while_answered)
try:
    Project("containers.toml").run("httpd", build=False)
except KeyboardInterrupt:
    sys.exit(130)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=project.root, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 130, done.stderr
    assert f"{project.container('httpd')} is back as it was" in done.stderr, done.stderr
    assert_serving(docker_client, project, report=done.stderr)
    assert containers_of(docker_client, project)[project.container("httpd")][0] == old


def test_up_waiting_for_another_runs_turn_ends_at_once_on_ctrl_c(project, docker_client):
    project.inv("up")
    with start_inv(project, "httpd.run", "--no-build", "--attach") as attached:
        wait_for(lambda: len(containers_of(docker_client, project)) == 3, "the attached run's container")
        with start_inv(project, "up", "--no-build") as up:
            time.sleep(2)  # up waits for the attached run's turn at httpd
            up.send_signal(signal.SIGINT)
            started = time.monotonic()
            _, errors = up.communicate(timeout=30)
        assert time.monotonic() - started < 5, errors
        assert up.returncode == 130 and "Traceback" not in errors, errors
        assert "waiting for another run of" in errors
        assert attached.poll() is None  # the attached run goes on
        attached.send_signal(signal.SIGINT)
        attached.communicate(timeout=30)


def test_two_runs_of_a_server_slow_to_answer_take_turns_and_both_succeed(project, docker_client):
    project.config.write_text(project.config.read_text().replace(
        SLOW_STOP, SLOW_STOP + f'\ncommand = ["sh", "-c", "sleep 2; exec httpd -f -h /www -u www-data:www-data '
                               f'-p {project.port}"]'))
    project.inv("build", "--quiet")
    first = start_inv(project, "httpd.run", "--no-build")
    time.sleep(0.3)
    second = start_inv(project, "httpd.run", "--no-build")
    results = [(run.returncode, *run.communicate(timeout=120)) for run in (first, second)]
    results = [(run.returncode, out, err) for run, (_, out, err) in zip((first, second), results)]
    assert [code for code, _, _ in results] == [0, 0], results
    assert "waiting for another run of" in results[1][2], results
    assert_serving(docker_client, project, report=str(results))


def test_status_shows_no_leftovers_while_a_run_is_under_way(project, docker_client):
    slow_to_stop(project)
    project.inv("httpd.run", "--quiet-build")
    with start_inv(project, "httpd.run", "--no-build") as run:
        wait_for(lambda: replace_begun(docker_client, project), "the replace to begin")
        shown = project.inv("httpd.status")
        run.communicate(timeout=60)
    assert "left by an interrupted run" not in shown.stdout, shown.stdout
    assert run.returncode == 0
