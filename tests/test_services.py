"""`inv up`, `down`, `logs`, the project network and managed volumes, on the real engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime

import pytest

from conftest import assert_clean_failure, free_port, get, imported_modules, remove_project_objects, unique
from dockyard.errors import DockyardError

pytestmark = pytest.mark.integration


def started_at(docker_client, name: str) -> datetime:
    return datetime.fromisoformat(docker_client.api.inspect_container(name)["State"]["StartedAt"][:26] + "+00:00")


def container_id(docker_client, name: str) -> str:
    return docker_client.api.inspect_container(name)["Id"]


def test_up_starts_every_service_then_replaces_only_what_changed(project, docker_client):
    first = project.inv("up", "--quiet-build")
    api, httpd = project.container("api"), project.container("httpd")
    assert first.stdout.splitlines() == [f"{api}: created", f"{httpd}: created",
                                         "up: 2 created, 0 unchanged; stop with: inv down"]
    # my-app is one-shot: built, never started.
    assert docker_client.api.containers(all=True, filters={"name": project.container("my-app")}) == []
    ids = {name: container_id(docker_client, name) for name in (api, httpd)}

    again = project.inv("up", "--quiet-build")
    assert again.stdout.splitlines() == [f"{api}: unchanged", f"{httpd}: unchanged",
                                         "nothing changed: 2 services running and ready"]
    assert {name: container_id(docker_client, name) for name in (api, httpd)} == ids
    assert project.inv("up", "--only", "api", "--quiet-build").stdout.splitlines() == [
        f"{api}: unchanged", "nothing changed: 1 service running and ready"]

    project.config.write_text(project.config.read_text().replace(
        f'HTTPD_PORT = "{project.port}" }}', f'HTTPD_PORT = "{project.port}", GREETING = "hi" }}'))
    changed = project.inv("up", "--quiet-build", "--json")
    outcomes = {o["name"]: (o["action"], o["reason"]) for o in json.loads(changed.stdout)}
    assert outcomes == {api: ("unchanged", None), httpd: ("replaced", "settings changed")}
    assert container_id(docker_client, api) == ids[api]
    assert container_id(docker_client, httpd) != ids[httpd]
    assert project.inv("httpd.exec", 'echo "$GREETING"').stdout == "hi\n"


def test_the_site_reaches_the_api_by_name_over_the_project_network(project, docker_client):
    project.inv("up", "--quiet-build")
    status, page = get(f"http://127.0.0.1:{project.port}/cgi-bin/from-api")
    assert status == 200
    assert "The api service says: {&quot;service&quot;: &quot;api&quot;" in page, page
    network = docker_client.api.inspect_network(f"{project.name}_default")
    assert network["Labels"]["dockyard.owner"] == project.name and network["Driver"] == "bridge"
    attached = sorted(c["Name"] for c in network["Containers"].values())
    assert attached == [project.container("api"), project.container("httpd")]
    # By container name too; and the tutorial's page is what it was.
    assert "service" in project.inv("httpd.exec", f"wget -q -O - http://{project.container('api')}:8081/cgi-bin/visits").stdout
    assert "Hello, World!" in get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")[1]
    # The api's visits are counted in the project's own volume, which status lists.
    assert docker_client.api.inspect_volume(f"{project.name}_data")["Labels"]["dockyard.volume"] == "data"
    assert f"data    {project.name}_data  present  {project.container('api')}" in project.inv("status").stdout
    # Every service's output, prefixed with its name.
    project.inv("api.exec", "echo api-marker > /proc/1/fd/1")
    logs = project.inv("logs", "--no-follow").stdout
    width = len(project.container("httpd"))
    assert f"{project.container('api'):<{width}} | api-marker\n" in logs


def test_a_shell_reaches_the_services_by_name_on_the_project_network(project, docker_client):
    project.inv("up", "--quiet-build")
    result = project.inv("httpd.shell", input="wget -q -O - http://api:8081/cgi-bin/visits\n")
    assert '"service": "api"' in result.stdout, result.stderr
    # The shell answered to no service's name: the site still reaches the api, and only it, as api.
    network = docker_client.api.inspect_network(f"{project.name}_default")
    assert sorted(c["Name"] for c in network["Containers"].values()) == [project.container("api"),
                                                                       project.container("httpd")]
    assert "The api service says" in get(f"http://127.0.0.1:{project.port}/cgi-bin/from-api")[1]


def test_down_removes_containers_and_network_and_volumes_only_when_asked(project, docker_client):
    project.inv("up", "--quiet-build")
    project.inv("my-app.run", "--quiet-build")  # a one-shot container of ours, exited: down takes it too
    # Someone else's container on our network keeps the network; it is not touched.
    foreign = docker_client.api.create_container(project.tags["busybox"], command=["sleep", "60"],
                                                 host_config=docker_client.api.create_host_config(
                                                     network_mode=f"{project.name}_default", init=True))
    try:
        docker_client.api.start(foreign["Id"])
        down = project.inv("down")
        removed = {project.container(key) for key in ("api", "httpd", "my-app")}
        assert {line.removeprefix("removed container ") for line in down.stdout.splitlines()[:3]} == removed
        assert "network: kept: " in down.stdout and "still attached" in down.stdout
        assert docker_client.api.inspect_container(foreign["Id"])["State"]["Running"]
    finally:
        docker_client.api.remove_container(foreign["Id"], force=True)
    down = project.inv("down")
    assert down.stdout.strip() == "network: removed"
    assert docker_client.api.networks(names=[f"{project.name}_default"]) == []
    assert docker_client.api.inspect_volume(f"{project.name}_data")  # kept without --volumes
    assert project.inv("down", "--volumes").stdout.strip() == f"volume {project.name}_data: removed"
    assert project.inv("down").stdout.strip() == "nothing to remove"


def test_a_container_that_cannot_stop_stays_and_down_still_removes_the_others(project, docker_client, monkeypatch):
    from dockyard import Project, engine

    project.inv("up", "--quiet-build")
    api = docker_client.api.inspect_container(project.container("api"))["Id"]
    request = engine.request

    def refusing(method, path, what, **options):
        if method == "POST" and path.startswith(f"/containers/{api}/stop"):
            raise engine.Refused(what, 500, "cannot kill container: permission denied")
        return request(method, path, what, **options)

    monkeypatch.setattr(engine, "request", refusing)
    with pytest.raises(DockyardError, match=f"stop {project.container('api')}: cannot kill container"):
        Project(project.config).down()
    assert docker_client.api.inspect_container(api)["State"]["Running"]
    assert not docker_client.api.containers(all=True, filters={"name": f"^{project.container('httpd')}$"})
    assert docker_client.api.networks(names=[f"{project.name}_default"])  # api is still on it
    monkeypatch.setattr(engine, "request", request)
    assert Project(project.config).down()["containers"] == [project.container("api")]


def test_after_starts_the_dependent_only_once_the_slow_service_answers(project, docker_client):
    api_port = free_port()
    slow = (f'name = "{project.container("api")}"\nports = ["{api_port}:8081"]\n'
            f'ready = {{ url = "http://127.0.0.1:{api_port}/cgi-bin/visits", timeout = 20 }}\n'
            "command = \"sh -c 'sleep 2; exec httpd -f -h /api -u www-data:www-data -p 8081'\"\n")
    project.config.write_text(project.config.read_text().replace(f'name = "{project.container("api")}"\n', slow))
    project.inv("up", "--quiet-build")
    api, httpd = started_at(docker_client, project.container("api")), started_at(docker_client, project.container("httpd"))
    assert (httpd - api).total_seconds() >= 2, (api, httpd)
    assert "says: " in get(f"http://127.0.0.1:{project.port}/cgi-bin/from-api")[1]


STORE = """
[project]
name = "{name}"

