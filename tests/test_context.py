"""Build context: .dockerignore semantics, the build key, and the context tar (no engine)."""

from __future__ import annotations

import gc
import hashlib
import io
import json
import os
import random
import socket
import stat
import tarfile
from pathlib import Path

import pytest

from dockyard.context import (
    KEY_VERSION,
    ContextChangedError,
    ContextFile,
    build_key,
    context_files,
    list_context,
    write_context_tar,
)
from dockyard.dockerignore import read_dockerignore


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def image_dir(tmp_path: Path, ignore: str | None = None, **extra: str) -> Path:
    files = {"Dockerfile": "FROM scratch\nCOPY . /\n", "app/main.sh": "echo hi\n",
             "app/lib/util.sh": "true\n", "README": "about\n", **extra}
    if ignore is not None:
        files[".dockerignore"] = ignore
    return make_tree(tmp_path / "img", files)


def key_of(context: Path, dockerfile: str = "Dockerfile", build_args: dict[str, str] | None = None,
           parent_ids: list[str] | None = None) -> str:
    return build_key(context, context_files(context, dockerfile), dockerfile=dockerfile,
                     build_args=build_args or {}, parent_ids=parent_ids or ["sha256:aaa"])


def paths(context: Path, dockerfile: str = "Dockerfile") -> set[str]:
    return {entry.path for entry in context_files(context, dockerfile)}


# --- what changes the key ---------------------------------------------------------------


def test_key_changes_with_file_content(tmp_path):
    context = image_dir(tmp_path)
    before = key_of(context)
    (context / "app/main.sh").write_text("echo bye\n")
    assert key_of(context) != before


def test_key_changes_with_a_new_file(tmp_path):
    context = image_dir(tmp_path)
    before = key_of(context)
    (context / "app/new.sh").write_text("")
    assert key_of(context) != before


def test_key_changes_with_a_new_empty_directory(tmp_path):
    context = image_dir(tmp_path)
    before = key_of(context)
    (context / "app/empty").mkdir()
    assert key_of(context) != before


def test_key_changes_with_a_removed_file(tmp_path):
    context = image_dir(tmp_path)
    before = key_of(context)
    (context / "README").unlink()
    assert key_of(context) != before


def test_key_changes_when_a_file_becomes_executable(tmp_path):
    context = image_dir(tmp_path)
    before = key_of(context)
    script = context / "app/main.sh"
    script.chmod(script.stat().st_mode | 0o111)
    assert key_of(context) != before


def test_key_changes_with_a_directory_mode(tmp_path):
    context = image_dir(tmp_path)
    before = key_of(context)
    (context / "app/lib").chmod(0o700)
    assert key_of(context) != before


def test_key_changes_with_a_renamed_file(tmp_path):
    context = image_dir(tmp_path)
    before = key_of(context)
    (context / "app/main.sh").rename(context / "app/start.sh")
    assert key_of(context) != before


def test_key_changes_with_a_symlink_target(tmp_path):
    context = image_dir(tmp_path)
    (context / "current").symlink_to("app/main.sh")
    before = key_of(context)
    (context / "current").unlink()
    (context / "current").symlink_to("app/lib/util.sh")
    assert key_of(context) != before


def test_key_changes_with_the_dockerfile_name(tmp_path):
    context = image_dir(tmp_path, **{"Dockerfile.dev": "FROM scratch\n"})
    assert key_of(context, "Dockerfile") != key_of(context, "Dockerfile.dev")


def test_key_changes_with_a_build_arg_value(tmp_path):
    context = image_dir(tmp_path)
    assert key_of(context, build_args={"V": "1"}) != key_of(context, build_args={"V": "2"})
    assert key_of(context, build_args={"V": "1"}) != key_of(context, build_args={})


def test_key_changes_with_a_parent_id_and_its_order(tmp_path):
    context = image_dir(tmp_path)
    assert key_of(context, parent_ids=["sha256:a"]) != key_of(context, parent_ids=["sha256:b"])
    assert (key_of(context, parent_ids=["sha256:a", "sha256:b"])
            != key_of(context, parent_ids=["sha256:b", "sha256:a"]))


def test_key_fields_cannot_run_into_each_other(tmp_path):
    context = image_dir(tmp_path)
    assert (key_of(context, build_args={"A": "1B=2"})
            != key_of(context, build_args={"A": "1", "B": "2"}))


# --- what does not change it --------------------------------------------------------------


