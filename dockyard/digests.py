"""Remembered content digests, so that a no-op build reads no file content.

As git's index and Make do, a build looks at sizes and times first: each regular file's
sha256 is kept with what ``lstat`` said of the file when it was listed (size, mtime and ctime
in nanoseconds, device and inode), and the next build uses it again while ``lstat`` says the
same. A write changes ctime, which no one can set back, so an edit that restores size and
mtime (``os.utime``) is read again.

Git's racy rule: a file changed within the timestamp granularity of the moment it was read
could change again with the same times. So a digest is trusted only for a file whose mtime
and ctime are older than the record's time (taken before the listing) by more than
``RACY_MARGIN_NS``; a later build reads such a file again, and trusts it once it is older. The
margin is the coarsest timestamps of a common filesystem (FAT's two seconds), because the
record, unlike git's index, may live on another filesystem than the files, with another
clock granularity: its own mtime says nothing about theirs.

The record of one context (a directory and its Dockerfile) is one file in
``$XDG_CACHE_HOME/dockyard/digests/`` (else ``~/.cache/dockyard/digests/``), never in the
images' directories, replaced atomically (a temporary file renamed over it). A checksum
covers its content. A record that is missing, truncated, corrupt, of another version, not a
regular file of this user, or unwritable costs a re-read, never an error and never a wrong key.

A no-op need not even look at each file's digest: the record also keeps a summary of the
listing (a sha256 over every entry's path and stamp, ``context.Listing.summary``) with the
key's file records made for it, when no entry of that listing was racy. A later build whose
listing has the same summary has the same entries with the same stamps, so the same racy-free
contents, and takes those records as they are. Any change (a file written, added, removed,
renamed, chmod-ed, a directory made) changes a path or a stamp, so the summary, and that
build goes file by file as above.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
import time
from pathlib import Path

from .context import ContextFile

# Version 3: a header (the format, and a sha256 of the next two parts), a line of what the
# record is (its time, the context's summary, the length of the key's file records, the
# sha256 of the arrays), the key's file records as the key reads them, then each file's
# path, stamp and digest in three arrays, checked and parsed without a step of Python per
# file (a record may hold 20,000), and only when the summary differs. Version 2's records
# (the arrays alone, with the time) are still read, so an upgrade reads no file again.
FORMAT = "dockyard-digests-3"
FORMAT_2 = "dockyard-digests-2"
RACY_MARGIN_NS = 2_000_000_000
_DIGEST_LENGTH = len("sha256:") + 64
_DIGESTS = re.compile(r"(?:sha256:[0-9a-f]{64})*")  # the digests, each _DIGEST_LENGTH long, one after another
_SHA256 = re.compile(r"[0-9a-f]{64}")
_clock = time.time_ns  # the record's time; tests move it to make a just-written file old

# One remembered file: (size, mtime_ns, ctime_ns, st_dev, st_ino) and its digest.
_Stamp = tuple[int, int, int, int, int]


class FileDigests:
    """The digests remembered for one context, and those read by this build.

    Made before the context is listed (its time bounds the racy rule), given to
    ``context.build_key``, then ``save``d.

    The record also keeps the context's summary (``context.Listing.summary``: every entry's
    path and stamp) with the key's file records made from it, when no entry was racy then. A
    build whose listing has the same summary uses those records as they are: no file record
    of its own, no digest looked up, nothing read or written.
    """

    def __init__(self, path: Path | None, record: _Record) -> None:
        self.path = path  # None: nowhere to keep a record (no home directory)
        self.remembered_at = record.time_ns  # the time of the build that wrote it
        self.started = _clock()
        self._record = record
        if record.time_ns > self.started:  # written by a clock set wrong, or set back since
            self._record = _NOTHING
        self._remembered: dict[str, tuple[_Stamp, str]] | None = None
        self.trusted: dict[str, tuple[_Stamp, str]] = {}  # remembered, and used again
        self.read: dict[str, tuple[_Stamp, str]] = {}
        self.summary_used = False
        self.learned: tuple[str | None, bytes] | None = None  # (summary or None when racy, file records)

    @classmethod
    def load(cls, context_dir: Path, dockerfile: str) -> FileDigests:
        path = record_path(context_dir, dockerfile)
        return cls(path, _read(path) if path is not None else _NOTHING)

    @property
    def remembered(self) -> dict[str, tuple[_Stamp, str]]:
        """The digest of each file the record holds, by path: parsed on first use."""
        if self._remembered is None:
            self._remembered = _parse_files(self._record.files, self._record.files_checksum)
        return self._remembered

    def remembered_part(self, summary: str) -> memoryview | bytes | None:
        """The key's file records kept with ``summary``, if the record has them for it."""
        if self._record.summary is None or summary != self._record.summary:
            return None
        self.summary_used = True
        return self._record.part

    def learn_part(self, summary: str, part: bytes, newest_ns: int) -> None:
        """The key's file records made file by file for the listing of ``summary``, kept with
        it only when no entry is as new as this build, less the racy margin."""
        kept = summary if newest_ns < self.started - RACY_MARGIN_NS else None
        self.learned = (kept, part)

    def known(self, entry: ContextFile) -> str | None:
        """The digest of ``entry`` remembered from before, if the file is as it was then and
        was not racy then."""
        found = self.remembered.get(entry.path)
        if found is None or found[0] != _stamp(entry):
            return None
        if max(entry.mtime_ns, entry.ctime_ns) >= self.remembered_at - RACY_MARGIN_NS:
            return None
        self.trusted[entry.path] = found
        return found[1]

    def learn(self, entry: ContextFile, digest: str) -> None:
        self.read[entry.path] = (_stamp(entry), digest)

    def save(self) -> None:
        """Keep the digests ``build_key`` used for the next build, when this one read a file,
        no longer has one, or has a summary to keep that the record does not: a no-op writes
        nothing. Failing to write only costs a re-read."""
        summary, part = self.learned if self.learned is not None else (None, b"")
        if self.path is None or self.summary_used or (
                not self.read and len(self.trusted) == len(self.remembered) and summary == self._record.summary):
            return
        kept = {**self.trusted, **self.read}
        files = json.dumps({"paths": list(kept), "stamps": [n for stamp, _ in kept.values() for n in stamp],
                            "digests": [digest for _, digest in kept.values()]}, separators=(",", ":")).encode()
        meta = json.dumps({"time_ns": self.started, "summary": summary, "part": len(part),
                           "files": hashlib.sha256(files).hexdigest()}, separators=(",", ":")).encode()
        checked = meta + b"\n" + part
        header = f"{FORMAT} {hashlib.sha256(checked).hexdigest()}\n".encode()
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-")
            try:
                with os.fdopen(descriptor, "wb") as out:
                    out.write(header + checked + files)
                os.replace(temporary, self.path)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError:
            pass