[images.store]
tag = "{name}/store:latest"
dir = "store"

[images.store.run]
name = "{name}-store"
service = true
command = ["sleep", "600"]
volumes = ["data:/data", "{other}_data:/other"]

[volumes.{other}_data]
external = true
"""


@pytest.fixture
def second_project(tmp_path, docker_client, project):
    """A small project of another name, FROM the first's base, that also has a volume `data`."""
    name = unique()
    root = tmp_path / "second"
    (root / "store").mkdir(parents=True)
    (root / "store" / "Dockerfile").write_text(f"FROM {project.tags['busybox']}\n")
    (root / "tasks.py").write_text((project.root / "tasks.py").read_text())
    (root / "containers.toml").write_text(STORE.format(name=name, other=project.name))
    made = type(project)(root=root, name=name, port=0)
    yield made
    remove_project_objects(docker_client, name)


def test_two_projects_volumes_named_data_are_not_shared_and_clean_removes_only_ours(
        project, second_project, docker_client):
    project.inv("up", "--quiet-build")
    second_project.inv("up", "--quiet-build")
    project.inv("api.exec", "--user", "www-data", "echo first > /data/who")  # root holds no capability
    assert second_project.inv("store.exec", "cat /data/who", check=False).returncode != 0
    assert second_project.inv("store.exec", "cat /other/who").stdout == "first\n"  # declared external
    ours, theirs = f"{project.name}_data", f"{second_project.name}_data"
    # status says who uses each volume, external ones too, in the table and in --json.
    store, api = f"{second_project.name}-store", project.container("api")
    row = json.loads(second_project.inv("status", "--json").stdout)[0]
    assert row["volumes"] == [
        {"volume": "data", "name": theirs, "external": False, "state": "present", "used_by": [store]},
        {"volume": ours, "name": ours, "external": True, "state": "present", "used_by": sorted([api, store])}]
    table = second_project.inv("status").stdout.splitlines()
    assert any(line.split()[:3] == [ours, ours, "(external)"] and line.endswith(", ".join(sorted([api, store])))
               for line in table), table
    assert json.loads(project.inv("api.status", "--json").stdout)["volumes"][0]["used_by"] == sorted([api, store])

    # The second project's container uses our volume: neither down nor clean removes it.
    project.inv("down")
    assert "volume" not in project.inv("clean", "--volumes", "--dry-run").stdout.replace("0 stopped", "")
    kept = project.inv("down", "--volumes").stdout
    assert f"volume {ours}: kept: in use" in kept
    second_project.inv("down")
    assert f"would remove volume {ours}" in project.inv("clean", "--volumes", "--dry-run").stdout
    cleaned = project.inv("clean", "--volumes", "--json").stdout
    assert json.loads(cleaned)["volumes"] == [{"name": ours, "volume": "data"}]
    assert docker_client.api.volumes(filters={"name": ours})["Volumes"] in (None, [])
    assert docker_client.api.inspect_volume(theirs)["Labels"]["dockyard.owner"] == second_project.name
    assert_clean_failure(project.inv("clean", "--volumes", "--all", check=False), "--volumes", "--all")


