"""Least privilege by default: what containers get, how containers.toml loosens it, and the
warnings `config` and `status` give when it does."""

from __future__ import annotations

import json

import pytest

from conftest import assert_clean_failure, get, make_project, own_engine
from dockyard import Project, config
from dockyard.errors import DockyardError

APP = """
[project]
name = "demo"

[images.app]
tag = "demo/app"
dir = "app"
"""


def load(tmp_path, toml: str):
    (tmp_path / "app").mkdir(exist_ok=True)
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "data").mkdir(exist_ok=True)
    path = tmp_path / "containers.toml"
    path.write_text(toml)
    config.load.cache_clear()
    return config.load(path)


def test_the_defaults_are_least_privilege(tmp_path):
    run = load(tmp_path, APP).image("app").run
    assert run.cap_drop == ("ALL",) and run.cap_add == () and run.no_new_privileges
    assert not run.privileged and (run.log_max_size, run.log_max_files) == ("10m", 3)
    assert (run.read_only, run.pids) == (True, 512)
    assert config.warnings(load(tmp_path, APP)) == []


def test_the_read_only_root_and_the_pids_limit_can_be_lifted(tmp_path):
    run = load(tmp_path, APP + "[images.app.run]\nread_only = false\npids = -1\n").image("app").run
    assert (run.read_only, run.pids) == (False, -1)
    assert load(tmp_path, APP + "[images.app.run]\npids = 4096\n").image("app").run.pids == 4096


@pytest.mark.parametrize("settings, granted", [
    ("", ("KILL",)),  # the init must be able to signal a server that switched user
    ('cap_add = ["SETUID"]', ("SETUID", "KILL")),
    ("init = false", ()),
    ('cap_drop = ["ALL", "KILL"]', ()),  # said outright: not given back
    ('cap_add = ["kill"]', ("KILL",)),
    ('cap_drop = ["NET_RAW"]', ()),  # Docker's default set keeps KILL
])
def test_the_init_keeps_kill_unless_told_otherwise(tmp_path, settings, granted):
    run = load(tmp_path, APP + f"[images.app.run]\n{settings}\n").image("app").run
    assert run.granted_capabilities == granted


def test_host_directories_are_mounted_read_only_unless_rw_is_written(tmp_path):
    project = load(tmp_path, APP + '[images.app.run]\nvolumes = ["./data:/data", "./data:/rw:rw", "cache:/cache"]\n')
    assert project.image("app").run.volumes == (f"{tmp_path / 'data'}:/data:ro", f"{tmp_path / 'data'}:/rw:rw",
                                                "cache:/cache")


@pytest.mark.parametrize("setting, words", [
    ('cap_add = ["SET UID"]', "images.app.run.cap_add[0]: 'SET UID' is not a capability name"),
    ('cap_add = ["SETUID", "NOTACAP"]', "images.app.run.cap_add[1]: 'NOTACAP' is not a capability name"),
    ('cap_drop = ["ſetuid"]', "images.app.run.cap_drop[0]: 'ſetuid' is not a capability name"),
    ('cap_drop = ["all", 3]', "images.app.run.cap_drop[1]"),
    ('memory = "lots"', "images.app.run.memory: 'lots' is not a size"),
    ('memory = "２５６m"', "images.app.run.memory"),
    ("pids = 0", "images.app.run.pids: 0 must be a number of processes from 1"),
    ("cpus = -1", "images.app.run.cpus: -1 must be from 0.01"),
    ('tmpfs = ["tmp"]', "images.app.run.tmpfs[0]: 'tmp' is not 'PATH' or 'PATH:OPTIONS' with an absolute PATH"),
    ('logs = { max_size = "1x" }', "images.app.run.logs.max_size"),
    ("read_only = 1", "images.app.run.read_only: expected true or false"),
])
def test_bad_privilege_settings_name_their_key(tmp_path, setting, words):
    with pytest.raises(DockyardError) as caught:
        load(tmp_path, APP + f"[images.app.run]\n{setting}\n")
    assert words in str(caught.value)


