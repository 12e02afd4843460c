"""An engine reached over tcp:// with TLS, as the docker CLI reaches one: DOCKER_HOST with
DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, or a Docker context holding the TLS files. The engine
is the tests' own (own socket, data root and bridge) listening on 127.0.0.1 with --tlsverify;
its CA, server and client certificates are made here with the openssl program."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import (SecondEngine, assert_clean_failure, free_port, get, own_engine, remove_project_objects,
                      unique)

pytestmark = pytest.mark.integration

ENGINE_VARIABLES = ("DOCKYARD_ENGINE", "DOCKER_HOST", "DOCKER_CONTEXT", "INVOKE_DOCKYARD_ENGINE",
                    "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONFIG")


def environment(**variables: str) -> dict:
    """Ours, with no engine choice or TLS setting but the ones given."""
    return {k: v for k, v in os.environ.items() if k not in ENGINE_VARIABLES} | variables


# -- certificates ----------------------------------------------------------------------------


def openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True)
    assert done.returncode == 0, f"openssl {' '.join(args)}:\n{done.stderr}"


def make_ca(directory: Path, name: str) -> None:
    """ca.pem and ca-key.pem: a self-signed CA."""
    directory.mkdir(parents=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", str(directory / "ca-key.pem"), "-out", str(directory / "ca.pem"))


def issue(ca: Path, directory: Path, name: str, extensions: str) -> None:
    """cert.pem and key.pem in ``directory``, signed by the CA in ``ca``."""
    directory.mkdir(parents=True)
    (directory / "extensions").write_text(extensions + "\nsubjectKeyIdentifier=hash\n"
                                          "authorityKeyIdentifier=keyid\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", str(directory / "key.pem"), "-out", str(directory / "request.csr"))
    openssl("x509", "-req", "-in", str(directory / "request.csr"), "-days", "2", "-set_serial", f"0x{uuid.uuid4().hex}",
            "-CA", str(ca / "ca.pem"), "-CAkey", str(ca / "ca-key.pem"),
            "-extfile", str(directory / "extensions"), "-out", str(directory / "cert.pem"))


@dataclass
class TlsEngine:
    engine: SecondEngine  # its own unix socket is for the tests' checks and cleanup
    address: str          # tcp://127.0.0.1:PORT, TLS only
    certs: Path           # a client's DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem
    root: Path            # the CAs and certificates

    def env(self, **variables: str) -> dict:
        """An `inv` that reaches this engine as the docker CLI would, by the environment."""
        return self.with_ca_bundle(**{"DOCKER_HOST": self.address, "DOCKER_TLS_VERIFY": "1",
                                      "DOCKER_CERT_PATH": str(self.certs), **variables})

    def with_ca_bundle(self, **variables: str) -> dict:
        """``environment(**variables)`` where requests' CA bundle variables name a CA that did
        not sign the engine's certificate, as a company's bundle would not: the engine's own CA
        must still be the one checked."""
        bundle = str(self.root / "other-ca" / "ca.pem")
        return environment(REQUESTS_CA_BUNDLE=bundle, CURL_CA_BUNDLE=bundle, **variables)

    def cert_path(self, name: str, *, ca: str, client: str | None) -> Path:
        """A DOCKER_CERT_PATH that trusts ``ca``'s CA and presents ``client``'s certificate (None: none)."""
        directory = self.root / name
        if not directory.exists():
            directory.mkdir()
            shutil.copy(self.root / ca / "ca.pem", directory / "ca.pem")
            for file in ("cert.pem", "key.pem") if client else ():
                shutil.copy(self.root / client / file, directory / file)
        return directory


@pytest.fixture(scope="session")
def tls_engine(docker_client):
    """An engine of the tests' own on tcp://127.0.0.1:PORT that speaks only TLS and asks every
    client for a certificate its CA signed; stopped, and its bridge removed, afterwards."""
    if shutil.which("openssl") is None:
        pytest.fail("the TLS engine tests make certificates with openssl: apt-get install openssl", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="dy-tls-"))
    try:
        make_ca(root / "ca", "dockyard test CA")
        make_ca(root / "other-ca", "another CA")
        issue(root / "ca", root / "server", "127.0.0.1",
              "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth")
        issue(root / "ca", root / "client", "dockyard test client", "extendedKeyUsage=clientAuth")
        address = f"tcp://127.0.0.1:{free_port()}"
        with own_engine("-H", address, "--tlsverify", "--tlscacert", str(root / "ca/ca.pem"),
                        "--tlscert", str(root / "server/cert.pem"), "--tlskey", str(root / "server/key.pem")) as engine:
            made = TlsEngine(engine, address, root / "certs", root)
            made.cert_path("certs", ca="ca", client="client")
            yield made
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Contexts:
    config: str        # a DOCKER_CONFIG of the tests' own
    name: str          # a context with the CA, the client certificate and its key
    without_cert: str  # a context with the CA only
    unverified: str    # a context with the client certificate that does not check the engine's


@pytest.fixture(scope="session")
def tls_contexts(tls_engine) -> Contexts:
    """Docker contexts for the TLS engine, made by the docker CLI in a config directory of the
    tests' own (the machine's CLI config is never touched)."""
    contexts = Contexts(str(tls_engine.root / "docker-config"), unique("dytest-tls"), unique("dytest-tls-no-cert"),
                        unique("dytest-tls-unverified"))
    certs = tls_engine.certs
    client = f"cert={certs / 'cert.pem'},key={certs / 'key.pem'}"
    files = {contexts.name: f",ca={certs / 'ca.pem'},{client}", contexts.without_cert: f",ca={certs / 'ca.pem'}",
             contexts.unverified: f",{client},skip-tls-verify=true"}
    for name, tls in files.items():
        made = subprocess.run(["docker", "context", "create", name, "--docker", f"host={tls_engine.address}{tls}"],
                              env=environment(DOCKER_CONFIG=contexts.config), capture_output=True, text=True)
        assert made.returncode == 0, made.stderr
    return contexts


@pytest.fixture
def on_tls_engine(project, tls_engine):
    """The project's objects on the TLS engine are removed afterwards too."""
    yield tls_engine
    with tls_engine.engine.client() as api:
        remove_project_objects(SimpleNamespace(api=api), project.name)