def test_exec_and_an_attached_run_read_piped_input_and_env_takes_the_hosts_value(project):
    env = {**os.environ, "DYTEST_SECRET": "from the host"}
    project.inv("httpd.run", "--quiet-build", "--env", "DYTEST_SECRET", env=env)
    assert project.inv("httpd.exec", 'echo "$DYTEST_SECRET"').stdout == "from the host\n"
    assert project.inv("httpd.exec", "tr a-z A-Z", input="piped\ninput\n").stdout == "PIPED\nINPUT\n"
    assert project.inv("httpd.exec", "wc -c", input="").stdout.strip() == "0"
    assert project.inv("my-app.run", "--", "tr", "a-z", "A-Z", input="attached\n").stdout == "ATTACHED\n"
    unset = {k: v for k, v in os.environ.items() if k != "DYTEST_SECRET"}
    assert_clean_failure(project.inv("httpd.run", "--env", "DYTEST_SECRET", check=False, env=unset),
                         "DYTEST_SECRET is not set here")


def add_slow_services(project, api_seconds: float, worker_seconds: float, worker_command: str | None = None) -> None:
    """api answers only ``api_seconds`` after it starts; a second service, worker (the api's image
    under another tag), after ``worker_seconds``; httpd comes after both. api and worker do not
    wait for each other."""
    api_port, worker_port = free_port(), free_port()

    def served_after(seconds: float) -> str:
        return f"command = \"sh -c 'sleep {seconds}; exec httpd -f -h /api -u www-data:www-data -p 8081'\"\n"

    api = (f'name = "{project.container("api")}"\nports = ["{api_port}:8081"]\n'
           f'ready = {{ url = "http://127.0.0.1:{api_port}/cgi-bin/visits", timeout = 30 }}\n' + served_after(api_seconds))
    worker = (f'\n[images.worker]\ntag = "{project.name}/worker:latest"\ndir = "images/api"\n\n[images.worker.run]\n'
              f'name = "{project.container("worker")}"\nports = ["{worker_port}:8081"]\ncap_add = ["SETUID", "SETGID"]\n'
              f'ready = {{ url = "http://127.0.0.1:{worker_port}/cgi-bin/visits", timeout = 30 }}\n'
              + (worker_command or served_after(worker_seconds)))
    text = project.config.read_text().replace(f'name = "{project.container("api")}"\n', api)
    project.config.write_text(text.replace('after = ["api"]', 'after = ["api", "worker"]') + worker)


