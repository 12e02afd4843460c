"""The standard-library paths of `inv up` and `inv down` on a local engine: the settings hash
that `up` compares (no engine, no docker-py), the engine requests they make, and proof, in a
fresh process, that a no-op `up` and a `down` never import docker-py."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import pytest

from dockyard import Project, engine
from dockyard.engine import local, remote
from dockyard.config import PortMapping, ReadyCheck, RunSpec
from dockyard.containers import NOT_HASHED, RunOverrides, creation, exec_in, settings_hash
from dockyard.labels import SETTINGS, container_labels
from dockyard.errors import DockyardError

from conftest import REPO, assert_clean_failure, inv, make_project

# One changed value per RunSpec field that changes the container (each differs from httpd's).
CHANGED = {
    "ports": (PortMapping("127.0.0.1", 9001, 8000),),
    "environment": (("HTTPD_PORT", "8000"), ("GREETING", "hi")),
    "command": ("httpd", "-f"),
    "user": "www-data",
    "volumes": ("/srv/site:/site:ro",),
    "workdir": "/srv",
    "restart": "always",
    "init": False,
    "no_new_privileges": False,
    "cap_drop": ("NET_RAW",),
    "cap_add": ("SETUID",),
    "privileged": True,
    "read_only": False,
    "tmpfs": ("/tmp",),
    "memory": "64m",
    "pids": 100,
    "cpus": 0.5,
    "log_max_size": "1m",
    "log_max_files": 5,
    "network": "bridge",
    "aliases": ("site",),
    "networks": ("shared",),
}
# Fields that leave the container as it is: waiting, starting order, being a service.
UNCHANGED = {
    "ready": ReadyCheck(url="http://localhost:8000/", timeout=90),
    "service": False,
    "completes": True,  # a step's container is made as any other
    "after": ("busybox",),
    "name": "another-name",  # run creates under a passing name, so the name is never hashed
    "env_file": (REPO / "moved.env",),  # its variables are hashed in environment, not where they were read
    "secrets": frozenset({"HTTPD_PORT"}),  # how it is printed
}


@pytest.fixture(scope="module")
def example():
    return Project(REPO / "containers.toml").spec


def hash_of(project, spec, overrides: RunOverrides = RunOverrides()) -> str:
    return settings_hash(project, spec, overrides, ports=list(spec.run.ports), interactive=False)


def with_run(spec, **changes):
    return dataclasses.replace(spec, run=dataclasses.replace(spec.run, **changes))


def docker_py_body(project, spec, overrides: RunOverrides, *, name, interactive: bool) -> dict:
    """What docker-py's `create_container` would send for the same settings: the request
    dockyard made through it before it sent its own (kept here as the reference)."""
    import docker
    from docker.types import LogConfig

    from dockyard import resources

    api = docker.APIClient(base_url="unix:///nowhere.sock", version="1.41")  # nothing is connected
    run, ports = spec.run, list(spec.run.ports)
    restart = None
    if run.restart != "no" and not interactive:
        policy, _, count = run.restart.partition(":")
        restart = {"Name": policy, "MaximumRetryCount": int(count or 0)}
    host_config = api.create_host_config(
        port_bindings={f"{p.container_port}/{p.protocol}": (p.host_ip, p.host_port) for p in ports},
        binds=resources.binds(project, spec) or None, restart_policy=restart,
        init=(run.init and not interactive) or None, cap_drop=list(run.cap_drop) or None,
        cap_add=list(run.granted_capabilities) or None,
        security_opt=["no-new-privileges:true"] if run.no_new_privileges else None,
        privileged=run.privileged, read_only=run.read_only, tmpfs={path: "" for path in run.tmpfs} or None,
        mem_limit=run.memory, pids_limit=run.pids, nano_cpus=int(run.cpus * 1e9) if run.cpus else None,
        log_config=LogConfig(type="", config={"max-size": run.log_max_size, "max-file": str(run.log_max_files)}),
        network_mode=resources.network_mode(project, spec))
    network = host_config.get("NetworkMode")
    command = list(overrides.args) if overrides.args else list(run.command) if isinstance(run.command, tuple) \
        else run.command
    labels = container_labels(project.name, spec.key)
    labels[SETTINGS] = settings_hash(project, spec, overrides, ports=ports, interactive=interactive,
                                     command=command, named=name is not None)
    return api.create_container_config(
        image=spec.ref, command=command, environment=dict(run.environment) | dict(overrides.env),
        user=run.user, working_dir=run.workdir, ports=[(p.container_port, p.protocol) for p in ports],
        host_config=host_config, labels=labels, detach=not (interactive or overrides.stdin),
        stdin_open=interactive or overrides.stdin, tty=interactive and sys.stdin.isatty(),
        networking_config=api.create_networking_config({network: api.create_endpoint_config(
            aliases=[spec.key, *run.aliases])}) if network == resources.network_name(project) and name else None)


def meaningful(value):
    """The request without the keys whose value the engine reads as unset (None, False, empty)."""
    if isinstance(value, dict):
        kept = {key: meaningful(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in (None, False, "", [], {})}
    return value


@pytest.mark.parametrize("name, interactive, overrides", [
    ("httpd", False, RunOverrides()),
    ("httpd", False, RunOverrides(env=(("A", "1"),), args=("httpd", "-f", "-p", "9"), stdin=True)),
    (None, True, RunOverrides()),  # shell's container: no name, the engine's default network
])
def test_the_create_request_is_docker_pys_for_every_setting(example, monkeypatch, name, interactive, overrides):
    monkeypatch.setattr(engine, "known_log_driver", lambda: "json-file")
    httpd = example.images["httpd"]
    for field, spec in [("none", httpd), *((f, with_run(httpd, **{f: CHANGED[f]})) for f in sorted(CHANGED))]:
        ours = creation(example, spec, overrides, name=name, ports=list(spec.run.ports), interactive=interactive)
        theirs = docker_py_body(example, spec, overrides, name=name, interactive=interactive)
        assert meaningful(ours) == meaningful(theirs), field


def test_every_runspec_field_is_either_hashed_or_said_not_to_change_the_container():
    assert set(CHANGED) | set(UNCHANGED) == {f.name for f in dataclasses.fields(RunSpec)}
    assert set(UNCHANGED) == NOT_HASHED


@pytest.mark.parametrize("field", sorted(CHANGED))
def test_a_setting_that_changes_the_container_changes_the_hash(example, field):
    httpd = example.images["httpd"]
    assert getattr(httpd.run, field) != CHANGED[field]
    changed = with_run(httpd, **{field: CHANGED[field]})
    # `up` hashes the configured ports, so a changed port is in the hash through them too.
    assert settings_hash(example, changed, RunOverrides(), ports=list(changed.run.ports), interactive=False) \
        != hash_of(example, httpd)


@pytest.mark.parametrize("field", sorted(UNCHANGED))
def test_a_setting_that_leaves_the_container_as_it_is_keeps_the_hash(example, field):
    httpd = example.images["httpd"]
    assert hash_of(example, with_run(httpd, **{field: UNCHANGED[field]})) == hash_of(example, httpd)


@pytest.mark.parametrize("what", ["image", "project", "env override", "args", "port override", "stdin"])
def test_the_image_the_project_and_a_runs_overrides_change_the_hash(example, what):
    httpd = example.images["httpd"]
    before = hash_of(example, httpd)
    if what == "image":
        after = hash_of(example, dataclasses.replace(httpd, tag="radiasoft/httpd:2"))
    elif what == "project":
        after = hash_of(dataclasses.replace(example, name="another"), httpd)
    elif what == "port override":
        after = settings_hash(example, httpd, RunOverrides(port=9000), interactive=False,
                              ports=[dataclasses.replace(httpd.run.ports[0], host_port=9000)])
    else:
        overrides = {"env override": RunOverrides(env=(("GREETING", "hi"),)), "args": RunOverrides(args=("sh",)),
                     "stdin": RunOverrides(stdin=True)}[what]
        after = hash_of(example, httpd, overrides)
    assert after != before


def test_the_hash_is_the_label_the_created_container_gets_and_needs_no_engine(example):
    httpd = example.images["httpd"]
    assert hash_of(example, httpd) == hash_of(Project(REPO / "containers.toml").spec, httpd)
    assert len(hash_of(example, httpd)) == 32


def test_a_volume_is_hashed_under_its_engine_name(example):
    api = example.images["api"]
    assert hash_of(example, api) != hash_of(dataclasses.replace(example, external_volumes=("data",)), api)


def test_query_strings_are_what_the_engine_takes():
    assert engine.query("/containers/json", all=True, filters={"label": "dockyard.owner=p"}) == \
        "/containers/json?all=1&filters=%7B%22label%22%3A+%5B%22dockyard.owner%3Dp%22%5D%7D"
    assert engine.query("/containers/abc/stop", t=0) == "/containers/abc/stop?t=0"
    assert engine.query("/networks/p_default") == "/networks/p_default"


def test_a_refusal_carries_the_engines_words_and_status():
    refused = engine.Refused("remove network p_default", 409, "network has active endpoints")
    assert str(refused) == "remove network p_default: network has active endpoints" and refused.status == 409
    assert str(engine.Refused("stop x", 404, "No such container: x")) == "stop x: not found (No such container: x)"
    assert isinstance(refused, DockyardError)


def test_down_on_an_engine_that_is_not_there_is_one_line(tmp_path):
    project = make_project(tmp_path / "project")
    result = inv(project.root, "down")
    assert_clean_failure(result, "cannot reach the Docker engine", "no such socket")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# -- on the real engine ------------------------------------------------------------------------

PYTHON_API = textwrap.dedent("""
    import json, sys
    from dockyard import Project
    project = Project(sys.argv[1])
    if sys.argv[2] == "up":
        result = [o["action"] for o in project.up(quiet_build=True)]
    else:
        result = project.down()
    assert "watchfiles" not in sys.modules, "watchfiles was imported"  # the watch's alone
    print(json.dumps({"result": result, "docker imported": "docker" in sys.modules}))
