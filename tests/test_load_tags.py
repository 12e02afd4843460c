"""A per-image `load` sets only that image's tag: the archive is read as it streams to the
engine, and one that would set any other tag is refused before its last chunk goes.

Engine-free tests craft tars with the tarfile module (hostile ones too); integration tests
load real `docker save` archives through `inv` into the real engine.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import subprocess
import sys
import tarfile

import pytest

from dockyard import archive_reading
from dockyard.archive_reading import METADATA_LIMIT, SavedImages, TarScanner, Upload, guarded_body
from dockyard.artifacts import _check_tags
from dockyard.errors import DockyardError

from conftest import assert_clean_failure, unique

INV = [sys.executable, "-m", "invoke"]
LAYER = "0123abcd" * 8
CONFIG = "feedbeef" * 8


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **fields) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, len(data) if kind == tarfile.REGTYPE else 0
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def tar_bytes(*members: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT, end: bool = True) -> bytes:
    buffer = io.BytesIO()
    tar = tarfile.open(fileobj=buffer, mode="w", format=fmt)
    for info, data in members:
        tar.addfile(info, io.BytesIO(data))
    if end:
        tar.close()
        return buffer.getvalue()
    return buffer.getvalue()  # no end-of-archive blocks


def saved(tags: list[str] | None, *, images: int = 1, repositories: bool = True, extra=()) -> bytes:
    """A tar laid out as `docker save` writes it: layers and config first, metadata last."""
    layer = tar_bytes(member("marker.txt", b"hello\n"))
    entries = [{"Config": f"{CONFIG}{n}.json", "RepoTags": tags if n == 0 else [f"other-{n}:latest"],
                "Layers": [f"{LAYER}/layer.tar"]} for n in range(images)]
    members = [member(f"{LAYER}/", kind=tarfile.DIRTYPE), member(f"{LAYER}/VERSION", b"1.0"),
               member(f"{LAYER}/json", b"{}"), member(f"{LAYER}/layer.tar", layer),
               *(member(f"{CONFIG}{n}.json", b'{"config": {}}') for n in range(images)), *extra,
               member("manifest.json", json.dumps(entries).encode())]
    if repositories and tags:
        by_repo: dict[str, dict[str, str]] = {}
        for tag in tags:
            repository, _, version = tag.rpartition(":")
            by_repo.setdefault(repository, {})[version] = LAYER
        members.append(member("repositories", json.dumps(by_repo).encode()))
    return tar_bytes(*members)


def scan(data: bytes, piece: int = 10_000) -> SavedImages:
    scanner = TarScanner("t.tar")
    for start in range(0, len(data), piece):
        scanner.feed(data[start:start + piece])
    return scanner.finish()


def refusal(data: bytes, piece: int = 10_000) -> str:
    with pytest.raises(DockyardError) as caught:
        scan(data, piece)
    return str(caught.value)


# --- reading the metadata ---------------------------------------------------------------


@pytest.mark.parametrize("piece", [1, 7, 512, 1000, 1 << 20])
def test_scanner_finds_the_tags_whatever_the_pieces_it_is_fed(piece):
    images = scan(saved(["busybox:latest"]), piece)
    assert images.image_count() == 1
    assert images.tags() == ["busybox:latest"]
    assert images.manifest[0]["Layers"] == [f"{LAYER}/layer.tar"]


def test_scanner_counts_every_image_and_tag_of_a_multi_image_archive():
    images = scan(saved(["a/b:1"], images=3))
    assert images.image_count() == 3
    assert images.tags() == ["a/b:1", "other-1:latest", "other-2:latest"]


def test_scanner_reads_an_untagged_image_as_no_tags():
    images = scan(saved(None))
    assert (images.image_count(), images.tags()) == (1, [])


def test_scanner_reads_containerd_names_from_index_json():
    index = {"manifests": [{"annotations": {"io.containerd.image.name": "docker.io/library/busybox:latest"}}]}
    images = scan(saved([], extra=[member("index.json", json.dumps(index).encode())]))
    assert images.tags() == ["docker.io/library/busybox:latest"]


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names_reach_the_scanner_as_the_engine_reads_them(fmt):
    """ustar prefix, GNU long name, pax path: each spells manifest.json in a long way."""
    long_path = "d" * 90 + "/" + "e" * 60 + "/../../manifest.json"
    data = tar_bytes(member(long_path, b'[{"RepoTags": ["sneaky:latest"]}]'), fmt=fmt)
    assert scan(data).tags() == ["sneaky:latest"]


def test_a_pax_path_overrides_the_innocent_name_in_the_header():
    info, data = member("innocent.txt", b'[{"RepoTags": ["sneaky:latest"]}]')
    info.pax_headers = {"path": "manifest.json"}
    assert scan(tar_bytes((info, data))).tags() == ["sneaky:latest"]


@pytest.mark.parametrize("name", ["./manifest.json", "/manifest.json", "x/../manifest.json",
                                  "..//manifest.json", "manifest.json/."])
def test_path_tricks_still_name_the_metadata(name):
    assert scan(tar_bytes(member(name, b'[{"RepoTags": ["sneaky:latest"]}]'))).tags() == ["sneaky:latest"]


def test_a_manifest_after_the_layers_of_a_big_member_is_found():
    big = member("layer/layer.tar", b"\0" * (3 << 20))
    data = tar_bytes(big, member("manifest.json", b'[{"RepoTags": ["late:1"]}]'))
    assert scan(data, piece=65536).tags() == ["late:1"]


# --- hostile metadata -------------------------------------------------------------------


def test_a_huge_manifest_is_refused_without_being_kept():
    data = tar_bytes(member("manifest.json", b" " * (METADATA_LIMIT + 1)))
    assert "manifest.json of 1048577 bytes" in refusal(data)


def test_a_manifest_that_is_not_json_is_refused():
    assert "has a manifest.json that is not valid JSON" in refusal(tar_bytes(member("manifest.json", b"[{nope")))
    assert "not valid JSON" in refusal(tar_bytes(member("manifest.json", b"[" * 100_000)))
    assert "not valid JSON" in refusal(tar_bytes(member("repositories", b"\xff\xfe")))


def test_a_manifest_of_the_wrong_shape_is_refused():
    assert "not what `docker save` writes" in refusal(tar_bytes(member("manifest.json", b'{"RepoTags": 1}')))
    assert "not what `docker save` writes" in refusal(tar_bytes(member("manifest.json", b'[{"RepoTags": [1]}]')))
    assert "not what `docker save` writes" in refusal(tar_bytes(member("repositories", b'{"a": ["b"]}')))


def test_a_second_manifest_is_refused():
    data = tar_bytes(member("manifest.json", b'[{"RepoTags": []}]'),
                     member("./manifest.json", b'[{"RepoTags": ["later:1"]}]'))
    assert "has manifest.json twice" in refusal(data)


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE])
def test_metadata_as_a_link_or_directory_is_refused(kind):
    data = tar_bytes(member("evil.json", b'[{"RepoTags": ["sneaky:1"]}]'),
                     member("manifest.json", kind=kind, linkname="evil.json"))
    assert "manifest.json as a link or directory" in refusal(data)


def test_a_member_written_through_a_link_is_refused():
    """`d -> .` then `d/manifest.json` would land on manifest.json in the engine's directory."""
    data = tar_bytes(member("d", kind=tarfile.SYMTYPE, linkname="."),
                     member("d/manifest.json", b'[{"RepoTags": ["sneaky:1"]}]'))
    assert "under the link 'd'" in refusal(data)