def test_services_that_do_not_wait_for_each_other_start_together(project, docker_client):
    add_slow_services(project, api_seconds=4, worker_seconds=2)
    project.inv("build", "--quiet")
    started = time.monotonic()
    result = project.inv("up", "--quiet-build")
    took = time.monotonic() - started
    api, worker, httpd = (started_at(docker_client, project.container(key)) for key in ("api", "worker", "httpd"))
    # worker started while api was still asleep (one after the other, it would be 4 s later)...
    assert abs((worker - api).total_seconds()) < 3, (api, worker)
    # ...and httpd only once both answered.
    assert (httpd - api).total_seconds() >= 4 and (httpd - worker).total_seconds() >= 2, (api, worker, httpd)
    assert took < 4 + 2 + 10, took  # the waits overlapped: less than their sum plus start-up
    # worker was ready first; the lines still come in start order.
    assert result.stdout.splitlines() == [f"{project.container(key)}: created" for key in ("api", "worker", "httpd")] \
        + ["up: 3 created, 0 unchanged; stop with: inv down"]
    assert "says: " in get(f"http://127.0.0.1:{project.port}/cgi-bin/from-api")[1]
    again = project.inv("up", "--quiet-build", "--json")
    assert [(o["image"], o["action"]) for o in json.loads(again.stdout)] == \
        [("api", "unchanged"), ("worker", "unchanged"), ("httpd", "unchanged")]


def test_when_one_service_fails_up_stops_waiting_for_the_others_and_starts_nothing_more(project, docker_client):
    # worker exits at once; api takes its time and would answer only after a minute.
    add_slow_services(project, api_seconds=60, worker_seconds=0,
                      worker_command="command = \"sh -c 'echo worker-gives-up; exit 3'\"\n")
    project.inv("build", "--quiet")
    started = time.monotonic()
    result = project.inv("up", "--quiet-build", check=False)
    assert time.monotonic() - started < 20, result.stderr  # not api's 30 s ready timeout
    assert_clean_failure(result, f"{project.container('worker')} exited (code 3) instead of staying up",
                         "worker-gives-up")
    assert result.stdout == ""
    # What was started is left as a failed `run` leaves it; what comes after was never made.
    assert docker_client.api.inspect_container(project.container("api"))["State"]["Running"]
    assert docker_client.api.containers(all=True, filters={"name": project.container("httpd")}) == []


