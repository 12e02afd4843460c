"""Beyond one machine: build on one engine and run on another, through a registry, and an
engine reached over ssh. The second engine is the tests' own (own socket and data root); the
registry is Debian's docker-registry on loopback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import NO_ENGINE, assert_clean_failure, free_port, get, remove_project_objects

pytestmark = pytest.mark.integration

ENGINE_VARIABLES = ("DOCKYARD_ENGINE", "DOCKER_HOST", "DOCKER_CONTEXT", "INVOKE_DOCKYARD_ENGINE")


def environment(**variables: str) -> dict:
    """Ours, with no engine choice but the ones given."""
    return {k: v for k, v in os.environ.items() if k not in ENGINE_VARIABLES} | variables


def project_objects(api, name: str) -> list[str]:
    """What an engine holds of the project: its containers' names and its images' tags."""
    containers = [c["Names"][0] for c in api.containers(all=True, filters={"label": f"dockyard.owner={name}"})]
    images = [tag for image in api.images() for tag in image.get("RepoTags") or [] if tag.startswith(f"{name}/")]
    return containers + images


@pytest.fixture
def on_the_second_engine(project, engine):
    """The project's objects on the second engine are removed afterwards too."""
    yield engine
    with engine.client() as api:
        remove_project_objects(SimpleNamespace(api=api), project.name)


def test_built_and_pushed_here_then_pulled_and_run_there(project, registry, on_the_second_engine, docker_client):
    project.inv("build", "--quiet")
    project.inv("push", "--registry", registry)
    # DOCKYARD_ENGINE comes first; a DOCKER_HOST that points nowhere proves it is not asked.
    there = environment(DOCKYARD_ENGINE=on_the_second_engine.host, DOCKER_HOST=NO_ENGINE)
    pulled = project.inv("pull", "--registry", registry, env=there)
    assert f"httpd: pulled {registry}/{project.tags['httpd']} as {project.tags['httpd']}" in pulled.stdout
    project.inv("httpd.run", "--no-build", env=there)

    status, body = get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")
    assert status == 200 and "Hello, World!" in body
    with on_the_second_engine.client() as api:
        assert api.inspect_container(project.container("httpd"))["State"]["Running"]
    assert not docker_client.api.containers(all=True, filters={"label": f"dockyard.owner={project.name}"})
    shown = project.inv("httpd.status", env=there).stdout
    assert f"engine: {on_the_second_engine.host}, chosen by DOCKYARD_ENGINE" in shown
    project.inv("httpd.stop", env=there)


def without_the_default_socket(*args: str) -> list[str]:
    """A command run where /var/run/docker.sock is /dev/null (a private mount namespace):
    anything that assumes the default socket fails."""
    script = 'mount --bind /dev/null /var/run/docker.sock && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *args]


def test_a_build_and_run_on_the_second_engine_never_touch_the_default_socket(project, on_the_second_engine,
                                                                              docker_client):
    env = environment(DOCKER_HOST=on_the_second_engine.host)
    ran = subprocess.run(without_the_default_socket(sys.executable, "-m", "invoke", "httpd.run"), cwd=project.root,
                         env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    status, body = get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")
    assert status == 200 and "Hello, World!" in body

    with on_the_second_engine.client() as api:
        there = project_objects(api, project.name)
    assert f"/{project.container('httpd')}" in there and project.tags["httpd"] in there
    assert project_objects(docker_client.api, project.name) == []
    # The same command, with the engine unusable, really is refused there: the check is real.
    refused = subprocess.run(without_the_default_socket("docker", "-H", "unix:///var/run/docker.sock", "info"),
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0



def test_a_tcp_engine_that_refuses_the_connection_is_one_line_naming_it(project):
    refusing = f"tcp://127.0.0.1:{free_port()}"
    result = project.inv("httpd.status", env=environment(DOCKYARD_ENGINE=refusing), check=False, timeout=60)
    assert_clean_failure(result, refusing, "connection refused")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr

# -- an engine over ssh: Debian's openssh-server on loopback, with throwaway keys -------------

SSHD = "/usr/sbin/sshd"


@dataclass
class SshServer:
    port: int
    bin: Path  # first on PATH: an `ssh` that uses only the throwaway key and known hosts

    @property
    def engine(self) -> str:
        return f"ssh://root@127.0.0.1:{self.port}"

    def env(self, **variables: str) -> dict:
        return environment(PATH=f"{self.bin}:{os.environ['PATH']}", **variables)


@pytest.fixture(scope="session")
def ssh_server():
    """sshd on 127.0.0.1:PORT with its own config, host key and one authorized throwaway key,
    all in a temporary directory; the user's ~/.ssh and /etc/ssh are never read or changed."""
    if not Path(SSHD).exists():
        pytest.fail("the ssh engine test needs sshd: apt-get install openssh-server", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="dy-sshd-"))
    port = free_port()
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / key)], check=True)
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {(root / 'host_key.pub').read_text()}")
    (root / "sshd_config").write_text(textwrap.dedent(f"""\
        ListenAddress 127.0.0.1:{port}
        HostKey {root / 'host_key'}
        PidFile {root / 'sshd.pid'}
        AuthorizedKeysFile {root / 'authorized_keys'}
        PermitRootLogin prohibit-password
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        UsePAM no
        StrictModes no
        """))
    (root / "ssh_config").write_text(textwrap.dedent(f"""\
        Host *
          IdentityFile {root / 'client_key'}
          IdentitiesOnly yes
          UserKnownHostsFile {root / 'known_hosts'}
          GlobalKnownHostsFile /dev/null
          StrictHostKeyChecking yes
        """))
    bin_dir = root / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {root / "ssh_config"} "$@"\n')
    (bin_dir / "ssh").chmod(0o755)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    with (root / "sshd.log").open("w") as log:
        process = subprocess.Popen([SSHD, "-f", str(root / "sshd_config"), "-D", "-e"], stdout=log, stderr=log)
    server = SshServer(port, bin_dir)
    try:
        deadline = time.monotonic() + 15
        while subprocess.run(["ssh", "-p", str(port), "root@127.0.0.1", "true"], env=server.env(),
                             capture_output=True, timeout=15).returncode != 0:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not let the test in: {(root / 'sshd.log').read_text()[-800:]}", pytrace=False)
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def test_an_ssh_engine_builds_and_runs_the_example(project, ssh_server, docker_client):
    env = ssh_server.env(DOCKYARD_ENGINE=ssh_server.engine)
    ran = project.inv("httpd.build", "httpd.run", env=env)
    assert "Point your browser to" in ran.stdout
    status, body = get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")
    assert status == 200 and "Hello, World!" in body
    # The engine behind that sshd is this machine's: the container is there.
    assert docker_client.api.inspect_container(project.container("httpd"))["State"]["Running"]
    shown = project.inv("httpd.status", env=env).stdout
    assert f"engine: {ssh_server.engine}, chosen by DOCKYARD_ENGINE" in shown
    project.inv("httpd.stop", env=env)