def test_key_ignores_files_excluded_by_dockerignore(tmp_path):
    context = image_dir(tmp_path, ignore="*.log\nscratch/\n")
    before = key_of(context)
    (context / "debug.log").write_text("one\n")
    (context / "scratch").mkdir()
    (context / "scratch/notes").write_text("x\n")
    assert key_of(context) == before
    (context / "debug.log").write_text("two\n")
    assert key_of(context) == before


def test_key_ignores_a_touched_mtime(tmp_path):
    context = image_dir(tmp_path)
    before = key_of(context)
    os.utime(context / "app/main.sh", ns=(1_000_000_000, 1_000_000_000))
    os.utime(context / "app", ns=(2_000_000_000, 2_000_000_000))
    assert key_of(context) == before


def test_key_is_independent_of_walk_and_list_order(tmp_path, monkeypatch):
    context = image_dir(tmp_path, **{f"d/f{i}": str(i) for i in range(20)})
    files = context_files(context)
    before = key_of(context)
    shuffled = files[:]
    random.Random(7).shuffle(shuffled)
    assert build_key(context, shuffled, dockerfile="Dockerfile", build_args={},
                     parent_ids=["sha256:aaa"]) == before

    real_scandir = os.scandir

    class ReversedScandir:
        def __init__(self, path):
            self.entries = list(real_scandir(path))[::-1]

        def __enter__(self):
            return iter(self.entries)

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(os, "scandir", ReversedScandir)
    assert context_files(context) == files
    assert key_of(context) == before


def test_key_is_still_one_json_line_per_record(tmp_path):
    """The key of a context is what it was when each record was written with json.dumps: an
    image built before (names with quotes, backslashes, other scripts, a newline) stays up to date."""
    context = image_dir(tmp_path, **{'d/"q"\\b': "1", "d/été ✓": "2", "d/new\nline": "3"})
    (context / "link").symlink_to("app/main.sh")
    files = context_files(context)
    expected = hashlib.sha256()
    for record in [[KEY_VERSION, "Dockerfile", [["A", "1"]], ["sha256:aaa"]]] + [
            [e.path, e.mode, f"link:{e.link_target}" if stat.S_ISLNK(e.mode) else
             "sha256:" + hashlib.sha256((context / e.path).read_bytes()).hexdigest() if stat.S_ISREG(e.mode) else ""]
            for e in files]:
        expected.update(json.dumps(record, ensure_ascii=True).encode("ascii") + b"\n")
    assert {"link", 'd/"q"\\b', "d/été ✓", "d/new\nline", "d"} <= {e.path for e in files}
    assert key_of(context, build_args={"A": "1"}) == expected.hexdigest()


def test_key_ignores_build_arg_dict_order(tmp_path):
    context = image_dir(tmp_path)
    assert (key_of(context, build_args={"A": "1", "B": "2"})
            == key_of(context, build_args={"B": "2", "A": "1"}))


def test_key_is_the_same_for_an_identical_copy_elsewhere(tmp_path):
    one = make_tree(tmp_path / "one", {"Dockerfile": "FROM x\n", "a/b": "c"})
    two = make_tree(tmp_path / "two", {"a/b": "c", "Dockerfile": "FROM x\n"})
    for context in (one, two):
        (context / "a").chmod(0o755)
        (context / "a/b").chmod(0o644)
        (context / "Dockerfile").chmod(0o644)
    assert key_of(one) == key_of(two)


def test_key_refuses_a_file_changed_since_listing(tmp_path):
    context = image_dir(tmp_path)
    files = context_files(context)
    (context / "app/main.sh").write_text("echo a longer script now\n")
    with pytest.raises(ContextChangedError, match="main.sh"):
        build_key(context, files, dockerfile="Dockerfile", build_args={}, parent_ids=[])


def test_key_reads_a_fifo_without_blocking(tmp_path):
    context = image_dir(tmp_path)
    before = key_of(context)
    os.mkfifo(context / "pipe")
    assert key_of(context) != before  # listed, by its mode, never opened


# --- .dockerignore ------------------------------------------------------------------------


def test_read_dockerignore_drops_comments_blanks_and_whitespace(tmp_path):
    (tmp_path / ".dockerignore").write_text(
        "\ufeff# build output\n\n  *.log  \r\n\t# indented comment\n!keep.log\n   \n")
    assert read_dockerignore(tmp_path) == ["*.log", "!keep.log"]


def test_read_dockerignore_without_a_file_is_empty(tmp_path):
    assert read_dockerignore(tmp_path) == []