def test_an_image_directory_outside_the_project_needs_a_key_that_says_so(tmp_path):
    outside = tmp_path / "elsewhere"
    (outside / "app").mkdir(parents=True)
    (outside / "app" / "Dockerfile").write_text("FROM scratch\n")
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    toml = APP.replace('dir = "app"', 'dir = "../elsewhere/app"')
    (project_dir / "containers.toml").write_text(toml)
    config.load.cache_clear()
    with pytest.raises(DockyardError, match="images.app.dir: .* is outside the project's directory"):
        config.load(project_dir / "containers.toml")
    (project_dir / "containers.toml").write_text(toml + "outside_project = true\n")
    config.load.cache_clear()
    assert config.load(project_dir / "containers.toml").image("app").dir == project_dir / "../elsewhere/app"


def test_weakening_settings_are_warned_about(tmp_path):
    project = load(tmp_path, APP + """[images.app.run]
ports = ["0.0.0.0:8080:80", "127.0.0.1:8081:81", "[::1]:8082:82"]
privileged = true
volumes = ["/var/run/docker.sock:/var/run/docker.sock"]  # a link into /run: said as the socket it is
cap_add = ["SETUID", "SYS_ADMIN"]
no_new_privileges = false
""")
    found = config.warnings(project)
    assert found == [
        "images.app.run.ports: 0.0.0.0:8080->80/tcp is reachable from other machines (not a loopback address)",
        "images.app.run.privileged: the container gets every capability and device of the host",
        "images.app.run.volumes[0]: /run/docker.sock is an engine's socket: the container controls the engine "
        "(':ro' does not protect it: a read-only bind of a socket still accepts API writes)",
        "images.app.run.cap_add: SYS_ADMIN beyond Docker's default capabilities",
        "images.app.run.no_new_privileges: false lets setuid files raise privileges",
    ]



@pytest.fixture
def engine_socket():
    """A listening unix socket named like an engine's, in a directory of its own (short: a
    socket's path is limited to 108 bytes)."""
    import shutil
    import socket
    import tempfile
    from pathlib import Path

    directory = Path(tempfile.mkdtemp(prefix="dy-sock-", dir="/tmp"))
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(directory / "podman.sock"))
    yield directory / "podman.sock"
    server.close()
    shutil.rmtree(directory)


@pytest.mark.parametrize("source, said", [
    ("/", "/ holds the engine socket /run/docker.sock"),
    ("/run", "/run holds the engine socket /run/docker.sock"),
    ("/var/run", "/run holds the engine socket /run/docker.sock"),  # a link to /run, resolved
    ("SOCKET", "SOCKET is a socket, perhaps an engine's"),
    ("SOCKET_DIR", "SOCKET_DIR holds the socket podman.sock, perhaps an engine's"),
])
def test_a_bind_that_reaches_an_engine_socket_is_warned_about_read_only_or_not(tmp_path, engine_socket, source,
                                                                                said):
    paths = {"SOCKET_DIR": str(engine_socket.parent), "SOCKET": str(engine_socket)}
    for placeholder, path in paths.items():
        source, said = source.replace(placeholder, path), said.replace(placeholder, path)
    project = load(tmp_path, APP + f'[images.app.run]\nvolumes = ["./data:/data", "cache:/cache", "{source}:/host:ro"]\n')
    assert config.warnings(project) == [
        f"images.app.run.volumes[2]: {said}: the container controls the engine "
        "(':ro' does not protect it: a read-only bind of a socket still accepts API writes)"]


def test_a_bind_inside_an_engines_socket_directory_is_warned_about():
    from pathlib import Path

    # The loader wants the source to exist; the rule itself needs no engine on this machine.
    assert config.engine_socket_exposure(Path("/run/containerd/s/1234")) == \
        "is inside /run/containerd, where an engine keeps its sockets"
    assert config.engine_socket_exposure(Path("/run/docker")) == "is where an engine keeps its sockets"
    assert config.engine_socket_exposure(Path("/srv/site")) is None


def test_the_hosts_network_is_warned_about_instead_of_its_ports(tmp_path):
    project = load(tmp_path, APP + '[images.app.run]\nnetwork = "host"\nports = ["0.0.0.0:8080:80"]\n')
    assert config.warnings(project) == [
        "images.app.run.network: 'host' shares the host's network: whatever the container listens on is reachable "
        "on every interface of this machine (ports and their addresses do not apply)"]


