"""Remembered file digests: a no-op key reads no file content, a stale digest is never trusted,
a bad record only costs a re-read, and the key is the same with a record or without (no engine)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Callable

import pytest

from dockyard import builder, context, digests
from dockyard.builder import BuildOptions, Output, _Session, base_key, image_key
from dockyard.config import load
from dockyard.context import build_key, context_files, list_context
from dockyard.digests import FileDigests, record_path

from conftest import make_project


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "dockyard" / "digests"


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The paths whose content is read (every read of a context file opens it here)."""
    seen: list[str] = []
    real = context._open_listed

    def counting(root, entry):
        seen.append(entry.path)
        return real(root, entry)

    monkeypatch.setattr(context, "_open_listed", counting)
    return seen


@pytest.fixture
def clock(monkeypatch):
    """Sets the time a key computation starts at (the record's time), in seconds from now:
    files written by the test are older than the racy margin only for a later build."""
    now = time.time_ns()
    at = [now]
    monkeypatch.setattr(digests, "_clock", lambda: at[0])

    def set_to(seconds: float) -> int:
        at[0] = now + int(seconds * 1e9)
        return at[0]

    return set_to


def image_dir(tmp_path: Path) -> Path:
    root = tmp_path / "img"
    for rel, text in {"Dockerfile": "FROM scratch\nCOPY . /\n", "app/main.sh": "echo hi\n",
                      "app/lib/util.sh": "true\n", "README": "about\n", "big.bin": "x" * 3_000_000}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "app/main.sh").chmod(0o755)
    (root / "link").symlink_to("app/main.sh")
    return root


def key(context_dir: Path, *, remember: bool = True) -> str:
    """The build key as the builder makes it: record loaded, context listed, key, record saved."""
    record = FileDigests.load(context_dir, "Dockerfile") if remember else None
    files = list_context(context_dir)
    found = build_key(context_dir, files, dockerfile="Dockerfile", build_args={"A": "1"},
                      parent_ids=["sha256:aaa"], labels={"l": "v"}, digests=record)
    if record is not None:
        record.save()
    return found


REGULAR = {"Dockerfile", "app/main.sh", "app/lib/util.sh", "README", "big.bin"}


# --- a no-op reads nothing -------------------------------------------------------------