def test_star_log_excludes_logs_in_the_top_dir_only(tmp_path):
    context = image_dir(tmp_path, ignore="*.log\n", **{"a.log": "", "app/b.log": ""})
    found = paths(context)
    assert "a.log" not in found
    assert "app/b.log" in found


def test_double_star_excludes_at_any_depth(tmp_path):
    context = image_dir(tmp_path, ignore="**/*.tmp\n",
                        **{"x.tmp": "", "app/y.tmp": "", "app/lib/z.tmp": "", "app/keep.tmpl": ""})
    found = paths(context)
    assert not {"x.tmp", "app/y.tmp", "app/lib/z.tmp"} & found
    assert "app/keep.tmpl" in found


def test_directory_pattern_excludes_everything_under_it(tmp_path):
    context = image_dir(tmp_path, ignore="build/\n",
                        **{"build/out.o": "", "build/deep/er.o": "", "app/build/x": ""})
    found = paths(context)
    assert not {p for p in found if p == "build" or p.startswith("build/")}
    assert "app/build/x" in found  # a relative pattern is anchored at the context root


def test_exception_reincludes_a_file(tmp_path):
    context = image_dir(tmp_path, ignore="*.log\n!keep.log\n", **{"a.log": "", "keep.log": ""})
    found = paths(context)
    assert "keep.log" in found
    assert "a.log" not in found


def test_last_matching_pattern_wins(tmp_path):
    context = image_dir(tmp_path, ignore="!keep.log\n*.log\n", **{"keep.log": ""})
    assert "keep.log" not in paths(context)


def test_exception_under_an_excluded_directory_is_reached(tmp_path):
    context = image_dir(tmp_path, ignore="build\n!build/keep/**\n",
                        **{"build/drop": "", "build/keep/a": "", "build/keep/sub/b": ""})
    found = paths(context)
    assert {"build/keep/a", "build/keep/sub", "build/keep/sub/b"} <= found
    assert "build/drop" not in found
    assert "build" not in found  # excluded dirs are entered, not listed


def test_leading_slash_is_relative_to_the_context(tmp_path):
    context = image_dir(tmp_path, ignore="/README\n/app/lib\n")
    found = paths(context)
    assert "README" not in found
    assert not {p for p in found if p.startswith("app/lib")}
    assert "app/main.sh" in found


def test_comment_lines_are_not_patterns(tmp_path):
    context = image_dir(tmp_path, ignore="# README\n", **{"# README": ""})
    assert {"README", "# README"} <= paths(context)


def test_dockerfile_and_dockerignore_survive_ignoring_everything(tmp_path):
    context = image_dir(tmp_path, ignore="*\n")
    assert paths(context) == {"Dockerfile", ".dockerignore"}


def test_a_nested_dockerfile_survives_its_directory_being_ignored(tmp_path):
    context = image_dir(tmp_path, ignore="docker\n", **{"docker/app.Dockerfile": "FROM x\n",
                                                          "docker/other": ""})
    found = paths(context, "docker/app.Dockerfile")
    assert "docker/app.Dockerfile" in found
    assert "docker/other" not in found


def test_matching_is_case_sensitive_like_the_docker_cli(tmp_path):
    # docker-py lower-cases both sides; the Docker CLI on Linux does not, nor do we.
    context = image_dir(tmp_path, ignore="*.md\n", **{"NOTES.MD": "", "notes.md": ""})
    found = paths(context)
    assert "NOTES.MD" in found
    assert "notes.md" not in found


def test_symlinks_are_listed_and_not_followed(tmp_path):
    context = image_dir(tmp_path)
    outside = make_tree(tmp_path / "outside", {"secret": "s"})
    (context / "out").symlink_to(outside)
    (context / "applink").symlink_to("app")
    found = {entry.path: entry for entry in context_files(context)}
    assert stat.S_ISLNK(found["out"].mode) and found["out"].link_target == str(outside)
    assert found["applink"].link_target == "app"
    assert not {p for p in found if p.startswith(("out/", "applink/"))}


def test_sockets_are_left_out(tmp_path):
    context = image_dir(tmp_path)
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(context / "s.sock"))
        assert "s.sock" not in paths(context)
    finally:
        server.close()


# --- the tar ------------------------------------------------------------------------------


def tar_members(context: Path, files: list[ContextFile]) -> dict[str, tarfile.TarInfo]:
    buffer = io.BytesIO()
    write_context_tar(context, files, buffer)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer, mode="r:") as tar:
        return {member.name: member for member in tar.getmembers()}


