"""Builds with BuildKit (`POST /build?version=2`): how its trace reads, what only it does, and
how the builder is chosen. tests/test_build.py runs the Make-like behaviour with both builders."""

from __future__ import annotations

import base64
import re

import pytest

from conftest import assert_clean_failure
from dockyard.engine import buildkit
from dockyard.builder import builder_choice
from dockyard.errors import DockyardError


@pytest.fixture
def with_buildkit(monkeypatch):
    monkeypatch.setenv("DOCKYARD_BUILDER", "buildkit")


@pytest.mark.integration
def test_buildkit_shows_each_step_with_its_output_and_time_and_says_which_failed(project, with_buildkit):
    project.inv("my-app.build")
    dockerfile = project.root / "images" / "busybox-httpd" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN echo one-line; echo other-line >&2\n")
    built = project.inv("httpd.build").stdout
    assert "with BuildKit" in built
    assert re.search(r"^httpd\s+\| #\d+ \[\d/\d\] RUN sh /cfg2/provision-httpd.sh$", built, re.MULTILINE), built
    assert re.search(r"^httpd\s+\| #(\d+) one-line$", built, re.MULTILINE), built
    assert re.search(r"^httpd\s+\| #\d+ DONE \d+\.\d+s$", built, re.MULTILINE), built
    assert "[internal]" not in built  # the engine's bookkeeping is not a step of the user's
    forced = project.inv("httpd.build", "--force").stdout
    assert re.search(r"^httpd\s+\| #\d+ CACHED$", forced, re.MULTILINE), forced

    dockerfile.write_text(dockerfile.read_text() + "RUN echo before-failing; exit 7\n")
    failed = project.inv("httpd.build", check=False)
    assert_clean_failure(failed, "failed at step '[5/5] RUN echo before-failing; exit 7'", "exit code: 7",
                         "its last output:\n  before-failing")


@pytest.mark.integration
def test_buildkit_cache_mounts_and_build_args_work(project, docker_client, with_buildkit):
    project.inv("my-app.build")
    app = project.root / "images" / "cached"
    app.mkdir()
    (app / "Dockerfile").write_text(
        f"FROM {project.tags['my-app']}\nARG GREETING\n"
        f"RUN --mount=type=cache,id={project.name},target=/cache echo \"$GREETING\" >> /cache/seen && cp /cache/seen /seen\n")
    with project.config.open("a") as config:
        config.write(f'\n[images.cached]\ntag = "{project.name}/cached"\ndir = "images/cached"\n'
                     f'build_args = {{ GREETING = "hello" }}\nrun = {{ name = "{project.name}-cached" }}\n')
    project.inv("cached.build")
    # Another build argument: the step runs again, and the cache mount still holds the first run's file.
    project.config.write_text(project.config.read_text().replace('GREETING = "hello"', 'GREETING = "again"'))
    project.inv("cached.build")
    seen = docker_client.containers.run(f"{project.name}/cached", ["cat", "/seen"], remove=True)
    assert seen.decode().split() == ["hello", "again"]


@pytest.mark.integration
def test_an_unknown_builder_is_one_line_naming_where_it_came_from(project, monkeypatch):
    monkeypatch.setenv("DOCKYARD_BUILDER", "kaniko")
    result = project.inv("httpd.build", check=False)
    assert_clean_failure(result, "DOCKYARD_BUILDER is 'kaniko': expected one of auto, buildkit, classic")


# -- the trace, engine-free: StatusResponse messages written here in protobuf's wire format ----


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def message(*pairs: tuple[int, int | str | bytes]) -> bytes:
    """A protobuf message of (field number, value): ints as varints, the rest length-delimited."""
    out = b""
    for number, value in pairs:
        if isinstance(value, int):
            out += varint(number << 3) + varint(value)
        else:
            data = value.encode() if isinstance(value, str) else value
            out += varint(number << 3 | 2) + varint(len(data)) + data
    return out


def timestamp(seconds: int, nanos: int = 0) -> bytes:
    return message((1, seconds), (2, nanos))


def trace(*parts: bytes) -> str:
    """A trace message's aux: a StatusResponse of these vertexes (1) and logs (3)."""
    return base64.b64encode(b"".join(parts)).decode()


def vertex(digest: str, name: str, *fields) -> bytes:
    return message((1, message((1, digest), (3, name), *fields)))


def log(digest: str, data: bytes, stream: int = 1) -> bytes:
    return message((3, message((1, digest), (2, timestamp(5)), (3, stream), (4, data))))


def test_a_step_is_shown_with_its_output_and_how_long_it_took():
    progress = buildkit.Progress()
    assert progress.feed(trace(vertex("sha256:a", "[internal] load remote build context", (5, timestamp(1))))) == []
    assert progress.feed(trace(vertex("sha256:b", "[2/3] RUN make", (5, timestamp(10, 0))))) == ["#1 [2/3] RUN make"]
    assert progress.feed(trace(log("sha256:b", b"compiling\nlinking"), log("sha256:b", b" done\n", 2))) == \
        ["#1 compiling", "#1 linking done"]
    done = trace(vertex("sha256:b", "[2/3] RUN make", (5, timestamp(10, 0)), (6, timestamp(11, 250_000_000))))
    assert progress.feed(done) == ["#1 DONE 1.2s"]
    assert progress.feed(done) == []  # said once
    assert progress.feed(trace(vertex("sha256:c", "[3/3] COPY . /app", (4, 1)))) == ["#2 [3/3] COPY . /app", "#2 CACHED"]


def test_a_failed_step_is_named_with_its_last_output():
    progress = buildkit.Progress()
    progress.feed(trace(vertex("sha256:b", "[2/2] RUN exit 3", (5, timestamp(1)))))
    progress.feed(trace(log("sha256:b", b"line 1\nno newline at the end")))
    lines = progress.feed(trace(vertex("sha256:b", "[2/2] RUN exit 3", (5, timestamp(1)), (7, "exit code: 3"))))
    assert lines == ["#1 no newline at the end", "#1 ERROR: exit code: 3"]
    assert progress.failure() == ("[2/2] RUN exit 3", ["line 1", "no newline at the end"])


def test_an_internal_step_is_shown_when_it_fails():
    progress = buildkit.Progress()
    failed = vertex("sha256:a", "[internal] load metadata for docker.io/library/nothing", (5, timestamp(1)),
                    (7, "pull access denied"))
    assert progress.feed(trace(failed)) == ["#1 [internal] load metadata for docker.io/library/nothing",
                                            "#1 ERROR: pull access denied"]


@pytest.mark.parametrize("value, expected", [(None, "auto"), ("", "auto"), ("BuildKit", "buildkit"),
                                             (" classic ", "classic")])
def test_the_builder_is_the_setting_then_dockyard_builder_then_auto(value, expected, monkeypatch):
    monkeypatch.delenv("DOCKYARD_BUILDER", raising=False)
    assert builder_choice(value) == expected
    monkeypatch.setenv("DOCKYARD_BUILDER", "classic")
    assert builder_choice(value) == (expected if value else "classic")


def test_an_unknown_builder_setting_is_refused():
    with pytest.raises(DockyardError, match=re.escape("dockyard.builder is 'docker': expected one of")):
        builder_choice("docker")