def test_a_deployed_image_warns_like_one_with_a_deploy_table(tmp_path):
    project = load(tmp_path, APP + '[images.app.run]\nports = ["8000:8000"]\n')
    assert config.warnings(project) == []  # `run` publishes on 127.0.0.1
    assert config.warnings(project, deployed=["app"]) == [config.swarm_ports_warning(project.image("app"))]
    assert "published on every interface of every node" in config.swarm_ports_warning(project.image("app"))


def test_on_the_hosts_network_the_servers_own_port_is_what_is_published(tmp_path):
    from dockyard.containers import RunOverrides, published_ports

    spec = load(tmp_path, APP + '[images.app.run]\nnetwork = "host"\nports = ["8080:80"]\n').image("app")
    assert [str(p) for p in published_ports(spec, RunOverrides())] == ["0.0.0.0:80->80/tcp"]
    with pytest.raises(DockyardError, match="--port: images.app.run.network is 'host'"):
        published_ports(spec, RunOverrides(port=9000))


# -- on the engine ------------------------------------------------------------------------


@pytest.mark.integration
def test_run_on_the_hosts_network_says_every_interface_not_only_localhost(project):
    project.config.write_text(project.config.read_text().replace('after = ["api"]', 'after = ["api"]\nnetwork = "host"'))
    result = project.inv("httpd.run", "--quiet-build")
    assert f"Point your browser to: http://localhost:{project.port} (published on every interface: other " \
           "machines reach it too)" in result.stdout
    assert "dockyard: warning: images.httpd.run.network: 'host'" in project.inv("config").stderr
    assert get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")[0] == 200
    ports = json.loads(project.inv("httpd.run", "--no-build", "--json").stdout)["ports"]
    assert [(p["host_ip"], p["host_port"]) for p in ports] == [("0.0.0.0", project.port)]