def test_an_ssh_engine_whose_sshd_is_not_there_is_one_line_naming_it(project, ssh_server):
    nobody = f"ssh://root@127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = project.inv("httpd.status", env=ssh_server.env(DOCKYARD_ENGINE=nobody), check=False, timeout=120)
    assert time.monotonic() - started < 30
    assert_clean_failure(result, nobody, "Connection refused")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# -- an image on an engine of its own -------------------------------------------------------


def split_across_engines(project, other: str) -> None:
    """api, and a base of its own (another copy of busybox), on ``other``; the rest where the
    project is. FROM lines stay on one engine: api's parent moves with it."""
    base_tag = f"{project.name}/base2:latest"
    dockerfile = project.root / "images/api/Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace(f"FROM {project.tags['busybox']}", f"FROM {base_tag}"))
    text = project.config.read_text().replace('dir = "images/api"\n', f'dir = "images/api"\nengine = "{other}"\n')
    project.config.write_text(text + textwrap.dedent(f"""
        [images.base2]
        tag = "{base_tag}"
        dir = "images/busybox"
        engine = "{other}"
        base = {{ rootfs = "rootfs.sh", changes = ['CMD ["sh"]'] }}
        """))


def test_an_image_with_an_engine_of_its_own_is_built_run_and_shown_there(project, on_the_second_engine,
                                                                        docker_client):
    other = on_the_second_engine.host
    split_across_engines(project, other)
    env = environment()
    project.inv("build", "--quiet", env=env)
    with on_the_second_engine.client() as api:
        there = project_objects(api, project.name)
    here = project_objects(docker_client.api, project.name)
    assert sorted(there) == sorted([f"{project.name}/api:latest", f"{project.name}/base2:latest"])
    assert project.tags["httpd"] in here and not any("api" in tag or "base2" in tag for tag in here)

    project.inv("api.run", "--detach", env=env)
    project.inv("httpd.run", env=env)
    status, body = get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")
    assert status == 200 and "Hello, World!" in body
    with on_the_second_engine.client() as api:
        assert api.inspect_container(project.container("api"))["State"]["Running"]
    rows = {row["image"]: row for row in json.loads(project.inv("status", "--json", env=env).stdout)}
    assert (rows["api"]["engine"], rows["api"]["state"]) == (other, "running")
    assert (rows["httpd"]["engine"], rows["httpd"]["state"]) == ("unix:///var/run/docker.sock", "running")
    shown = project.inv("status", env=env).stdout
    assert f"api engine: {other}, chosen by images.api.engine in {project.config}" in shown
    assert "httpd engine:" not in shown  # only the images that differ from the project's
    # An image's own status names its own engine, as its row in --json does.
    assert project.inv("api.status", env=env).stdout.splitlines()[0] == \
        f"engine: {other}, chosen by images.api.engine in {project.config}"
    assert project.inv("httpd.status", env=env).stdout.startswith("engine: unix:///var/run/docker.sock")
    resolved = json.loads(project.inv("config", "--json", env=env).stdout)
    assert resolved["images"]["base2"]["engine"]["address"] == other

    # The environment still comes first: everything goes where it says.
    refused = project.inv("api.status", env=environment(DOCKYARD_ENGINE=NO_ENGINE), check=False)
    assert_clean_failure(refused, NO_ENGINE, "DOCKYARD_ENGINE")
    # A project's services share one network: `up` across engines is one clear line.
    assert_clean_failure(project.inv("up", env=env, check=False), "different engines", "api")
    project.inv("api.stop", "httpd.stop", env=env)