def test_a_cut_short_archive_is_refused():
    data = saved(["a:1"])
    assert "truncated" in refusal(data[:len(data) // 2 + 100])


def test_a_header_after_the_end_is_not_read_but_a_broken_header_is_refused():
    data = saved(["a:1"])
    assert scan(data + tar_bytes(member("manifest.json", b'[{"RepoTags": ["late:1"]}]'))).tags() == ["a:1"]
    broken = bytearray(tar_bytes(member("manifest.json", b"[]")))
    broken[0] ^= 1  # the checksum no longer matches
    assert "bad checksum" in refusal(bytes(broken))


def test_a_pax_header_claiming_a_huge_size_is_refused():
    info, data = member("x", b"")
    info.pax_headers = {"comment": "c" * (METADATA_LIMIT + 10)}
    assert "extended tar header" in refusal(tar_bytes((info, data)))


# --- the held-back last chunk -------------------------------------------------------------


class Bar:
    def __init__(self) -> None:
        self.total = 0

    def update(self, n: int) -> None:
        self.total += n


def upload_of(data: bytes, *, known_size: bool = True, name: str = "t.tar") -> Upload:
    stream = io.BytesIO(data)
    upload = Upload(name, stream, len(data) if known_size else None, b"")
    upload.head = stream.read(archive_reading.HEAD_SIZE)
    archive_reading._check_archive(upload)
    return upload


def test_a_refused_archive_never_sends_its_last_chunk(monkeypatch):
    monkeypatch.setattr(archive_reading, "CHUNK_SIZE", 4096)
    data = saved(["theirs:latest"], extra=[member("big", b"x" * 50_000)])
    sent = bytearray()

    def refuse(images: SavedImages) -> None:
        raise DockyardError(f"refused {images.tags()}")

    with pytest.raises(DockyardError, match=r"refused \['theirs:latest'\]"):
        for chunk in guarded_body(upload_of(data), Bar(), refuse):
            sent += chunk
    assert 0 < len(sent) < len(data) and data.startswith(sent)


@pytest.mark.parametrize("known_size", [True, False])
def test_an_accepted_archive_is_sent_whole_and_unchanged(monkeypatch, known_size):
    monkeypatch.setattr(archive_reading, "CHUNK_SIZE", 4096)
    data = saved(["mine:latest"], extra=[member("big", b"x" * 50_000)])
    seen = []
    body = guarded_body(upload_of(data, known_size=known_size), Bar(), seen.append)
    assert (len(body) == len(data)) if known_size else not hasattr(body, "__len__")
    assert b"".join(body) == data and seen[0].tags() == ["mine:latest"]


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress,
                                      lambda data: gzip.compress(data[:5000]) + gzip.compress(data[5000:])])