def test_tar_holds_exactly_the_listed_files_with_their_modes(tmp_path):
    context = image_dir(tmp_path, ignore="*.log\n", **{"drop.log": "x"})
    (context / "app/main.sh").chmod(0o755)
    (context / "app/lib").chmod(0o750)
    files = context_files(context)
    members = tar_members(context, files)
    assert set(members) == {entry.path for entry in files}
    assert "drop.log" not in members
    for entry in files:
        member = members[entry.path]
        assert member.mode == stat.S_IMODE(entry.mode)
        assert member.isdir() == stat.S_ISDIR(entry.mode)
        assert member.isfile() == stat.S_ISREG(entry.mode)
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mtime == entry.mtime_ns // 1_000_000_000
    assert members["app/main.sh"].mode == 0o755
    assert members["app/lib"].mode == 0o750


def test_tar_contents_match_the_files(tmp_path):
    context = image_dir(tmp_path, **{"blob.bin": ""})
    (context / "blob.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    buffer = io.BytesIO()
    write_context_tar(context, context_files(context), buffer)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer, mode="r:") as tar:
        for member in tar.getmembers():
            if member.isfile():
                assert tar.extractfile(member).read() == (context / member.name).read_bytes()


def test_tar_keeps_symlinks_as_links(tmp_path):
    context = image_dir(tmp_path)
    (context / "current").symlink_to("app/main.sh")
    (context / "dangling").symlink_to("/nowhere/at/all")
    members = tar_members(context, context_files(context))
    assert members["current"].issym() and members["current"].linkname == "app/main.sh"
    assert members["dangling"].issym() and members["dangling"].linkname == "/nowhere/at/all"


def test_tar_keeps_fifos_as_fifos(tmp_path):
    context = image_dir(tmp_path)
    os.mkfifo(context / "pipe", 0o600)
    members = tar_members(context, context_files(context))
    assert members["pipe"].isfifo() and members["pipe"].mode == 0o600


def test_tar_streams_to_a_sink_that_cannot_seek(tmp_path):
    class WriteOnly:
        def __init__(self):
            self.data = bytearray()

        def write(self, chunk):
            self.data += chunk
            return len(chunk)

    context = image_dir(tmp_path)
    sink = WriteOnly()
    write_context_tar(context, context_files(context), sink)
    with tarfile.open(fileobj=io.BytesIO(bytes(sink.data)), mode="r:") as tar:
        assert "app/main.sh" in tar.getnames()


def test_tar_refuses_a_file_changed_since_listing(tmp_path):
    context = image_dir(tmp_path)
    files = context_files(context)
    (context / "README").write_text("a different, longer readme\n")
    with pytest.raises(ContextChangedError, match="README"):
        write_context_tar(context, files, io.BytesIO())


# --- parity with docker-py ---------------------------------------------------------------

TRICKY_TREE = {
    "Dockerfile": "FROM x\n", "Dockerfile.dev": "FROM y\n", "README.md": "", "notes.md": "",
    "a.log": "", "keep.log": "", "x.tmp": "", "src/main.py": "", "src/main.pyc": "",
    "src/pkg/mod.py": "", "src/pkg/mod.pyc": "", "src/pkg/deep/x.tmp": "",
    "build/out.o": "", "build/keep/a": "", "build/keep/sub/b": "", "build/drop/c": "",
    "docs/readme.md": "", "docs/api/index.html": "", "vendor/lib1/test/t.c": "",
    "vendor/lib1/src/s.c": "", "vendor/lib2/test/u.c": "", "node_modules/m/index.js": "",
    "web/node_modules/n/index.js": "", "foo/a": "", "foo/b": "", "foobar/a": "",
    "abc": "", "axc": "", "a/c": "", "b1.txt": "", "c2.txt": "", "d3.txt": "", "[x": "",
    "docker/app.Dockerfile": "", "docker/other": "", "space dir/f": "", "other": "",
    "sub/inner": "",
}

TRICKY_PATTERNS = [
    ["*.log", "!keep.log"],
    ["**/*.tmp"],
    ["build/", "!build/keep/**"],
    ["build", "!build/keep"],
    ["/README.md", "/src/../other", "./abc", "."],
    ["*", "!src", "src/**/*.pyc"],
    ["**"],
    ["**", "!**/*.py"],
    ["*/*.c", "vendor/*/test"],
    ["a?c", "[a-c]*.txt"],
    ["[!a]*.txt", "[x"],
    ["docs", "!docs/readme.md"],
    ["**/node_modules"],
    ["foo", "!foobar", "!*/a"],
    ["Dockerfile", ".dockerignore"],
    ["docker"],
    ["space dir", "!", "/"],
    ["*/", "!src/"],
    ["src/pkg/", "!src/pkg/deep/*.tmp"],
    ["../sub/inner", "sub/./inner/.."],
]


