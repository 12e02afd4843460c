"""dockyard.artifacts against the real engine: round trips, CLI interop, bad input, SIGINT.

Everything made here carries the label ``dytest.run=<prefix>`` and a tag under
``dytest-<random>/``; teardown force-removes exactly what the tests tracked.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import secrets
import signal
import stat
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from dockyard import artifacts
from dockyard.errors import DockyardError

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[1]
APPLETS = ["sh", "ls", "cat", "echo", "sleep", "httpd", "head", "mkdir", "rm"]
BIG_FILE_BYTES = 200 * 1024 * 1024


class Tracker:
    """What the tests created, removed in teardown (containers first, then images)."""

    def __init__(self, client) -> None:
        self.client = client
        self.containers: list[str] = []
        self.images: list[str] = []

    def container(self, image: str, command: list[str]) -> str:
        """Run ``command`` to completion in a kept container; return its id."""
        container = self.client.containers.create(image, command)
        self.containers.append(container.id)
        container.start()
        assert container.wait(timeout=120)["StatusCode"] == 0
        return container.id

    def image(self, reference: str) -> str:
        image_id = self.client.images.get(reference).id
        self.images.append(image_id)
        return image_id

    def remove_all(self) -> None:
        import docker.errors

        for container_id in self.containers:
            try:
                self.client.api.remove_container(container_id, force=True, v=True)
            except docker.errors.NotFound:
                pass
        for image_id in reversed(self.images):
            try:
                self.client.api.remove_image(image_id, force=True)
            except docker.errors.NotFound:
                pass


@pytest.fixture(scope="module")
def client(docker_client):
    return docker_client


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"dytest-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def tracker(client) -> Iterator[Tracker]:
    tracked = Tracker(client)
    yield tracked
    tracked.remove_all()


@pytest.fixture(scope="module")
def base_image(client, tracker, prefix, tmp_path_factory) -> str:
    """A busybox image imported with the docker CLI from a hand-made rootfs."""
    rootfs = tmp_path_factory.mktemp("rootfs")
    (rootfs / "bin").mkdir()
    (rootfs / "etc").mkdir()
    (rootfs / "tmp").mkdir()
    (rootfs / "bin/busybox").write_bytes(Path("/usr/bin/busybox").read_bytes())
    (rootfs / "bin/busybox").chmod(0o755)
    for applet in APPLETS:
        (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    archive = tmp_path_factory.mktemp("base") / "rootfs.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True)
    reference = f"{prefix}/base:latest"
    subprocess.run(["docker", "import", "--change", f"LABEL dytest.run={prefix}",
                    str(archive), reference], check=True, capture_output=True)
    tracker.image(reference)
    return reference


@pytest.fixture(scope="module")
def big_container(tracker, base_image) -> str:
    """A stopped container holding 200 MiB of random bytes (incompressible, slow to copy)."""
    return tracker.container(
        base_image, ["sh", "-c", f"head -c {BIG_FILE_BYTES} /dev/urandom > /big.bin"])


@pytest.fixture(scope="module")
def big_image(client, tracker, prefix, big_container) -> str:
    reference = f"{prefix}/big:latest"
    client.api.commit(big_container, repository=f"{prefix}/big", tag="latest")
    tracker.image(reference)
    return reference


def make_image(client, tracker: Tracker, base: str, reference: str, content: str) -> str:
    """Commit a container that wrote ``content`` to /marker.txt as ``reference``; return its id."""
    container = tracker.container(base, ["sh", "-c", f"echo {content} > /marker.txt"])
    repository, tag = reference.rsplit(":", 1)
    client.api.commit(container, repository=repository, tag=tag)
    return tracker.image(reference)


def run_output(client, image: str, command: list[str]) -> bytes:
    return client.containers.run(image, command, remove=True)


def our_images(client, prefix: str) -> dict[str, list[str]]:
    """id -> tags of every image from this run (by label), to compare before and after.

    Scoped to our label because other test runs share the engine and change
    their own images meanwhile.
    """
    images = client.images.list(all=True, filters={"label": f"dytest.run={prefix}"})
    return {image.id: sorted(image.tags) for image in images}


def part_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(".*.part"))


def cli(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout


# --- round trips -------------------------------------------------------------


@pytest.mark.parametrize("name", ["fs.tar", "fs.tar.gz"])
def test_export_then_import_keeps_files_written_in_the_container(
        client, tracker, prefix, base_image, tmp_path, name):
    container = tracker.container(base_image, ["sh", "-c", "echo exported-$((6*7)) > /marker.txt"])
    target = tmp_path / name

    exported = artifacts.export_container(container, target, progress=False)

    assert exported.kind == "export" and exported.ids == [container]
    assert exported.size_bytes == target.stat().st_size > 0
    assert part_files(tmp_path) == []
    if name.endswith(".gz"):
        assert target.read_bytes()[:2] == b"\x1f\x8b"
        subprocess.run(["gzip", "-t", str(target)], check=True)
    reference = f"{prefix}/exported-{name.replace('.', '-')}:1"
    imported = artifacts.import_image(
        target, tag=reference, changes=['CMD ["cat", "/marker.txt"]'],
        message="from dockyard", labels={"dytest.run": prefix, "dytest.note": 'a "b" c'},
        progress=False)
    image_id = tracker.image(reference)
    assert imported.ids == [image_id] and imported.tags == [reference]
    assert imported.size_bytes == target.stat().st_size
    info = client.api.inspect_image(reference)
    assert info["Comment"] == "from dockyard"
    assert info["Config"]["Labels"]["dytest.note"] == 'a "b" c'
    assert run_output(client, reference, []) == b"exported-42\n"


@pytest.mark.parametrize("name", ["images.tar", "images.tar.gz"])
def test_save_remove_load_restores_image_with_its_tag_and_id(
        client, tracker, prefix, base_image, tmp_path, name):
    reference = f"{prefix}/saved-{name.replace('.', '-')}:v1"
    image_id = make_image(client, tracker, base_image, reference, "saved-content")
    target = tmp_path / name

    saved = artifacts.save_image(reference, target, progress=False)
    assert saved.ids == [image_id] and saved.tags == [reference]
    assert saved.size_bytes == target.stat().st_size > 0
    client.api.remove_image(reference)
    assert reference not in str(cli("images", "--format", "{{.Repository}}:{{.Tag}}"))

    loaded = artifacts.load_image(target, progress=False)

    assert loaded.tags == [reference] and loaded.ids == [image_id]
    assert client.images.get(reference).id == image_id
    assert run_output(client, reference, ["cat", "/marker.txt"]) == b"saved-content\n"


def test_save_several_images_into_one_archive_and_load_them_all(
        client, tracker, prefix, base_image, tmp_path):
    first = f"{prefix}/multi-a:1"
    second = f"{prefix}/multi-b:1"
    ids = {make_image(client, tracker, base_image, first, "a"),
           make_image(client, tracker, base_image, second, "b")}
    target = tmp_path / "two.tar"

    saved = artifacts.save_image([first, second], target, progress=False)
    assert set(saved.ids) == ids and sorted(saved.tags) == [first, second]
    client.api.remove_image(first)
    client.api.remove_image(second)
    loaded = artifacts.load_image(target, progress=False)

    assert sorted(loaded.tags) == [first, second] and set(loaded.ids) == ids
    assert run_output(client, second, ["cat", "/marker.txt"]) == b"b\n"


def test_commit_keeps_the_change_and_applies_message_author_cmd_and_labels(
        client, tracker, prefix, base_image):
    container = tracker.container(base_image, ["sh", "-c", "echo committed > /state.txt"])

    result = artifacts.commit_container(
        container, repository=f"{prefix}/committed", tag="v2",
        message="saved state", author="Dock Yard <dy@example.com>",
        changes=['CMD ["cat", "/state.txt"]'], labels={"dytest.note": "two words"})

    image_id = tracker.image(f"{prefix}/committed:v2")
    assert result.ids == [image_id] and result.tags == [f"{prefix}/committed:v2"]
    assert result.to_json()["kind"] == "commit" and result.size_bytes > 0
    info = client.api.inspect_image(image_id)
    assert info["Comment"] == "saved state"
    assert info["Author"] == "Dock Yard <dy@example.com>"
    assert info["Config"]["Cmd"] == ["cat", "/state.txt"]
    assert info["Config"]["Labels"] == {"dytest.run": prefix, "dytest.note": "two words"}
    assert run_output(client, image_id, []) == b"committed\n"


def test_export_to_stdout_and_import_from_stdin(client, tracker, prefix, base_image, tmp_path):
    container = tracker.container(base_image, ["sh", "-c", "echo piped > /marker.txt"])
    archive = tmp_path / "piped.tar"
    reference = f"{prefix}/piped:1"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with archive.open("wb") as stdout:
        subprocess.run([sys.executable, "-c", (
            "from dockyard.artifacts import export_container; "
            f"export_container({container!r}, '-')")],
            stdout=stdout, env=env, check=True)
    assert tarfile.is_tarfile(archive)
    with archive.open("rb") as stdin:
        subprocess.run([sys.executable, "-c", (
            "from dockyard.artifacts import import_image; "
            f"import_image('-', tag={reference!r}, "
            f"labels={{'dytest.run': {prefix!r}}})")],
            stdin=stdin, env=env, check=True)
    tracker.image(reference)
    assert run_output(client, reference, ["cat", "/marker.txt"]) == b"piped\n"


# --- docker CLI interop ------------------------------------------------------


@pytest.mark.parametrize("name", ["fs.tar", "fs.tar.gz"])
def test_docker_import_accepts_our_export(client, tracker, prefix, base_image, tmp_path, name):
    container = tracker.container(base_image, ["sh", "-c", "echo ours > /marker.txt"])
    target = tmp_path / name
    artifacts.export_container(container, target, progress=False)
    reference = f"{prefix}/cli-imported-{name.replace('.', '-')}:1"

    cli("import", "--change", f"LABEL dytest.run={prefix}", str(target), reference)

    tracker.image(reference)
    assert run_output(client, reference, ["cat", "/marker.txt"]) == b"ours\n"


def test_our_import_accepts_docker_export(client, tracker, prefix, base_image, tmp_path):
    container = tracker.container(base_image, ["sh", "-c", "echo theirs > /marker.txt"])
    target = tmp_path / "cli.tar"
    cli("export", "-o", str(target), container)
    reference = f"{prefix}/from-cli-export:1"

    artifacts.import_image(target, tag=reference, labels={"dytest.run": prefix},
                           progress=False)

    tracker.image(reference)
    assert run_output(client, reference, ["cat", "/marker.txt"]) == b"theirs\n"


@pytest.mark.parametrize("name", ["images.tar", "images.tar.gz"])
def test_docker_load_accepts_our_save(client, tracker, prefix, base_image, tmp_path, name):
    reference = f"{prefix}/for-cli-load-{name.replace('.', '-')}:1"
    image_id = make_image(client, tracker, base_image, reference, "x")
    target = tmp_path / name
    artifacts.save_image(reference, target, progress=False)
    client.api.remove_image(reference)

    output = cli("load", "-i", str(target))

    assert reference in output
    assert client.images.get(reference).id == image_id


def test_our_load_accepts_docker_save(client, tracker, prefix, base_image, tmp_path):
    reference = f"{prefix}/from-cli-save:1"
    image_id = make_image(client, tracker, base_image, reference, "y")
    target = tmp_path / "cli-save.tar"
    cli("save", "-o", str(target), reference)
    client.api.remove_image(reference)

    loaded = artifacts.load_image(target, progress=False)

    assert loaded.tags == [reference] and loaded.ids == [image_id]
    assert run_output(client, reference, ["cat", "/marker.txt"]) == b"y\n"


# --- bad input for import and load --------------------------------------------


def _valid_tar_bytes() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        data = os.urandom(64 * 1024)
        member = tarfile.TarInfo("data.bin")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def _bad_source(kind: str, tmp_path: Path) -> tuple[Path, str]:
    """A bad archive of ``kind`` and a word the error message must contain."""
    path = tmp_path / f"bad-{kind}.tar"
    if kind == "missing":
        return path, "no such file"
    if kind == "directory":
        path.mkdir()
        return path, "directory"
    if kind == "empty":
        path.write_bytes(b"")
        return path, "empty"
    if kind == "truncated":
        path.write_bytes(_valid_tar_bytes()[:40_000])
        return path, "truncated"
    if kind == "not-a-tar":
        path.write_bytes(random.Random(1).randbytes(100_000))
        return path, "not a tar"
    if kind == "corrupt-gzip":
        path = tmp_path / "bad.tar.gz"
        path.write_bytes(b"\x1f\x8b\x08\x00" + random.Random(2).randbytes(5000))
        return path, "gzip"
    if kind == "truncated-gzip":  # passes the pre-check: the engine has to say no
        path = tmp_path / "cut.tar.gz"
        path.write_bytes(gzip.compress(_valid_tar_bytes(), 1)[:30_000])
        return path, "unexpected EOF"
    if kind == "bad-tar-header":  # ustar magic and a proper end, but a broken checksum
        data = bytearray(_valid_tar_bytes())
        data[148:156] = b"0000000\0"
        path.write_bytes(bytes(data))
        return path, "invalid tar header"
    raise AssertionError(kind)


BAD_KINDS = ["missing", "directory", "empty", "truncated", "not-a-tar", "corrupt-gzip",
             "truncated-gzip", "bad-tar-header"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_import_rejects_bad_input_naming_the_file_and_leaves_no_image(
        client, prefix, base_image, tmp_path, kind):
    source, reason = _bad_source(kind, tmp_path)
    before = our_images(client, prefix)
    reference = f"{prefix}/bad-import:{kind}"

    with pytest.raises(DockyardError) as caught:
        artifacts.import_image(source, tag=reference, labels={"dytest.run": prefix},
                               progress=False)

    assert str(source) in str(caught.value)
    assert reason in str(caught.value)
    assert our_images(client, prefix) == before
    assert not client.images.list(name=reference)


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_load_rejects_bad_input_naming_the_file_and_leaves_no_image(
        client, prefix, base_image, tmp_path, kind):
    source, reason = _bad_source(kind, tmp_path)
    before = our_images(client, prefix)

    with pytest.raises(DockyardError) as caught:
        artifacts.load_image(source, progress=False)

    assert str(source) in str(caught.value)
    assert reason in str(caught.value)
    assert our_images(client, prefix) == before


def test_load_of_a_cut_short_save_brings_back_nothing(
        client, tracker, prefix, base_image, tmp_path):
    reference = f"{prefix}/victim:1"
    make_image(client, tracker, base_image, reference, "victim")
    whole = tmp_path / "victim.tar"
    artifacts.save_image(reference, whole, progress=False)
    client.api.remove_image(reference)
    before = our_images(client, prefix)
    cut = tmp_path / "victim-cut.tar.gz"  # gzip hides the cut from the pre-check
    cut.write_bytes(gzip.compress(whole.read_bytes(), 1)[: whole.stat().st_size // 4])

    with pytest.raises(DockyardError, match="victim-cut.tar.gz"):
        artifacts.load_image(cut, progress=False)

    assert our_images(client, prefix) == before
    assert not client.images.list(name=reference)


def test_load_of_an_export_archive_says_it_is_not_a_save(
        client, tracker, base_image, prefix, tmp_path):
    container = tracker.container(base_image, ["sh", "-c", ":"])
    target = tmp_path / "fs.tar"
    artifacts.export_container(container, target, progress=False)
    before = our_images(client, prefix)

    with pytest.raises(DockyardError) as caught:
        artifacts.load_image(target, progress=False)

    assert str(target) in str(caught.value)
    assert our_images(client, prefix) == before


# --- bad targets ---------------------------------------------------------------


def test_export_refuses_an_existing_target_without_force(client, tracker, base_image, tmp_path):
    container = tracker.container(base_image, ["sh", "-c", ":"])
    target = tmp_path / "exists.tar"
    target.write_bytes(b"precious")

    with pytest.raises(DockyardError) as caught:
        artifacts.export_container(container, target, progress=False)

    assert str(target) in str(caught.value) and "--force" in str(caught.value)
    assert target.read_bytes() == b"precious"
    assert part_files(tmp_path) == []

    artifacts.export_container(container, target, force=True, progress=False)
    assert tarfile.is_tarfile(target)


def test_save_refuses_an_existing_target_without_force(client, base_image, tmp_path):
    target = tmp_path / "exists.tar.gz"
    target.write_bytes(b"precious")

    with pytest.raises(DockyardError, match="--force"):
        artifacts.save_image(base_image, target, progress=False)

    assert target.read_bytes() == b"precious"


@pytest.mark.parametrize("where", ["missing-dir", "file-as-dir", "proc", "directory"])
@pytest.mark.parametrize("operation", ["export", "save"])
def test_unwritable_target_is_refused_naming_it(
        client, tracker, prefix, base_image, tmp_path, where, operation):
    (tmp_path / "plain-file").write_text("x")
    (tmp_path / "a-dir").mkdir()
    target, named = {
        "missing-dir": (tmp_path / "nope" / "out.tar", str(tmp_path / "nope")),
        "file-as-dir": (tmp_path / "plain-file" / "out.tar", str(tmp_path / "plain-file")),
        "proc": (Path(f"/proc/{prefix}.tar"), f"/proc/{prefix}.tar"),
        "directory": (tmp_path / "a-dir", str(tmp_path / "a-dir")),
    }[where]
    before = our_images(client, prefix)

    with pytest.raises(DockyardError) as caught:
        if operation == "export":
            container = tracker.container(base_image, ["sh", "-c", ":"])
            artifacts.export_container(container, target, progress=False)
        else:
            artifacts.save_image(base_image, target, progress=False)

    assert named in str(caught.value)
    assert our_images(client, prefix) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-dir", "plain-file"]


def test_export_of_a_missing_container_names_it_and_writes_nothing(client, prefix, tmp_path):
    with pytest.raises(DockyardError, match=f"{prefix}-nothere"):
        artifacts.export_container(f"{prefix}-nothere", tmp_path / "x.tar", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_save_of_a_missing_image_names_it_and_writes_nothing(client, prefix, tmp_path):
    with pytest.raises(DockyardError, match=f"{prefix}/nothere:1"):
        artifacts.save_image(f"{prefix}/nothere:1", tmp_path / "x.tar", progress=False)
    assert list(tmp_path.iterdir()) == []


# --- targets that are not plain files: devices, fifos, symlinks ---------------------
# Only /dev/null is used as a real device: writing into any other node could harm the host.


def _is_docker_save(data: bytes) -> bool:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return "manifest.json" in archive.getnames()


def _dev_null_identity() -> tuple[int, int]:
    info = os.lstat("/dev/null")
    assert stat.S_ISCHR(info.st_mode)
    return info.st_ino, info.st_rdev


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("operation", ["export", "save"])
def test_dev_null_is_a_sink_and_stays_a_character_device(
        client, tracker, base_image, operation, force):
    before = _dev_null_identity()
    if operation == "export":
        container = tracker.container(base_image, ["sh", "-c", ":"])
        result = artifacts.export_container(container, "/dev/null", force=force,
                                            progress=False)
    else:
        result = artifacts.save_image(base_image, "/dev/null", force=force,
                                      progress=False)

    assert result.path == "/dev/null" and result.size_bytes > 10_000
    assert _dev_null_identity() == before
    assert list(Path("/dev").glob(".null.*.part")) == []


def test_symlink_to_dev_null_is_written_through_and_stays_a_symlink(
        client, base_image, tmp_path):
    link = tmp_path / "sink.tar"
    link.symlink_to("/dev/null")
    before = _dev_null_identity()

    result = artifacts.save_image(base_image, link, progress=False)

    assert result.size_bytes > 10_000
    assert link.is_symlink() and os.readlink(link) == "/dev/null"
    assert _dev_null_identity() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sink.tar"]


def test_save_through_a_symlink_replaces_the_file_it_points_to_and_keeps_the_link(
        client, base_image, tmp_path):
    files, links = tmp_path / "files", tmp_path / "links"
    files.mkdir()
    links.mkdir()
    real = files / "real.tar"
    real.write_bytes(b"precious")
    link = links / "out.tar"
    link.symlink_to(real)

    with pytest.raises(DockyardError, match="--force"):
        artifacts.save_image(base_image, link, progress=False)
    assert real.read_bytes() == b"precious" and link.is_symlink()

    result = artifacts.save_image(base_image, link, force=True, progress=False)

    assert link.is_symlink() and os.readlink(link) == str(real)
    assert _is_docker_save(real.read_bytes())
    assert result.size_bytes == real.stat().st_size
    assert [p.name for p in files.iterdir()] == ["real.tar"]
    assert [p.name for p in links.iterdir()] == ["out.tar"]


def test_save_through_a_dangling_symlink_creates_the_file_it_names(client, base_image, tmp_path):
    link = tmp_path / "out.tar"
    link.symlink_to("made.tar")

    artifacts.save_image(base_image, link, progress=False)

    assert link.is_symlink() and os.readlink(link) == "made.tar"
    assert _is_docker_save((tmp_path / "made.tar").read_bytes())
    assert part_files(tmp_path) == []


@pytest.mark.parametrize("name", ["pipe.tar", "pipe.tar.gz"])
def test_fifo_target_receives_the_archive_and_stays_a_fifo(client, base_image, tmp_path, name):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    received: list[bytes] = []

    def drain() -> None:
        with open(fifo, "rb") as reader:
            received.append(reader.read())

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        result = artifacts.save_image(base_image, fifo, progress=False)
    finally:
        if reader.is_alive():  # save never opened the fifo: hand the reader an EOF
            with suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=60)

    assert not reader.is_alive() and len(received) == 1
    data = received[0]
    assert result.size_bytes == len(data)
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    assert _is_docker_save(data)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


# --- interrupted downloads, memory -------------------------------------------------


def _start(call: str) -> subprocess.Popen:
    code = f"from dockyard import artifacts; artifacts.{call}"
    return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def _interrupt_once_writing(process: subprocess.Popen, directory: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        parts = part_files(directory)
        if parts and parts[0].stat().st_size > 1024 * 1024:
            process.send_signal(signal.SIGINT)
            return
        time.sleep(0.005)
    pytest.fail(f"never saw a growing .part file (exit {process.poll()})")


@pytest.mark.parametrize("name", ["big.tar", "big.tar.gz"])
def test_sigint_during_export_leaves_no_file(client, big_container, tmp_path, name):
    target = tmp_path / name
    process = _start(f"export_container({big_container!r}, "
                     f"{str(target)!r}, progress=False)")

    _interrupt_once_writing(process, tmp_path)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode != 0, stderr
    assert b"KeyboardInterrupt" in stderr
    assert list(tmp_path.iterdir()) == []
    assert client.containers.get(big_container).id == big_container


def test_sigint_during_save_leaves_no_file(client, big_image, tmp_path):
    target = tmp_path / "big-image.tar"
    image_id = client.images.get(big_image).id
    process = _start(f"save_image({big_image!r}, {str(target)!r}, "
                     "progress=False)")

    _interrupt_once_writing(process, tmp_path)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode != 0, stderr
    assert list(tmp_path.iterdir()) == []
    assert client.images.get(big_image).id == image_id


def test_memory_stays_flat_for_a_200_mib_image(client, big_image, big_container, tmp_path):
    """Each operation in its own process; a whole-archive read would need >= 200 MiB."""
    saved, exported = tmp_path / "big.tar", tmp_path / "big-fs.tar.gz"
    calls = [
        f"export_container({big_container!r}, {str(exported)!r}, progress=False)",
        f"save_image({big_image!r}, {str(saved)!r}, progress=False)",
        f"load_image({str(saved)!r}, progress=False)",
    ]
    for call in calls:
        process = _start(call)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)  # Popen did not reap it
        errors = process.stderr.read()
        process.stderr.close()
        assert process.returncode == 0, errors
        peak_mib = usage.ru_maxrss / 1024
        assert peak_mib < 100, f"{call}: peak RSS {peak_mib:.0f} MiB"
    assert saved.stat().st_size > BIG_FILE_BYTES