def test_inv_down_loads_no_docker_py_and_an_engine_in_no_swarm_has_no_services_to_keep(project, engine):
    project.inv("up", "--quiet-build")
    command = [sys.executable, "-X", "importtime", "-m", "invoke", "down"]
    down = subprocess.run(command, cwd=project.root, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert down.stdout.splitlines() == [f"removed container {project.container('api')}",
                                        f"removed container {project.container('httpd')}", "network: removed"]
    assert not {"docker", "requests", "urllib3"} & imported_modules(down)
    # The tests' own engine is in no swarm: it refuses to list services, and down says nothing of them.
    elsewhere = subprocess.run(command, cwd=project.root, capture_output=True, text=True, timeout=120,
                               env=engine.env())
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert elsewhere.stdout == "nothing to remove\n"
    assert "docker" not in imported_modules(elsewhere)


def add_migration(project, command: str) -> None:
    """A step (completes = true) that api needs first: the api's image under another tag,
    writing to the api's volume as the api's user; ``command`` is its shell command (and
    replaces the step's command of a call before)."""
    step = (f'\n[images.migrate]\ntag = "{project.name}/migrate:latest"\ndir = "images/api"\n\n'
            f'[images.migrate.run]\nname = "{project.container("migrate")}"\ncompletes = true\n'
            f'user = "www-data"\nvolumes = ["data:/data"]\ncommand = ["sh", "-c", {json.dumps(command)}]\n')
    text = project.config.read_text().split("\n[images.migrate]")[0]  # a step of before is replaced
    if 'after = ["migrate"]' not in text:
        text = text.replace('service = true\nvolumes', 'service = true\nafter = ["migrate"]\nvolumes')
    project.config.write_text(text + step)


def state(docker_client, name: str) -> dict:
    return docker_client.api.inspect_container(name)["State"]


def test_a_step_runs_to_its_end_before_what_comes_after_it_and_only_once(project, docker_client):
    add_migration(project, "echo migrating; sleep 1; echo v1 > /data/schema")
    migrate, api, httpd = (project.container(key) for key in ("migrate", "api", "httpd"))
    first = project.inv("up", "--quiet-build")
    assert first.stdout.splitlines() == [f"{migrate}: created, completed", f"{api}: created", f"{httpd}: created",
                                         "up: 3 created, 0 unchanged; stop with: inv down"]
    done = state(docker_client, migrate)
    assert (done["Status"], done["ExitCode"]) == ("exited", 0)
    assert started_at(docker_client, api) >= datetime.fromisoformat(done["FinishedAt"][:26] + "+00:00")
    assert project.inv("api.exec", "cat /data/schema").stdout == "v1\n"

    # Nothing changed: the step that completed is not run again.
    again = project.inv("up", "--quiet-build")
    assert again.stdout.splitlines() == [f"{migrate}: unchanged, completed", f"{api}: unchanged",
                                         f"{httpd}: unchanged",
                                         "nothing changed: 2 services running and ready, 1 step completed"]
    assert state(docker_client, migrate)["FinishedAt"] == done["FinishedAt"]
    rows = {row["image"]: row for row in json.loads(project.inv("status", "--json").stdout)}
    assert (rows["migrate"]["state"], rows["migrate"]["exit_code"], rows["migrate"]["completed"]) == ("exited", 0, True)
    assert rows["api"]["completed"] is None
    assert any(line.startswith("migrate ") and " exited (0), completed " in line
               for line in project.inv("status").stdout.splitlines())

    # A step that fails: up fails with its exit code and last words, and what needs it waits.
    add_migration(project, "echo migration-failed >&2; exit 3")
    api_before = docker_client.api.inspect_container(api)
    failed = project.inv("up", "--quiet-build", check=False)
    assert failed.returncode == 3
    assert_clean_failure(failed, f"{migrate} exited (code 3); last log lines:", "migration-failed")
    assert failed.stdout == ""
    # The api of before is left as it was: not replaced, not restarted.
    assert (container_id(docker_client, api), state(docker_client, api)["StartedAt"]) == \
        (api_before["Id"], api_before["State"]["StartedAt"])

    # down removes the step's container with the others; on a fresh start the step fails
    # again, and nothing that needs it is made.
    assert f"removed container {migrate}" in project.inv("down").stdout
    assert project.inv("up", "--quiet-build", check=False).returncode == 3
    assert (state(docker_client, migrate)["Status"], state(docker_client, migrate)["ExitCode"]) == ("exited", 3)
    for name in (api, httpd):
        assert docker_client.api.containers(all=True, filters={"name": f"^{name}$"}) == []
    # A step that failed is not done: the next `up` runs it again, in a new container.
    failed_id = container_id(docker_client, migrate)
    assert project.inv("up", "--quiet-build", check=False).returncode == 3
    assert container_id(docker_client, migrate) != failed_id
    # Once it is fixed it runs again, in place of the failed one.
    add_migration(project, "echo v2 > /data/schema")
    fixed = project.inv("up", "--quiet-build")
    assert fixed.stdout.splitlines()[0] == f"{migrate}: replaced (settings changed), completed"
    assert project.inv("api.exec", "cat /data/schema").stdout == "v2\n"


def with_port_check(project, api_command: str | None = None, timeout: int = 30) -> None:
    """httpd and api checked on a port (not a URL): api publishes 8081 on a free port.
    busybox httpd waits silently for its client's request, as most servers do."""
    api_port = free_port()
    api = f'name = "{project.container("api")}"\nports = ["{api_port}:8081"]\nready = {{ port = 8081, timeout = {timeout} }}\n'
    if api_command:
        api += f"command = {json.dumps(api_command)}\n"
    text = project.config.read_text().replace(f'name = "{project.container("api")}"\n', api)
    project.config.write_text(text.replace(
        f'ready = {{ url = "http://127.0.0.1:{project.port}/cgi-bin/hello-world", timeout = 30 }}',
        f"ready = {{ port = {project.port} }}"))


def timed_readiness(monkeypatch) -> dict[str, float]:
    """How long each service's readiness wait takes, by image key, from here on."""
    from dockyard import containers

    waits: dict[str, float] = {}
    wait_ready = containers.wait_ready

    def timed(spec, *args, **kwargs):
        started = time.monotonic()
        try:
            return wait_ready(spec, *args, **kwargs)
        finally:
            waits[spec.key] = time.monotonic() - started

    monkeypatch.setattr(containers, "wait_ready", timed)
    return waits


def test_a_no_op_up_looks_at_a_running_services_port_without_the_start_up_margin(project, monkeypatch):
    from dockyard import Project

    with_port_check(project)
    project.inv("up", "--quiet-build")
    waits = timed_readiness(monkeypatch)
    outcomes = Project(project.config).up(build=False)
    assert [o["action"] for o in outcomes] == ["unchanged", "unchanged"]
    # A silent server's port check used to wait out 0.3 s for a hang-up that never came.
    assert max(waits.values()) < 0.25, waits


def test_a_no_op_up_still_finds_a_running_service_that_does_not_answer(project, docker_client):
    with_port_check(project, api_command="sleep 600", timeout=2)  # runs, and listens nowhere
    for attempt in ("created", "unchanged"):
        failed = project.inv("up", "--quiet-build", check=False)
        assert_clean_failure(failed, f"{project.container('api')} did not answer on port 8081 within 2s")
        assert docker_client.api.inspect_container(project.container("api"))["State"]["Running"], attempt