def held(api, project) -> dict:
    """What an engine holds of the project: its containers' states by name, its image tags."""
    containers = {c["Names"][0].lstrip("/"): c["State"]
                  for c in api.containers(all=True, filters={"label": f"dockyard.owner={project.name}"})}
    tags = [t for image in api.images() for t in image.get("RepoTags") or [] if t.startswith(f"{project.name}/")]
    return {"containers": containers, "tags": sorted(tags)}


# -- through the environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH ---------------


def test_the_example_is_built_run_shown_and_stopped_on_a_tls_engine(project, on_tls_engine, docker_client):
    env = on_tls_engine.env()
    project.inv("httpd.build", env=env)
    ran = project.inv("httpd.run", env=env)
    assert "Point your browser to" in ran.stdout
    status, body = get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")
    assert status == 200 and "Hello, World!" in body
    with on_tls_engine.engine.client() as api:
        assert held(api, project)["containers"] == {project.container("httpd"): "running"}
        assert project.tags["httpd"] in held(api, project)["tags"]
    assert held(docker_client.api, project) == {"containers": {}, "tags": []}

    named = f"engine: {on_tls_engine.address}, chosen by DOCKER_HOST"
    shown = project.inv("httpd.status", env=env).stdout
    assert named in shown and "running" in shown
    assert named in project.inv("config", env=env).stdout

    project.inv("httpd.stop", env=env)
    with on_tls_engine.engine.client() as api:
        assert held(api, project)["containers"] == {project.container("httpd"): "exited"}


def test_exec_logs_attach_restart_and_rm_go_through_docker_py_on_a_tls_engine(project, on_tls_engine):
    """The tasks of a running container on an engine that is no local socket: docker-py
    carries them, TLS and all, and they answer as on the local socket."""
    env = on_tls_engine.env()
    project.inv("httpd.run", "--quiet-build", env=env)
    done = project.inv("httpd.exec", "echo out; echo err >&2; echo marker > /proc/1/fd/1", env=env)
    assert (done.stdout, done.stderr) == ("out\n", "err\n")
    assert project.inv("httpd.exec", "tr a-z A-Z", input="piped\n", env=env).stdout == "PIPED\n"
    assert "marker\n" in project.inv("httpd.logs", env=env).stdout
    assert project.inv("my-app.run", "--quiet-build", env=env).stdout == "Hello, World!\n"
    assert project.inv("my-app.start", "--attach", env=env).stdout == "Hello, World!\n"
    assert project.inv("my-app.run", "--", "tr", "a-z", "A-Z", input="attached\n", env=env).stdout == "ATTACHED\n"
    assert project.inv("httpd.restart", env=env).stdout.strip() == f"restarted {project.container('httpd')}"
    project.inv("httpd.rm", "--force", env=env)
    with on_tls_engine.engine.client() as api:
        assert project.container("httpd") not in held(api, project)["containers"]