class _Record:
    """A record as read: its time, the summary its file records were made for (None: none
    kept), those records, and the three arrays of its files' digests, not yet parsed."""

    __slots__ = ("time_ns", "summary", "part", "files", "files_checksum")

    def __init__(self, time_ns: int, summary: str | None, part: memoryview | bytes,
                 files: memoryview | bytes, files_checksum: str | None) -> None:
        self.time_ns, self.summary, self.part = time_ns, summary, part
        self.files, self.files_checksum = files, files_checksum


_NOTHING = _Record(0, None, b"", b"", None)


def record_dir() -> Path | None:
    """Where the records are kept: $XDG_CACHE_HOME/dockyard/digests, else ~/.cache/...;
    None when there is no home directory to keep them in."""
    cache = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(cache):  # the XDG spec: a relative path is invalid, ignore it
        try:
            cache = os.path.join(Path.home(), ".cache")
        except RuntimeError:
            return None
    return Path(cache) / "dockyard" / "digests"


def record_path(context_dir: Path, dockerfile: str) -> Path | None:
    directory = record_dir()
    if directory is None:
        return None
    name = hashlib.sha256(f"{os.path.realpath(context_dir)}\0{dockerfile}".encode()).hexdigest()[:32]
    return directory / f"{name}.digests"


def _stamp(entry: ContextFile) -> _Stamp:
    return (entry.size, entry.mtime_ns, entry.ctime_ns, *entry.inode)


def _read(path: Path) -> _Record:
    """The record at ``path``; nothing when it cannot be trusted. Its files' arrays are
    checked when they are parsed (``_parse_files``), which a build whose summary is the
    record's never does: it reads the file once and copies nothing of it."""
    try:
        # O_NONBLOCK: a FIFO in its place opens at once (and is refused), instead of hanging.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
                             | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return _NOTHING
    with os.fdopen(descriptor, "rb") as record:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            return _NOTHING
        try:
            data = record.read()
        except OSError:
            return _NOTHING
    view = memoryview(data)
    header_end = data.find(b"\n")
    version, _, checksum = data[:max(header_end, 0)].partition(b" ")
    try:
        if version == FORMAT_2.encode():  # the arrays, with the time among them
            body = view[header_end + 1:]
            if checksum != hashlib.sha256(body).hexdigest().encode():
                return _NOTHING
            remembered_at = json.loads(bytes(body))["time_ns"]
            record = _Record(remembered_at, None, b"", body, None)
        elif version == FORMAT.encode():
            meta_end = data.find(b"\n", header_end + 1)
            meta = json.loads(data[header_end + 1:meta_end]) if meta_end > 0 else None
            remembered_at, summary, length, files_checksum = (
                meta["time_ns"], meta["summary"], meta["part"], meta["files"])
            if (type(length) is not int or not 0 <= length <= len(data) - meta_end - 1
                    or not (summary is None or (type(summary) is str and _SHA256.fullmatch(summary)))
                    or type(files_checksum) is not str
                    or checksum != hashlib.sha256(view[header_end + 1:meta_end + 1 + length]).hexdigest().encode()):
                return _NOTHING
            part_end = meta_end + 1 + length
            record = _Record(remembered_at, summary, view[meta_end + 1:part_end], view[part_end:], files_checksum)
        else:
            return _NOTHING
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):  # RecursionError: JSON nested deep
        return _NOTHING
    return record if type(remembered_at) is int else _NOTHING


def _parse_files(files: memoryview | bytes, checksum: str | None) -> dict[str, tuple[_Stamp, str]]:
    """The digests of a record's three arrays, by path; none when they are not well-formed,
    or do not match the checksum the record gives them (None: covered by its header's)."""
    if not files or (checksum is not None and checksum != hashlib.sha256(files).hexdigest()):
        return {}
    try:
        parsed = json.loads(bytes(files))
        paths, stamps, digests = parsed["paths"], parsed["stamps"], parsed["digests"]
        # Each check runs over a whole array at once: only str paths, only int (not bool)
        # stamps, five per path, and one well-formed digest per path.
        if (type(paths) is not list or type(stamps) is not list or type(digests) is not list
                or len(stamps) != 5 * len(paths) or len(digests) != len(paths)
                or not set(map(type, paths)) <= {str} or not set(map(type, stamps)) <= {int}
                or not set(map(type, digests)) <= {str} or not set(map(len, digests)) <= {_DIGEST_LENGTH}
                or not _DIGESTS.fullmatch("".join(digests))):
            return {}
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):  # RecursionError: JSON nested deep
        return {}
    return dict(zip(paths, zip(zip(*[iter(stamps)] * 5), digests)))