def test_a_second_key_reads_no_file_content_and_writes_no_record(tmp_path, cache, reads, clock):
    context_dir = image_dir(tmp_path)
    listed_before = sorted(p.name for p in context_dir.rglob("*"))
    clock(10)
    first = key(context_dir)
    assert set(reads) == REGULAR
    record = record_path(context_dir, "Dockerfile")
    assert record is not None and record.parent == cache and record.is_file()
    written = os.stat(record)
    reads.clear()
    assert key(context_dir) == first
    assert reads == []
    after = os.stat(record)
    assert (after.st_ino, after.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    # The record lives in the cache, never in the image's directory.
    assert sorted(p.name for p in context_dir.rglob("*")) == listed_before


def test_the_builders_no_op_keys_read_no_file_content(tmp_path, reads, clock, monkeypatch):
    """image_key and base_key, as `build` and `status` call them, use the record."""
    root = make_project(tmp_path / "project").root
    project = load(root / "containers.toml")
    monkeypatch.setattr(builder, "_inspect", lambda ref: None)  # parents by name: no engine
    session = _Session(project, BuildOptions(), Output(io.StringIO()))
    clock(10)
    first = (image_key(session, project.images["httpd"])[0], base_key(project.images["busybox"]))
    assert reads
    reads.clear()
    assert (image_key(session, project.images["httpd"])[0], base_key(project.images["busybox"])) == first
    assert reads == []


# --- nothing stale is trusted ------------------------------------------------------------


def rewrite_in_place(path: Path, text: str) -> None:
    path.write_text(text)


def replace_by_rename(path: Path, text: str) -> None:
    new = path.with_name(path.name + ".new")
    new.write_text(text)
    new.rename(path)


@pytest.mark.parametrize("edit", [rewrite_in_place, replace_by_rename])
def test_a_file_changed_with_its_size_and_mtime_restored_is_read_again(tmp_path, reads, clock, edit):
    context_dir = image_dir(tmp_path)
    script = context_dir / "app/main.sh"
    before = os.stat(script)
    clock(10)
    first = key(context_dir)
    time.sleep(0.05)  # longer than a tick of the kernel's file clock: the write gets a new ctime
    edit(script, "echo ho\n")
    os.utime(script, ns=(before.st_atime_ns, before.st_mtime_ns))
    now = os.stat(script)
    assert (now.st_size, now.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert now.st_ctime_ns != before.st_ctime_ns
    reads.clear()
    clock(20)
    second = key(context_dir)
    assert reads == ["app/main.sh"]
    assert second != first and second == key(context_dir, remember=False)


def test_a_file_as_new_as_the_record_is_read_again_until_it_is_older(tmp_path, reads, clock):
    """Git's racy rule: a file changed in the same tick as its digest was read could change
    again with the same times, so its digest is not trusted until it is older than a record."""
    context_dir = image_dir(tmp_path)
    racy = context_dir / "README"
    recorded_at = clock(10)
    os.utime(racy, ns=(recorded_at, recorded_at))  # mtime == the record's time
    first = key(context_dir)
    reads.clear()
    clock(12.5)
    assert key(context_dir) == first
    assert reads == ["README"]
    reads.clear()
    clock(15)  # the record is now 2.5 s newer than the file: trusted
    assert key(context_dir) == first
    assert reads == []


def test_files_just_written_are_read_again_by_a_build_at_once(tmp_path, reads, clock):
    """Within the margin (timestamps as coarse as FAT's 2 s) every file is racy."""
    context_dir = image_dir(tmp_path)
    clock(0)
    first = key(context_dir)
    reads.clear()
    assert key(context_dir) == first
    assert set(reads) == REGULAR


def test_a_record_from_the_future_is_not_trusted(tmp_path, reads, clock):
    """A record written while the clock was set ahead could call any later file old."""
    context_dir = image_dir(tmp_path)
    clock(3600)
    first = key(context_dir)
    reads.clear()
    clock(10)
    assert key(context_dir) == first
    assert set(reads) == REGULAR


# --- a bad record costs a re-read ---------------------------------------------------------


def truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def a_digest_changed(path: Path) -> None:
    data = path.read_bytes()
    at = data.index(b"sha256:", data.index(b"\n")) + len(b"sha256:")
    path.write_bytes(data[:at] + (b"0" if data[at:at + 1] != b"0" else b"1") + data[at + 1:])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def garbage(path: Path) -> None:
    path.write_bytes(os.urandom(4096))


def another_version(path: Path) -> None:
    path.write_bytes(path.read_bytes().replace(f"{digests.FORMAT} ".encode(), b"dockyard-digests-0 ", 1))


def with_a_good_checksum(body: bytes) -> Callable[[Path], None]:
    """A version 2 record (the arrays alone), checksummed as such."""
    def write(path: Path) -> None:
        path.write_bytes(f"{digests.FORMAT_2} {hashlib.sha256(body).hexdigest()}\n".encode() + body)
    write.__name__ = f"with_a_good_checksum({body.decode()})"
    return write


def version_3(meta: dict | str, part: bytes = b"", files: bytes = b"") -> Callable[[Path], None]:
    """A version 3 record whose header checksum is right, whatever else is wrong."""
    def write(path: Path) -> None:
        line = meta if isinstance(meta, str) else json.dumps(meta)
        checked = line.encode() + b"\n" + part
        path.write_bytes(f"{digests.FORMAT} {hashlib.sha256(checked).hexdigest()}\n".encode() + checked + files)
    write.__name__ = f"version_3({meta})"
    return write


GOOD = "sha256:" + "0" * 64
BAD_ENTRIES = [with_a_good_checksum(body.encode()) for body in (
    '{"time_ns":1,"paths":["README","Dockerfile"],"stamps":[1,2,3],"digests":["x"]}',  # too few stamps
    f'{{"time_ns":1,"paths":["README"],"stamps":[1,2,3,4,true],"digests":["{GOOD}"]}}',  # a bool
    f'{{"time_ns":1,"paths":["README"],"stamps":[1,2,3,4,5],"digests":["{GOOD[:-1]}"]}}',  # a short digest
    f'{{"time_ns":1,"paths":["README","x"],"stamps":[1,2,3,4,5,1,2,3,4,5],"digests":["", "{GOOD}x"]}}',
    f'{{"time_ns":1,"paths":[7],"stamps":[1,2,3,4,5],"digests":["{GOOD}"]}}',  # a path not a str
    f'{{"time_ns":1.5,"paths":["README"],"stamps":[1,2,3,4,5],"digests":["{GOOD}"]}}',  # a time not an int
    '{"time_ns":1,"files":{"README":[1,2,3],"Dockerfile":"x"}}',  # version 1's shape
    '[1, 2]',
)] + [version_3(meta, part) for meta, part in (
    ({"time_ns": 1, "summary": "x" * 64, "part": 0, "files": ""}, b""),  # a summary not hex
    ({"time_ns": 1, "summary": None, "part": 99, "files": ""}, b"[]\n"),  # longer than the record
    ({"time_ns": 1, "summary": None, "part": -1, "files": ""}, b""),
    ({"time_ns": 1.5, "summary": None, "part": 0, "files": ""}, b""),  # a time not an int
    ({"time_ns": 1, "summary": None, "part": 0}, b""),  # no checksum of the arrays
    ('{"time_ns": 1, "summary": null, "part": 0, "files": 7}', b""),
    ('[1, 2]', b""),
    ('not json', b""),
)]


DEEP = b"[" * 100_000  # json.loads raises RecursionError, not ValueError


def named(write: Callable[[Path], None], name: str) -> Callable[[Path], None]:
    write.__name__ = name
    return write


DEEPLY_NESTED = [
    named(with_a_good_checksum(DEEP), "version_2_deeply_nested"),
    named(version_3(DEEP.decode()), "version_3_meta_deeply_nested"),
    named(version_3({"time_ns": 1, "summary": None, "part": 0, "files": hashlib.sha256(DEEP).hexdigest()},
                    files=DEEP), "version_3_arrays_deeply_nested"),
]


def a_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def a_link_to_dev_zero(path: Path) -> None:
    path.unlink()
    path.symlink_to("/dev/zero")


@pytest.mark.parametrize("damage", [truncated, a_digest_changed, empty, garbage, another_version,
                                    *BAD_ENTRIES, *DEEPLY_NESTED, a_fifo, a_link_to_dev_zero],
                         ids=lambda damage: damage.__name__)
def test_a_bad_record_is_ignored_and_written_again(tmp_path, reads, clock, damage):
    context_dir = image_dir(tmp_path)
    clock(10)
    first = key(context_dir)
    record = record_path(context_dir, "Dockerfile")
    assert record is not None
    damage(record)
    reads.clear()
    assert key(context_dir) == first
    assert set(reads) == REGULAR
    assert record.is_file() and not record.is_symlink()
    reads.clear()
    assert key(context_dir) == first
    assert reads == []


def test_a_cache_that_cannot_be_written_costs_only_re_reads(tmp_path, reads, clock, monkeypatch):
    context_dir = image_dir(tmp_path)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    clock(10)
    first = key(context_dir)
    reads.clear()
    assert key(context_dir) == first
    assert set(reads) == REGULAR


def test_a_record_is_one_per_context_and_dockerfile(tmp_path):
    one, other = image_dir(tmp_path / "a"), image_dir(tmp_path / "b")
    paths = {record_path(one, "Dockerfile"), record_path(one, "Dockerfile.dev"), record_path(other, "Dockerfile")}
    assert len(paths) == 3


# --- the key --------------------------------------------------------------------------------


def test_keys_are_the_same_with_a_record_and_without(tmp_path, reads, clock):
    context_dir = image_dir(tmp_path)
    os.mkfifo(context_dir / "pipe")
    (context_dir / "empty").write_bytes(b"")
    without = key(context_dir, remember=False)
    clock(10)
    assert key(context_dir) == without  # the record is written
    assert key(context_dir) == without  # the record is used
    reads.clear()
    (context_dir / "app/lib/util.sh").write_text("false\n")
    clock(20)
    changed = key(context_dir)
    assert reads == ["app/lib/util.sh"]
    assert changed == key(context_dir, remember=False) != without


# --- the summary: a no-op makes no record per file -------------------------------------------


@pytest.fixture
def records_made(monkeypatch) -> list[str]:
    """The paths a ContextFile record is made for, and those whose digest is looked up."""
    made: list[str] = []
    real_file, real_known = context._context_file, FileDigests.known

    def counting_file(rel_path, st, links):
        made.append(rel_path)
        return real_file(rel_path, st, links)

    def counting_known(self, entry):
        made.append(f"known:{entry.path}")
        return real_known(self, entry)

    monkeypatch.setattr(context, "_context_file", counting_file)
    monkeypatch.setattr(FileDigests, "known", counting_known)
    return made


def test_a_no_op_takes_the_file_records_kept_with_the_listing_s_summary(tmp_path, reads, clock, records_made):
    context_dir = image_dir(tmp_path)
    clock(10)
    first = key(context_dir)
    assert records_made and set(reads) == REGULAR
    records_made.clear()
    reads.clear()
    assert key(context_dir) == first == key(context_dir, remember=False)
    records_made.clear()
    reads.clear()
    assert key(context_dir) == first
    assert records_made == [] and reads == []


def add_a_file(root: Path) -> None:
    (root / "app/new.sh").write_text("new\n")


def remove_a_file(root: Path) -> None:
    (root / "README").unlink()


def rename_a_file(root: Path) -> None:
    (root / "README").rename(root / "README.md")


def chmod_a_file(root: Path) -> None:
    (root / "README").chmod(0o600)


def chmod_a_directory(root: Path) -> None:
    (root / "app/lib").chmod(0o700)


def retarget_the_link(root: Path) -> None:
    (root / "link").unlink()
    (root / "link").symlink_to("README")


def make_an_empty_directory(root: Path) -> None:
    (root / "app/empty").mkdir()


def swap_two_files_of_one_size(root: Path) -> None:
    (root / "a").write_text("1\n")
    (root / "b").write_text("2\n")


def ignore_a_file(root: Path) -> None:
    (root / ".dockerignore").write_text("README\n")


def edit_restoring_size_and_mtime(root: Path) -> None:
    script = root / "app/main.sh"
    before = os.stat(script)
    script.write_text("echo ho\n")
    os.utime(script, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.mark.parametrize("change", [add_a_file, remove_a_file, rename_a_file, chmod_a_file, chmod_a_directory,
                                    retarget_the_link, make_an_empty_directory, ignore_a_file,
                                    edit_restoring_size_and_mtime],
                         ids=lambda change: change.__name__)
def test_any_change_after_a_summary_was_kept_gives_the_key_of_the_files_as_they_are(tmp_path, clock, change):
    context_dir = image_dir(tmp_path)
    clock(10)
    first = key(context_dir)
    assert key(context_dir) == first  # kept with the summary, and used
    time.sleep(0.05)  # the change gets a ctime of its own (the test's record is dated ahead)
    change(context_dir)
    clock(20)
    changed = key(context_dir)
    assert changed != first
    assert changed == key(context_dir, remember=False)
    clock(30)
    assert key(context_dir) == changed


def test_two_files_that_swap_contents_of_one_size_change_the_key(tmp_path, clock):
    context_dir = image_dir(tmp_path)
    swap_two_files_of_one_size(context_dir)
    clock(10)
    first = key(context_dir)
    assert key(context_dir) == first
    time.sleep(0.05)
    (context_dir / "a").write_text("2\n")
    (context_dir / "b").write_text("1\n")
    clock(20)
    assert key(context_dir) == key(context_dir, remember=False) != first


def test_no_summary_is_kept_while_an_entry_is_as_new_as_the_build(tmp_path, reads, clock, records_made):
    """Git's racy rule, for the listing as a whole: a directory made in the margin keeps the
    next build file by file (reading nothing: the files are old), which then keeps a summary."""
    context_dir = image_dir(tmp_path)
    recorded_at = clock(10)
    first = key(context_dir)
    (context_dir / "app/empty").mkdir()
    os.utime(context_dir / "app/empty", ns=(recorded_at, recorded_at))
    clock(11)
    second = key(context_dir)
    records_made.clear()
    reads.clear()
    clock(12)
    assert key(context_dir) == second != first
    assert "known:README" in records_made and reads == []
    clock(14)  # the directory is now older than the margin: this build keeps a summary
    assert key(context_dir) == second
    clock(15)
    records_made.clear()
    assert key(context_dir) == second
    assert records_made == []


def test_a_version_2_record_is_read_and_its_digests_used(tmp_path, reads, clock, cache):
    context_dir = image_dir(tmp_path)
    clock(10)
    first = key(context_dir)
    record = record_path(context_dir, "Dockerfile")
    remembered = FileDigests.load(context_dir, "Dockerfile").remembered
    assert set(remembered) == REGULAR
    body = json.dumps({"time_ns": digests._clock(), "paths": list(remembered),
                       "stamps": [n for stamp, _ in remembered.values() for n in stamp],
                       "digests": [digest for _, digest in remembered.values()]}).encode()
    with_a_good_checksum(body)(record)
    reads.clear()
    clock(20)
    assert key(context_dir) == first
    assert reads == []
    assert record.read_bytes().startswith(f"{digests.FORMAT} ".encode())  # written again, as version 3


def test_a_record_whose_arrays_are_damaged_keeps_its_summary(tmp_path, reads, clock):
    """The arrays have a checksum of their own, checked only when a build goes file by file."""
    context_dir = image_dir(tmp_path)
    clock(10)
    first = key(context_dir)
    record = record_path(context_dir, "Dockerfile")
    data = record.read_bytes()
    record.write_bytes(data[:-5] + b"xxxxx")
    reads.clear()
    assert key(context_dir) == first
    assert reads == []
    time.sleep(0.05)
    (context_dir / "README").write_text("other\n")
    clock(20)
    assert key(context_dir) == key(context_dir, remember=False) != first
    assert set(reads) >= REGULAR  # the arrays were refused: every file read again


def test_the_summary_covers_the_key_s_version(tmp_path, monkeypatch):
    """The records kept with a summary are the key's own bytes: a dockyard whose key records
    differ (a new KEY_VERSION) must find no summary of its own in an older record."""
    context_dir = image_dir(tmp_path)
    before = list_context(context_dir).summary()
    assert list_context(context_dir).summary() == before
    monkeypatch.setattr(context, "KEY_VERSION", "dockyard-key-2")
    assert list_context(context_dir).summary() != before


def test_a_listing_is_the_sequence_of_the_context_s_files(tmp_path):
    context_dir = image_dir(tmp_path)
    listing = list_context(context_dir)
    files = context_files(context_dir)
    assert list(listing) == files and len(listing) == len(files)
    assert listing[0] == files[0] and listing[-2:] == files[-2:]
    assert [path for path, _ in listing.entries] == [entry.path for entry in files]
    assert listing.summary() == list_context(context_dir).summary()