def test_input_that_ends_while_output_streams_loses_none_of_it_on_a_tls_engine(project, on_tls_engine):
    """Our input's end over TLS (the close_notify alert) must not cost any output that is
    arriving at that moment: the container prints lines without a pause while our stdin
    closes in the middle of it, and every line comes through. (OpenSSL 3 ended the
    connection when output came while Python's unwrap waited for the engine's alert: about
    half the tries lost all but the first few KiB, with exit status 0. Four tries.)"""
    env = on_tls_engine.env()
    project.inv("httpd.run", "--quiet-build", env=env)
    lines = 2_000_000
    for _ in range(4):
        with subprocess.Popen([sys.executable, "-m", "invoke", "httpd.exec", f"seq 1 {lines}"], cwd=project.root,
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as exe:
            first = exe.stdout.readline()  # the output is flowing
            exe.stdin.close()  # ...and our input ends in the middle of it
            rest, errors = exe.stdout.read(), exe.stderr.read()
        assert exe.wait() == 0, errors
        output = (first + rest).decode()
        assert output.count("\n") == lines and output.endswith(f"\n{lines}\n"), (len(output), output[-40:])


# -- through a Docker context that holds the TLS files ------------------------------------------


def test_a_tls_context_is_followed_from_docker_context_and_from_containers_toml(project, on_tls_engine,
                                                                               tls_contexts, docker_client):
    config, name = tls_contexts.config, tls_contexts.name
    by_variable = on_tls_engine.with_ca_bundle(DOCKER_CONFIG=config, DOCKER_CONTEXT=name)
    built = project.inv("busybox.build", env=by_variable)
    assert "busybox" in built.stdout
    with on_tls_engine.engine.client() as api:
        assert held(api, project)["tags"] == [project.tags["busybox"]]
    assert held(docker_client.api, project)["tags"] == []
    shown = project.inv("busybox.status", env=by_variable).stdout
    assert f"engine: {on_tls_engine.address} (Docker context '{name}'), chosen by DOCKER_CONTEXT" in shown

    project.config.write_text(project.config.read_text().replace(
        f'name = "{project.name}"', f'name = "{project.name}"\nengine = "{name}"', 1))
    by_project = on_tls_engine.with_ca_bundle(DOCKER_CONFIG=config)
    # Up to date: the image is found where the context points, not on the default engine.
    again = project.inv("busybox.build", env=by_project)
    assert "up to date" in again.stdout, again.stdout
    shown = project.inv("config", env=by_project).stdout
    assert (f"engine: {on_tls_engine.address} (Docker context '{name}'), chosen by project.engine "
            f"in {project.config}") in shown


def test_a_context_that_skips_verification_says_so_once_and_is_not_checked_against_requests_ca_bundle(
        project, tls_engine, tls_contexts):
    env = tls_engine.with_ca_bundle(DOCKER_CONFIG=tls_contexts.config, DOCKER_CONTEXT=tls_contexts.unverified)
    shown = project.inv("busybox.status", "httpd.status", env=env)  # a request or more each
    assert f"engine: {tls_engine.address} (Docker context '{tls_contexts.unverified}')" in shown.stdout
    # One line, once; urllib3's InsecureRequestWarning (a block per request) is not shown.
    assert shown.stderr.splitlines() == [
        f"dockyard: warning: the Docker engine at {tls_engine.address} (Docker context '{tls_contexts.unverified}') "
        "is reached over TLS without checking its certificate (the context has skip-tls-verify)"], shown.stderr


# -- failures: one line naming the engine, saying that TLS failed --------------------------------


@pytest.mark.parametrize("client, why", [
    ("no client certificate", "ca-only has no cert.pem and key.pem"),
    ("the wrong CA", "certificate verify failed"),
    ("no TLS", "the engine speaks only TLS and was sent plain HTTP"),
    ("a context without a client certificate", "the engine refused this client"),
])
def test_a_tls_engine_the_client_cannot_talk_to_is_one_line_naming_it(project, tls_engine, tls_contexts, client, why):
    if client == "no client certificate":
        env = tls_engine.env(DOCKER_CERT_PATH=str(tls_engine.cert_path("ca-only", ca="ca", client=None)))
    elif client == "the wrong CA":
        env = tls_engine.env(DOCKER_CERT_PATH=str(tls_engine.cert_path("wrong-ca", ca="other-ca", client="client")))
    elif client == "no TLS":
        env = environment(DOCKER_HOST=tls_engine.address)
    else:
        env = tls_engine.with_ca_bundle(DOCKER_CONFIG=tls_contexts.config, DOCKER_CONTEXT=tls_contexts.without_cert)
    result = project.inv("httpd.status", env=env, check=False, timeout=60)
    assert_clean_failure(result, tls_engine.address, "TLS failed (", why)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_tls_client_sent_to_a_plain_http_engine_is_told_so(project, tls_engine):
    """A listener on loopback that answers in plain HTTP, as an engine without --tlsverify does."""
    import http.server
    import threading

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"tcp://127.0.0.1:{server.server_address[1]}"
        result = project.inv("httpd.status", env=tls_engine.env(DOCKER_HOST=address), check=False, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert_clean_failure(result, address, "TLS failed (the engine does not speak TLS", "unset DOCKER_TLS_VERIFY")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# -- TLS from the environment is always checked: an impostor is sent nothing ---------------------


@dataclass
class Impostor:
    address: str                                          # tcp://127.0.0.1:PORT
    received: bytearray = field(default_factory=bytearray)  # every byte sent to it after a handshake


@contextlib.contextmanager
def impostor(tls_engine: TlsEngine, signed_by: str):
    """Within: a TLS server on loopback that is not the engine: its certificate, for 127.0.0.1,
    is signed by itself or by another CA than the engine's. A client that completes the
    handshake has its bytes kept and relayed to the engine's own socket, as a man in the middle
    would relay them, so a client that does not check the certificate gets its answers."""
    directory = tls_engine.root / f"impostor-{signed_by.replace(' ', '-')}"
    if not directory.exists():
        if signed_by == "itself":
            directory.mkdir()
            openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(directory / "key.pem"),
                    "-out", str(directory / "cert.pem"))
        else:
            issue(tls_engine.root / "other-ca", directory, "127.0.0.1",
                  "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    made = Impostor(f"tcp://127.0.0.1:{listener.getsockname()[1]}")

    def pipe(source: socket.socket, target: socket.socket, keep: bytearray | None) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if keep is not None:
                    keep.extend(data)
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def relay(client: socket.socket) -> None:
        client.settimeout(60)
        try:
            client = tls.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):  # the client refused the certificate
            client.close()
            return
        with client, socket.socket(socket.AF_UNIX) as engine:
            engine.connect(str(tls_engine.engine.socket))
            answers = threading.Thread(target=pipe, args=(engine, client, None), daemon=True)
            answers.start()
            pipe(client, engine, made.received)
            answers.join(timeout=60)

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                threading.Thread(target=relay, args=(client,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield made
    finally:
        listener.close()


def registry_credentials(directory: Path, registry: str) -> str:
    """A DOCKER_CONFIG whose config.json has a password for ``registry``, as `docker login` leaves it."""
    directory.mkdir()
    auth = base64.b64encode(b"builder:the-registry-password").decode()
    (directory / "config.json").write_text(json.dumps({"auths": {registry: {"auth": auth}}}))
    return str(directory)


@pytest.mark.parametrize("signed_by", ["itself", "another CA"])
def test_an_impostor_engine_is_sent_nothing_when_docker_tls_verify_is_unset_or_empty(project, on_tls_engine,
                                                                                      tmp_path, signed_by):
    """DOCKER_CERT_PATH without DOCKER_TLS_VERIFY: docker-py would talk TLS without checking the
    engine's certificate, and send a push's X-Registry-Auth to whoever answered."""
    project.inv("busybox.build", env=environment(DOCKER_HOST=f"unix://{on_tls_engine.engine.socket}"))
    registry = f"127.0.0.1:{free_port()}"
    config = registry_credentials(tmp_path / "docker-config", registry)
    with impostor(on_tls_engine, signed_by) as server:
        for verify in ({}, {"DOCKER_TLS_VERIFY": ""}):
            env = environment(DOCKER_HOST=server.address, DOCKER_CERT_PATH=str(on_tls_engine.certs),
                              DOCKER_CONFIG=config, **verify)
            for task in ("busybox.push", "busybox.status"):
                args = ("--registry", registry) if task == "busybox.push" else ()
                result = project.inv(task, *args, env=env, check=False, timeout=120)
                credentials = b"X-Registry-Auth" in server.received
                assert not server.received, f"{task} {verify} sent over TLS that was not checked (credentials " \
                                            f"among it: {credentials}):\n{bytes(server.received[:300])!r}"
                assert_clean_failure(result, server.address, "TLS failed (certificate verify failed")
                assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_docker_cert_path_alone_means_tls_checked_against_its_ca(project, tls_engine):
    """As the docker CLI's --tlsverify: the engine's certificate is checked against DOCKER_CERT_PATH's
    ca.pem however DOCKER_TLS_VERIFY is set; without a word about urllib3's warnings."""
    wrong = str(tls_engine.cert_path("wrong-ca", ca="other-ca", client="client"))
    for verify in ({}, {"DOCKER_TLS_VERIFY": ""}):
        env = environment(DOCKER_HOST=tls_engine.address, DOCKER_CERT_PATH=str(tls_engine.certs), **verify)
        shown = project.inv("busybox.status", env=env)
        assert f"engine: {tls_engine.address}, chosen by DOCKER_HOST" in shown.stdout
        assert shown.stderr == ""

        env = environment(DOCKER_HOST=tls_engine.address, DOCKER_CERT_PATH=wrong, **verify)
        result = project.inv("busybox.status", env=env, check=False, timeout=60)
        assert_clean_failure(result, tls_engine.address, "TLS failed (certificate verify failed")
        assert "InsecureRequestWarning" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