def test_a_compressed_archive_is_checked_and_sent_decompressed(compress):
    data = saved(["mine:latest"], extra=[member("big", b"y" * 1_500_000)])
    seen = []
    body = guarded_body(upload_of(compress(data)), Bar(), seen.append)
    assert b"".join(body) == data and seen[0].tags() == ["mine:latest"]


def test_a_cut_short_compressed_archive_is_refused():
    packed = gzip.compress(saved(["mine:latest"]))
    with pytest.raises(DockyardError, match="truncated"):
        b"".join(guarded_body(upload_of(packed[:len(packed) - 20]), Bar(), lambda images: None))


def test_a_decompression_bomb_stays_small_in_memory():
    """8 MiB of zeros in a few KiB of xz come out in pieces of at most CHUNK_SIZE."""
    bomb = lzma.compress(tar_bytes(member("manifest.json", b"[]")) + b"\0" * (8 << 20))
    pieces = guarded_body(upload_of(bomb), Bar(), lambda images: None)
    assert max(len(piece) for piece in pieces) <= archive_reading.CHUNK_SIZE


# --- which tags a load accepts -------------------------------------------------------------


def images_with(tags: list[str] | None, count: int = 1) -> SavedImages:
    return scan(saved(tags, images=count))


def test_own_tag_and_no_tag_are_accepted_whatever_the_spelling():
    for tags in ([], None, ["radiasoft/httpd:latest"], ["docker.io/radiasoft/httpd:latest"]):
        _check_tags(images_with(tags), "cannot load x.tar", "radiasoft/httpd:latest", None)


def test_another_images_tag_is_refused_naming_it_and_docker_load():
    with pytest.raises(DockyardError) as caught:
        _check_tags(images_with(["busybox:latest"]), "cannot load x.tar", "radiasoft/httpd:latest", None)
    message = str(caught.value)
    assert message.startswith("cannot load x.tar as radiasoft/httpd:latest: it carries the tag busybox:latest")
    assert "`docker load -i t.tar`" in message and "\n" not in message


def test_a_multi_image_archive_is_refused_naming_its_tags():
    with pytest.raises(DockyardError, match=r"holds 2 images \(radiasoft/httpd:latest, other-1:latest\)"):
        _check_tags(images_with(["radiasoft/httpd:latest"], 2), "cannot load x.tar", "radiasoft/httpd:latest", None)


def test_a_project_load_accepts_only_the_projects_tags():
    allowed = ["busybox:latest", "radiasoft/httpd:latest", "other-1:latest"]
    _check_tags(images_with(["radiasoft/httpd:latest"], 2), "cannot load x.tar", None, allowed)
    with pytest.raises(DockyardError, match="not one of this project's images'"):
        _check_tags(images_with(["elsewhere/thing:1"], 2), "cannot load x.tar", None, allowed)


def test_an_archive_without_image_metadata_is_not_of_images():
    empty = scan(tar_bytes(member("etc/passwd", b"root:x:0:0::/:/bin/sh\n")))
    with pytest.raises(DockyardError, match="not of images.*`import`"):
        _check_tags(empty, "cannot load x.tar", "a:1", None)


# --- against the real engine ----------------------------------------------------------------


def docker_save(target, *names: str) -> None:
    subprocess.run(["docker", "save", "-o", str(target), *names], check=True, capture_output=True)


def build_other(docker_client, tmp_path, base: str, tag: str, content: str) -> str:
    """A tiny image FROM the test's busybox, playing someone else's image under ``tag``."""
    directory = tmp_path / f"other-{content}"
    directory.mkdir()
    (directory / "Dockerfile").write_text(f"FROM {base}\nRUN echo {content} > /who\n")
    image, _ = docker_client.images.build(path=str(directory), tag=tag, rm=True)
    return image.id