@pytest.mark.parametrize("patterns", TRICKY_PATTERNS, ids=lambda p: "|".join(p))
@pytest.mark.parametrize("dockerfile", ["Dockerfile", "docker/app.Dockerfile"])
def test_included_paths_match_docker_py(tmp_path, patterns, dockerfile):
    from docker.utils.build import exclude_paths

    context = make_tree(tmp_path / "ctx", TRICKY_TREE)
    (context / "src/link").symlink_to("pkg")
    (context / ".dockerignore").write_text("# tricky\n" + "\n".join(patterns) + "\n")
    # docker-py's own reading of .dockerignore (docker/api/build.py)
    lines = [line.strip() for line in (context / ".dockerignore").read_text().splitlines()]
    docker_py_patterns = [line for line in lines if line and line[0] != "#"]

    expected = exclude_paths(str(context), docker_py_patterns, dockerfile=dockerfile)
    assert paths(context, dockerfile) == expected


@pytest.mark.parametrize("kind, words", [("fifo", "a FIFO, not a regular file"),
                                         ("zero", "a character device, not a regular file")])
def test_a_dockerignore_that_is_a_fifo_or_dev_zero_is_refused_at_once(tmp_path, kind, words):
    """A FIFO hung the build; a link to /dev/zero filled memory until MemoryError."""
    from conftest import confined

    if kind == "fifo":
        os.mkfifo(tmp_path / ".dockerignore")
    else:
        (tmp_path / ".dockerignore").symlink_to("/dev/zero")
    code = ("from dockyard.dockerignore import read_dockerignore\nfrom dockyard.errors import DockyardError\n"
            "try:\n    read_dockerignore('.')\nexcept Exception as e:\n    print(isinstance(e, DockyardError), e)")
    result = confined(["-c", code], tmp_path, timeout=20)
    assert result.stdout.strip() == f"True .dockerignore: {words}; dockyard reads only regular files here"


def test_an_error_below_the_context_names_the_whole_path(tmp_path, monkeypatch):
    """Entries are listed through their directory's descriptor; an error still says where."""
    context = image_dir(tmp_path)
    real_open = os.open

    def refusing(path, flags, mode=0o777, *, dir_fd=None):
        if path == "lib" and dir_fd is not None:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", refusing)
    with pytest.raises(PermissionError) as raised:
        context_files(context)
    assert raised.value.filename == str(context / "app/lib")
    assert str(context / "app/lib") in str(raised.value)


def test_a_directory_replaced_by_a_symlink_while_listed_is_not_followed(tmp_path, monkeypatch):
    """lstat said directory; if a symlink takes its place before it is opened, the walk
    refuses to enter it (O_NOFOLLOW) instead of listing what the link points at."""
    context = image_dir(tmp_path)
    outside = make_tree(tmp_path / "outside", {"secret": "x"})
    real_open = os.open

    def swapping(path, flags, mode=0o777, *, dir_fd=None):
        if path == "lib" and dir_fd is not None:
            lib = context / "app/lib"
            for child in lib.iterdir():
                child.unlink()
            lib.rmdir()
            lib.symlink_to(outside)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", swapping)
    with pytest.raises(OSError) as raised:
        context_files(context)
    assert raised.value.filename == str(context / "app/lib")


def test_the_garbage_collector_runs_again_after_a_listing_even_one_that_failed(tmp_path, monkeypatch):
    """The listing pauses Python's cyclic collector while it makes its tuples; it must be
    running again afterwards, and a caller that had stopped it finds it stopped."""
    context = image_dir(tmp_path)
    seen = []
    real_open = os.open

    def watching(path, flags, mode=0o777, *, dir_fd=None):
        seen.append(gc.isenabled())
        if path == "lib" and dir_fd is not None:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    assert gc.isenabled()
    listing = list_context(context)
    assert listing.summary() and gc.isenabled()
    monkeypatch.setattr(os, "open", watching)
    with pytest.raises(PermissionError):
        list_context(context)
    assert seen[-1] is False, "the walk ran with the collector running"
    assert gc.isenabled()
    monkeypatch.undo()
    gc.disable()
    try:
        list_context(context).summary()
        assert not gc.isenabled()
    finally:
        gc.enable()
