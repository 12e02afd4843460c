"""Fixtures and helpers shared by the tests: the real engine, throwaway copies of the example
project, and the checks every test module uses.

Integration tests (marked ``integration``) talk to the engine that DOCKER_HOST (or the
default socket) names. If none answers they fail, loudly: they never skip. Every other test
runs with DOCKER_HOST pointing nowhere, so one that touches an engine by mistake fails.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dockyard import config, engine_choice
from dockyard.engine import close as close_engine_clients
from dockyard.errors import DockyardError

from example_project import ISOLATED_TOML

REPO = Path(__file__).resolve().parent.parent
NO_ENGINE = "unix:///nonexistent/dockyard-tests-use-no-engine.sock"


@pytest.fixture(scope="session", autouse=True)
def own_cache_dir(tmp_path_factory):
    """Builds remember file digests in the user's cache directory: the tests' go to their own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session", autouse=True)
def interrupts_reach_the_processes_under_test():
    """The tests send SIGINT and SIGHUP to the `inv` processes they start, as Ctrl-C and a
    closed terminal do. A shell that starts pytest as a background job without job control
    (`cmd &` in a script) makes it ignore SIGINT, `nohup` makes it ignore SIGHUP, and an
    ignored signal stays ignored in every child: those processes would never see it. Give
    both back their actions so the children start with them."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield


@pytest.fixture
def nothing_chosen(monkeypatch, tmp_path):
    """No engine chosen by the environment or the Docker CLI, whose store is an empty one of
    our own (returned): containers.toml alone chooses. What was chosen, read or connected
    before is forgotten, before and after."""
    for name in ("DOCKYARD_ENGINE", "DOCKER_HOST", "DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    store = tmp_path / "docker-config"
    monkeypatch.setenv("DOCKER_CONFIG", str(store))
    forget_engine_choice()
    yield store
    forget_engine_choice()


def forget_engine_choice() -> None:
    engine_choice.reset()
    engine_choice._cli_current_context.cache_clear()
    config.load.cache_clear()
    close_engine_clients()


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


def inv_into_closed_pipe(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`inv ARGS` with stdout a pipe whose reader has already gone, as `| head -1` leaves it."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=root, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=timeout)
    finally:
        os.close(write_end)


def imported_modules(result: subprocess.CompletedProcess) -> set[str]:
    """The modules a `python -X importtime` run imported, from its stderr."""
    return {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


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
                api.remove_container(container["Id"], force=True, v=True)  # and a watch's volumes
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


# -- a second engine the fault tests may kill -------------------------------------------

DOCKERD = "/usr/sbin/dockerd"


@dataclass
class SecondEngine:
    """A Docker engine of the tests' own: its socket, data root, exec root and bridge under a
    temporary directory, so a test can kill it without touching the shared engine."""

    root: Path
    bridge: str
    process: subprocess.Popen | None = None
    options: tuple[str, ...] = ()  # more dockerd flags, e.g. a TLS listener on loopback

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of an `inv` that talks to this engine."""
        return {**os.environ, "DOCKER_HOST": self.host, **extra}

    def client(self):
        import docker

        return docker.APIClient(base_url=self.host, timeout=60)

    def start(self) -> None:
        if self.running():
            return
        self._forget_dead_containerd()
        (self.root / "daemon.json").write_text("{}")  # not /etc/docker/daemon.json
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [DOCKERD, "-H", self.host, "--config-file", str(self.root / "daemon.json"),
                 "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                 "--pidfile", str(self.root / "docker.pid"), "--bridge", self.bridge,
                 "--iptables=false", "--ip-masq=false", *self.options],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the test engine exited ({self.process.returncode}); see {self.log}:\n"
                            + self.log.read_text()[-2000:], pytrace=False)
            if self.answers():
                return
            time.sleep(0.1)
        pytest.fail(f"the test engine did not answer within 60 s; see {self.log}", pytrace=False)

    def _forget_dead_containerd(self) -> None:
        """A killed engine's containerd dies too, but may linger as a zombie where PID 1
        reaps nothing; the engine would take it for a live one and wait for its socket."""
        pidfile = self.root / "exec" / "containerd" / "containerd.pid"
        try:
            stat = Path(f"/proc/{int(pidfile.read_text())}/stat").read_text()
        except (OSError, ValueError):
            pidfile.unlink(missing_ok=True)
            return
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            pidfile.unlink()

    def answers(self) -> bool:
        """GET /_ping answered 200 (plain sockets: a client object would leak one per try)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(5)
                conn.connect(str(self.socket))
                conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: engine\r\n\r\n")
                return conn.recv(64).startswith(b"HTTP/1.0 200") or False
        except OSError:
            return False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no clean shutdown."""
        if self.running():
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """A clean shutdown: the engine stops its containers and its containerd."""
        if self.running():
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        # What a killed engine may leave: its containerd shims (found by our root in their
        # command line, so nothing of another engine is touched).
        for pid in _pids_mentioning(str(self.root)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _pids_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def _private_subnet() -> str:
    """A /24 in 10.0.0.0/8 that no route of the host uses."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    while True:
        prefix = f"10.{random.randint(200, 254)}.{random.randint(0, 255)}"
        if f"{prefix}." not in routes:
            return f"{prefix}.1/24"


@pytest.fixture(scope="session")
def second_engine(docker_client):
    """A Docker engine the tests start, kill and restart (never the shared one)."""
    with own_engine() as engine:
        yield engine


@contextlib.contextmanager
def own_engine(*options: str):
    """Within: a Docker engine of the tests' own, started with these extra dockerd flags.
    Its socket and data live in a short temporary directory (unix socket paths are limited
    to 108 bytes); it has its own bridge and leaves the host's iptables alone. Afterwards its
    containers are removed, it is stopped and its bridge deleted."""
    if os.geteuid() != 0 or not Path(DOCKERD).exists():
        pytest.fail(f"these tests start an engine of their own: they need root and {DOCKERD}",
                    pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="dy-engine-", dir="/tmp"))
    bridge = f"dyt{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    engine = SecondEngine(root, bridge, options=options)
    try:
        subprocess.run(["ip", "addr", "add", _private_subnet(), "dev", bridge], check=True)
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
        engine.start()
        yield engine
    finally:
        if engine.running():
            with contextlib.suppress(Exception), engine.client() as api:
                for container in api.containers(all=True):
                    api.remove_container(container["Id"], force=True, v=True)  # and a watch's volumes
                for network in api.networks():  # a stopped engine leaves its bridges on the host
                    if network["Name"] not in ("bridge", "host", "none"):
                        with contextlib.suppress(Exception):
                            api.remove_network(network["Id"])
        engine.stop()
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(f"{root}/")), reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(["ip", "link", "del", bridge], check=False)


@pytest.fixture
def engine(second_engine):
    """The second engine, running (a test before may have killed it)."""
    second_engine.start()
    yield second_engine
    second_engine.start()


# -- a registry on loopback (Debian's docker-registry) ----------------------------------

REGISTRY_BINARY = "/usr/bin/docker-registry"


def serve_registry(root: Path, port: int, read_only: bool = False) -> subprocess.Popen:
    maintenance = "\n  maintenance:\n    readonly:\n      enabled: true" if read_only else ""
    (root / "config.yml").write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}{maintenance}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n")
    with (root / "log").open("w") as log:
        process = subprocess.Popen([REGISTRY_BINARY, "serve", str(root / "config.yml")],
                                   stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"docker-registry did not answer on {port}: {(root / 'log').read_text()[-800:]}")
            time.sleep(0.1)


@pytest.fixture(scope="session")
def registry():
    """HOST:PORT of a registry on a free loopback port, for the whole session."""
    if not Path(REGISTRY_BINARY).exists():
        pytest.fail("docker-registry is not installed: apt-get install docker-registry", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="dockyard-registry-"))
    port = free_port()
    process = serve_registry(root, port)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(root, ignore_errors=True)


# -- containers.toml documents for the engine-free tests ------------------------------------

# The demo project the tests start from and add their own images and tables to: "demo" with
# an image "base" in dir base.
DEMO_PROJECT = """
[project]
name = "demo"

[images.base]
tag = "demo/base"
dir = "base"
"""
# base made from the rootfs.sh that write_project writes.
DEMO_ROOTFS_BASE = DEMO_PROJECT + """[images.base.base]
rootfs = "rootfs.sh"
"""
# and "app" on it: write_project's default Dockerfile is app's, FROM demo/base.
DEMO_APP = DEMO_ROOTFS_BASE + """
[images.app]
tag = "demo/app"
dir = "app"
"""


def write_project(root: Path, toml: str, dockerfiles: dict[str, str] | None = None) -> Path:
    dockerfiles = {"app": "FROM demo/base\nCMD true\n"} if dockerfiles is None else dockerfiles
    (root / "base").mkdir(exist_ok=True)
    (root / "base" / "rootfs.sh").write_text("exit 0\n")
    for directory, text in dockerfiles.items():
        (root / directory).mkdir(exist_ok=True)
        (root / directory / "Dockerfile").write_text(text)
    path = root / "containers.toml"
    path.write_text(textwrap.dedent(toml))
    config.load.cache_clear()
    return path


def load_error(tmp_path: Path, toml: str, dockerfiles: dict[str, str] | None = None) -> str:
    path = write_project(tmp_path, toml, dockerfiles)
    with pytest.raises(DockyardError) as caught:
        config.load(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    return message


def confined(argv: list[str], cwd: Path, *, memory: int = 768 * 1024 * 1024,
             timeout: float = 60) -> subprocess.CompletedProcess:
    """``argv`` (after the interpreter) in a child with at most ``memory`` bytes of address
    space: a test of a memory or hang bound fails with MemoryError or TimeoutExpired when the
    bound is gone, instead of taking the machine's memory or hanging the suite."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run([sys.executable, *argv], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limit)


def toml_string(text: str) -> str:
    """A TOML basic string: escapes for quotes, backslashes and control characters."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char < " " or char == "\x7f":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_text(document: dict[str, Any]) -> str:
    """A document as TOML: one line per top-level key, everything below as inline tables."""
    return "".join(f"{toml_string(key)} = {toml_value(value)}\n" for key, value in document.items())