@pytest.fixture
def other_archive(project, docker_client, tmp_path):
    """`docker save` of someone else's tag, whose tag has since moved to another image:
    (archive, tag, the id the tag names now). The saved image itself is gone from the engine."""
    project.inv("busybox.build", "--quiet")
    tag = f"{unique('dytest-other')}:latest"
    saved_id = build_other(docker_client, tmp_path, project.tags["busybox"], tag, "one")
    archive = tmp_path / "other.tar"
    docker_save(archive, tag)
    current = build_other(docker_client, tmp_path, project.tags["busybox"], tag, "two")
    docker_client.api.remove_image(saved_id)
    yield archive, tag, current, saved_id
    for image in docker_client.api.images(name=tag.split(":")[0]):
        docker_client.api.remove_image(image["Id"], force=True)


def image_ids(docker_client) -> set[str]:
    return {image["Id"] for image in docker_client.api.images(all=True)}


def built_my_app(project, docker_client) -> tuple[str, str]:
    """my-app built: its tag and its image's id."""
    project.inv("my-app.build", "--quiet")
    reference = project.tags["my-app"]
    return reference, docker_client.api.inspect_image(reference)["Id"]


@pytest.mark.integration
@pytest.mark.parametrize("via", ["file", "stdin"])
def test_load_refuses_someone_elses_image_and_its_tag_stays_where_it_was(
        project, docker_client, other_archive, tmp_path, via):
    archive, tag, current, saved_id = other_archive
    if via == "file":
        result = project.inv("my-app.load", str(archive), check=False)
    else:
        with open(archive, "rb") as stdin:
            result = subprocess.run([*INV, "my-app.load", "-"], cwd=project.root, stdin=stdin,
                                    capture_output=True, text=True, timeout=120)
    assert_clean_failure(result, f"it carries the tag {tag}", project.tags["my-app"], "plain `docker load")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert docker_client.api.inspect_image(tag)["Id"] == current
    assert saved_id not in image_ids(docker_client)  # the engine loaded nothing
    assert not docker_client.api.images(name=project.tags["my-app"].split(":")[0])


@pytest.mark.integration
def test_load_refuses_an_archive_of_several_images(project, docker_client, other_archive, tmp_path):
    archive, tag, current, _ = other_archive
    multi = tmp_path / "multi.tar"
    docker_save(multi, tag, project.tags["busybox"])
    busybox = docker_client.api.inspect_image(project.tags["busybox"])["Id"]
    result = project.inv("busybox.load", str(multi), check=False)
    assert_clean_failure(result, "holds 2 images", tag, project.tags["busybox"], f"`docker load -i {multi}`")
    assert docker_client.api.inspect_image(tag)["Id"] == current
    assert docker_client.api.inspect_image(project.tags["busybox"])["Id"] == busybox


@pytest.mark.integration
def test_project_load_refuses_a_tag_outside_the_project(project, docker_client, other_archive):
    archive, tag, current, saved_id = other_archive
    assert_clean_failure(project.inv("load", str(archive), check=False), tag, "not one of this project's")
    assert docker_client.api.inspect_image(tag)["Id"] == current
    assert saved_id not in image_ids(docker_client)


@pytest.mark.integration
def test_load_from_stdin_of_its_own_save_keeps_tag_id_and_build_key(project, docker_client, tmp_path):
    reference, image_id = built_my_app(project, docker_client)
    archive = tmp_path / "my-app.tar.gz"
    project.inv("my-app.save", "-o", str(archive))
    docker_client.api.remove_image(reference)
    with open(archive, "rb") as stdin:
        result = subprocess.run([*INV, "my-app.load", "-", "--json"], cwd=project.root, stdin=stdin,
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["tags"] == [reference] and loaded["ids"] == [image_id]
    assert "my-app is up to date" in project.inv("my-app.build").stdout


@pytest.mark.integration
def test_an_untagged_archive_loads_as_this_image_with_its_build_key(project, docker_client, tmp_path):
    reference, image_id = built_my_app(project, docker_client)
    archive = tmp_path / "by-id.tar"
    docker_save(archive, image_id)  # saved by id: no tag inside
    docker_client.api.remove_image(reference)
    assert image_id not in image_ids(docker_client)
    result = project.inv("my-app.load", str(archive))
    assert result.stdout.startswith(f"loaded {reference} from {archive}")
    assert docker_client.api.inspect_image(reference)["Id"] == image_id
    assert "my-app is up to date" in project.inv("my-app.build").stdout