""")


def in_fresh_process(project, what: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PYTHON_API, str(project.config), what],
                          capture_output=True, text=True, timeout=300, cwd=project.root)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.integration
def test_up_and_down_never_import_docker_py(project):
    project.inv("build", "--quiet")
    assert in_fresh_process(project, "up") == {"result": ["created", "created"], "docker imported": False}
    noop = in_fresh_process(project, "up")
    assert noop == {"result": ["unchanged", "unchanged"], "docker imported": False}
    down = in_fresh_process(project, "down")
    assert down["docker imported"] is False
    assert down["result"] == {"containers": sorted([project.container("api"), project.container("httpd")]),
                              "network": "removed", "volumes": []}
    # Nothing is left for a second down, which still needs no docker-py.
    assert in_fresh_process(project, "down") == {
        "result": {"containers": [], "network": "absent", "volumes": []}, "docker imported": False}


@pytest.mark.integration
def test_a_build_and_a_run_ask_the_engine_for_no_version_and_no_info(project, nothing_chosen, monkeypatch):
    # A ping says whether the engine builds with BuildKit (`docker version` takes 7 ms, a
    # ping 0.6), and a run sends json-file's log rotation without a `docker info` (20 to
    # 80 ms) to learn the engine's driver: each was asked on every build and every run.
    from dockyard.engine import client

    asked = []
    real = client.open_answer

    def recording(method, path, what, **options):
        asked.append(path.partition("?")[0])
        return real(method, path, what, **options)

    monkeypatch.setattr(client, "open_answer", recording)
    monkeypatch.setattr(client, "_pings", {})
    monkeypatch.setattr(client, "_log_drivers", {})
    api = Project(project.config)
    api.build(["httpd"], quiet=True)
    api.run("httpd", build=False)
    assert "/_ping" in asked and "/containers/create" in asked, asked
    assert "/version" not in asked and "/info" not in asked, asked


@pytest.mark.integration
def test_a_stopped_service_is_started_again_and_a_changed_one_replaced(project, docker_client):
    project.inv("up", "--quiet-build")
    docker_client.api.stop(project.container("api"), timeout=0)
    again = project.inv("up", "--quiet-build", "--json")
    outcomes = {o["name"]: (o["action"], o["reason"]) for o in json.loads(again.stdout)}
    assert outcomes == {project.container("api"): ("started", "was exited"),
                        project.container("httpd"): ("unchanged", None)}
    limited = 'cap_add = ["SETUID", "SETGID"]\nmemory = "256m"\n'
    project.config.write_text(project.config.read_text().replace('cap_add = ["SETUID", "SETGID"]\n', limited, 1))
    changed = json.loads(project.inv("up", "--quiet-build", "--json").stdout)
    assert [o["action"] for o in changed].count("replaced") == 1


@pytest.mark.integration
def test_down_on_an_engine_that_never_answers_is_one_line_in_bounded_time(tmp_path):
    import socket
    import tempfile
    import time

    directory = tempfile.mkdtemp(prefix="dy-silent-", dir="/tmp")
    path = os.path.join(directory, "docker.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)  # accepted by the kernel, never answered
    try:
        project = make_project(tmp_path / "project")
        started = time.monotonic()
        result = inv(project.root, "down", env={**os.environ, "DOCKER_HOST": f"unix://{path}",
                                                "DOCKYARD_ENGINE_TIMEOUT": "1"})
        assert time.monotonic() - started < 15
        assert_clean_failure(result, "list containers", path, "did not answer within 1 s")
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    finally:
        server.close()
        os.unlink(path)
        os.rmdir(directory)


def on_transport(path: str, monkeypatch) -> None:
    """Send this test's requests by one transport. docker-py's is the one of a tcp, TLS or ssh
    engine; here it finds the local socket by DOCKER_HOST, as the standard library's does.
    The standard library's serves a local socket even when a docker-py client was made
    earlier in the process (the transport is the engine's, not the process's history)."""
    engine.close()
    if path == "docker-py":
        monkeypatch.setattr(local, "socket_path", lambda: None)
    else:
        remote.docker_client()

        def through_docker_py(*args, **options):
            raise AssertionError("a request to the local socket went through docker-py")

        monkeypatch.setattr(remote, "send", through_docker_py)


@pytest.mark.integration
@pytest.mark.parametrize("path", ["standard library", "docker-py"])
def test_requests_answer_alike_on_both_paths(project, path, monkeypatch):
    project.inv("up", "--quiet-build")
    on_transport(path, monkeypatch)
    try:
        assert (local.local_connection(1) is None) == (path == "docker-py")
        network = f"{project.name}_default"
        assert engine.request("GET", engine.query(f"/networks/{network}"), "inspect")["Name"] == network
        assert engine.request("GET", engine.query("/networks/dy-no-such-network"), "inspect", missing=True) is None
        with pytest.raises(engine.Refused) as refused:  # containers are attached
            engine.request("DELETE", engine.query(f"/networks/{network}"), f"remove network {network}")
        assert refused.value.status in (403, 409) and "active endpoints" in refused.value.explanation
        with pytest.raises(engine.Refused) as missing:
            engine.request("DELETE", engine.query("/volumes/dy-no-such-volume"), "remove volume dy-no-such-volume")
        assert missing.value.status == 404
        assert str(missing.value).startswith("remove volume dy-no-such-volume: not found (")
        assert Project(project.config).down() == {
            "containers": sorted([project.container("api"), project.container("httpd")]),
            "network": "removed", "volumes": []}
    finally:
        engine.close()


@pytest.mark.integration
@pytest.mark.parametrize("path", ["standard library", "docker-py"])
def test_exec_logs_and_attach_answer_alike_on_both_paths(project, path, monkeypatch):
    project.inv("httpd.run", "--quiet-build")
    on_transport(path, monkeypatch)
    try:
        api = Project(project.config)
        result = api.exec("httpd", "echo out; echo err >&2; exit 3", capture=True)
        assert (result["exit_code"], result["stdout"], result["stderr"]) == (3, "out\n", "err\n")
        api.exec("httpd", "echo to-stdout > /proc/1/fd/1; echo to-stderr > /proc/1/fd/2")
        container = engine.inspect_container(project.container("httpd"))["Id"]
        # The engine's frames, taken apart: each piece with its stream (the engine reads the two
        # streams apart, so their order in the log is not the order they were written in).
        assert sorted(engine.logs(container, "logs", follow=False, tail=2)) == [
            (engine.STDOUT, b"to-stdout\n"), (engine.STDERR, b"to-stderr\n")]
        # Refusals are said by their status, on each endpoint and transport.
        for refused_by in (lambda: engine.exec_start("dy-no-such-exec", "exec in x"),
                           lambda: engine.attach("dy-no-such-container", "exec in x", stdin=False),
                           lambda: engine.logs("dy-no-such-container", "exec in x", follow=False, tty=False)):
            with pytest.raises(engine.Refused) as missing:
                refused_by()
            assert missing.value.status == 404
            assert str(missing.value).startswith("exec in x: not found (")
        api.stop("httpd")
        with pytest.raises(DockyardError, match=f"^exec in {project.container('httpd')}: .*is not running"):
            exec_in(api.image("httpd"), container, ["true"], user=None, capture=True)
    finally:
        engine.close()
