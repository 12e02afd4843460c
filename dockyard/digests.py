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

# Version 2 keeps paths, stamps and digests in three arrays, which are parsed and checked
# without a step of Python per file (a record may hold 20,000): version 1's object of lists
# took about twice as long to load.
FORMAT = "dockyard-digests-2"
RACY_MARGIN_NS = 2_000_000_000
_DIGEST_LENGTH = len("sha256:") + 64
_DIGESTS = re.compile(r"(?:sha256:[0-9a-f]{64})*")  # the digests, each _DIGEST_LENGTH long, one after another
_clock = time.time_ns  # the record's time; tests move it to make a just-written file old

# One remembered file: (size, mtime_ns, ctime_ns, st_dev, st_ino) and its digest.
_Stamp = tuple[int, int, int, int, int]


class FileDigests:
    """The digests remembered for one context, and those read by this build.

    Made before the context is listed (its time bounds the racy rule), given to
    ``context.build_key``, then ``save``d.
    """

    def __init__(self, path: Path | None, remembered: dict[str, tuple[_Stamp, str]],
                 remembered_at: int) -> None:
        self.path = path  # None: nowhere to keep a record (no home directory)
        self.remembered = remembered
        self.remembered_at = remembered_at  # the time of the build that wrote them
        self.started = _clock()
        if remembered_at > self.started:  # written by a clock set wrong, or set back since
            self.remembered = {}
        self.trusted: dict[str, tuple[_Stamp, str]] = {}  # remembered, and used again
        self.read: dict[str, tuple[_Stamp, str]] = {}

    @classmethod
    def load(cls, context_dir: Path, dockerfile: str) -> FileDigests:
        path = record_path(context_dir, dockerfile)
        remembered, remembered_at = _read(path) if path is not None else ({}, 0)
        return cls(path, remembered, remembered_at)

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
        """Keep the digests ``build_key`` used for the next build, when this one read a file or
        no longer has one: a no-op writes nothing. Failing to write only costs a re-read."""
        if self.path is None or (not self.read and len(self.trusted) == len(self.remembered)):
            return
        kept = {**self.trusted, **self.read}
        body = json.dumps({"time_ns": self.started, "paths": list(kept),
                           "stamps": [n for stamp, _ in kept.values() for n in stamp],
                           "digests": [digest for _, digest in kept.values()]}, separators=(",", ":")).encode()
        header = f"{FORMAT} {hashlib.sha256(body).hexdigest()}\n".encode()
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-")
            try:
                with os.fdopen(descriptor, "wb") as out:
                    out.write(header + body)
                os.replace(temporary, self.path)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError:
            pass


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


def _read(path: Path) -> tuple[dict[str, tuple[_Stamp, str]], int]:
    """The digests a record holds and its time; nothing when it cannot be trusted."""
    try:
        # O_NONBLOCK: a FIFO in its place opens at once (and is refused), instead of hanging.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
                             | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return {}, 0
    with os.fdopen(descriptor, "rb") as record:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            return {}, 0
        try:
            data = record.read()
        except OSError:
            return {}, 0
    header, _, body = data.partition(b"\n")
    if header != f"{FORMAT} {hashlib.sha256(body).hexdigest()}".encode():
        return {}, 0
    try:
        parsed = json.loads(body)
        paths, stamps, digests, remembered_at = parsed["paths"], parsed["stamps"], parsed["digests"], parsed["time_ns"]
        # Each check runs over a whole array at once: only str paths, only int (not bool)
        # stamps, five per path, and one well-formed digest per path.
        if (type(paths) is not list or type(stamps) is not list or type(digests) is not list
                or type(remembered_at) is not int or len(stamps) != 5 * len(paths) or len(digests) != len(paths)
                or not set(map(type, paths)) <= {str} or not set(map(type, stamps)) <= {int}
                or not set(map(type, digests)) <= {str} or not set(map(len, digests)) <= {_DIGEST_LENGTH}
                or not _DIGESTS.fullmatch("".join(digests))):
            return {}, 0
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}, 0
    remembered = dict(zip(paths, zip(zip(*[iter(stamps)] * 5), digests)))
    return remembered, remembered_at