@pytest.mark.integration
def test_the_page_works_with_only_setuid_and_setgid(project, docker_client):
    project.inv("httpd.run", "--quiet-build")
    assert get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")[0] == 200
    host = docker_client.api.inspect_container(project.container("httpd"))["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and sorted(host["CapAdd"]) == ["KILL", "SETGID", "SETUID"]
    assert host["SecurityOpt"] == ["no-new-privileges:true"] and not host["Privileged"]
    assert host["LogConfig"]["Config"] == {"max-size": "10m", "max-file": "3"}
    # The server itself, after it switched to www-data, has no capability left.
    caps = project.inv("httpd.exec", "for s in /proc/[0-9]*/status; do "
                       "grep -q '^Name:.httpd$' $s && grep CapEff $s; done; true").stdout
    assert caps.split() == ["CapEff:", "0000000000000000"]


@pytest.mark.integration
def test_an_engine_whose_log_driver_takes_no_rotation_options_gets_a_container_without_them(nothing_chosen,
                                                                                           tmp_path):
    # dockyard sends json-file's rotation options without asking the engine's driver first
    # (a `docker info` per run); syslog refuses them, and the run is made again without.
    made = make_project(tmp_path / "project")
    with own_engine("--log-driver", "syslog", "--log-opt", "syslog-address=udp://127.0.0.1:9") as second:
        made.config.write_text(made.config.read_text().replace(
            "[project]\n", f'[project]\nengine = "{second.host}"\n', 1))
        assert Project(made.config).run("my-app", quiet_build=True)["exit_code"] == 0
        with second.client() as api:
            log_config = api.inspect_container(made.container("my-app"))["HostConfig"]["LogConfig"]
    assert log_config["Type"] == "syslog" and "max-size" not in (log_config.get("Config") or {}), log_config


@pytest.mark.integration
def test_a_stop_reaches_the_server_after_it_switched_user(project, docker_client):
    project.inv("httpd.run", "--quiet-build")
    name = project.container("httpd")
    docker_client.api.stop(name, timeout=5)
    state = docker_client.api.inspect_container(name)["State"]
    logs = docker_client.api.logs(name).decode()
    # 143: httpd ended on the SIGTERM its init passed on; without KILL the init exits 1 at once.
    assert (state["ExitCode"], "forwarding signal" in logs) == (143, False), logs


@pytest.mark.integration
@pytest.mark.parametrize("dropped", ["SETUID", "SETGID"])
def test_httpd_cannot_start_without_either_capability(project, dropped):
    kept = "SETGID" if dropped == "SETUID" else "SETUID"
    project.config.write_text(project.config.read_text().replace('cap_add = ["SETUID", "SETGID"]',
                                                                 f'cap_add = ["{kept}"]', 1))  # httpd's, the first
    result = project.inv("httpd.run", "--quiet-build", "--ready-timeout", "5", check=False)
    assert_clean_failure(result, project.container("httpd"))


@pytest.mark.integration
def test_limits_and_a_read_only_root_filesystem(project, docker_client):
    (project.root / "data").mkdir()
    project.config.write_text(project.config.read_text().replace('cap_add = ["SETUID", "SETGID"]', '''cap_add = ["SETUID", "SETGID"]
read_only = true
tmpfs = ["/tmp", "/scratch:size=1m,noexec"]
memory = "64m"
pids = 64
cpus = 0.5
volumes = ["./data:/data"]
logs = { max_size = "1m", max_files = 2 }''', 1))  # httpd's, the first
    project.inv("httpd.run", "--quiet-build")
    assert get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")[0] == 200
    host = docker_client.api.inspect_container(project.container("httpd"))["HostConfig"]
    assert (host["ReadonlyRootfs"], host["Memory"], host["PidsLimit"], host["NanoCpus"]) == \
        (True, 64 * 1024 * 1024, 64, 500_000_000)
    assert host["LogConfig"]["Config"] == {"max-size": "1m", "max-file": "2"}
    assert host["Tmpfs"] == {"/tmp": "", "/scratch": "size=1m,noexec"}  # PATH:OPTIONS, as docker run --tmpfs
    mounted = project.inv("httpd.exec", "grep ' /scratch ' /proc/mounts").stdout
    assert "noexec" in mounted and "size=1024k" in mounted, mounted
    assert_clean_failure(project.inv("httpd.exec", "touch /root-file", check=False), "exited with code 1")
    assert_clean_failure(project.inv("httpd.exec", "touch /data/x", check=False), "exited with code 1")
    project.inv("httpd.exec", "touch /tmp/x")
    status = json.loads(project.inv("httpd.status", "--json").stdout)
    assert status["state"] == "running"


@pytest.mark.integration
def test_config_and_status_warn_on_stderr_and_keep_stdout_clean(project):
    project.config.write_text(project.config.read_text().replace(
        f'ports = ["{project.port}:{project.port}"]', f'ports = ["0.0.0.0:{project.port}:{project.port}"]'))
    for argv in (["config", "--json"], ["status", "--json"]):
        result = project.inv(*argv)
        assert "dockyard: warning: images.httpd.run.ports" in result.stderr
        json.loads(result.stdout)


def test_a_byte_order_mark_is_not_content(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    path = tmp_path / "containers.toml"
    path.write_bytes(b"\xef\xbb\xbf" + APP.encode())
    config.load.cache_clear()
    assert config.load(path).name == "demo"


def test_labels_are_kept_as_written_or_refused(tmp_path):
    from dockyard.labels import label_instruction

    project = load(tmp_path, APP + '[images.app.labels]\nnote = "café $HOME \\"q\\""\n')
    assert dict(project.image("app").labels) == {"note": 'café $HOME "q"'}
    assert label_instruction({"note": 'café $HOME "q"'}) == 'LABEL "note"="café \\$HOME \\"q\\""'
    with pytest.raises(DockyardError, match="images.app.labels.note: a label cannot hold a line break"):
        load(tmp_path, APP + '[images.app.labels]\nnote = "two\\nlines"\n')


@pytest.mark.integration
def test_labels_reach_the_image_as_written_and_changing_one_rebuilds(project, docker_client):
    toml = project.config.read_text()
    project.config.write_text(toml.replace('dir = "images/my-app"', 'dir = "images/my-app"\nlabels = { note = "café $HOME" }'))
    project.inv("my-app.build", "--quiet")
    assert docker_client.api.inspect_image(project.tags["my-app"])["Config"]["Labels"]["note"] == "café $HOME"
    project.config.write_text(toml.replace('dir = "images/my-app"', 'dir = "images/my-app"\nlabels = { note = "thé" }'))
    rebuilt = project.inv("my-app.build", "--quiet")
    assert f"built {project.tags['my-app']}" in rebuilt.stdout
    assert docker_client.api.inspect_image(project.tags["my-app"])["Config"]["Labels"]["note"] == "thé"
