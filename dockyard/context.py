"""The build context of an image directory: the files Docker would send, their key, their tar.

One listing, made once by ``list_context`` (``context_files`` gives its records), feeds both
``build_key`` and ``write_context_tar``, so the key can never describe other files than the
engine receives.
Both re-check each regular file's size and mtime against the list when they read it, and
raise ``ContextChangedError`` if the file moved under them.

``.dockerignore`` is read by ``dockerignore`` (docker-py 7.x's rules), so a context holds
exactly the paths docker-py's ``exclude_paths`` yields, but for case (matched as the Docker
CLI on Linux matches it).

Directories are entries of their own (the tar needs their modes, and a chmod on one changes
what ``COPY`` makes); an excluded directory is not, even when the walk descends into it for
a ``!`` exception. Symlinks are recorded as links and never followed; sockets are left out,
as Docker leaves them out.

``build_key`` may be given the digests a previous build read (``digests.FileDigests``): a
file whose size, times, device and inode are as they were then is not read again, and a
listing whose every entry is as it was then (its summary) takes the key's file records as
they were then.

Reading errors surface as ``OSError`` (``ContextChangedError`` is one); the builder turns
them into a ``DockyardError``. Only the standard library is imported here: listing and
hashing must stay cheap, and ``inv --list`` must not pull in docker-py.
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import os
import pickle
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .dockerignore import IgnoreRules, read_dockerignore

if TYPE_CHECKING:
    from .digests import FileDigests

KEY_VERSION = "dockyard-key-1"
CHUNK_SIZE = 1 << 20


class ContextChangedError(OSError):
    """A listed file changed between listing and reading; the build should be run again."""


@dataclass(frozen=True)
class ContextFile:
    """One entry of a build context, as ``lstat`` saw it when the context was listed."""

    path: str  # posix path relative to the context dir, e.g. "cgi/hello.cgi"
    mode: int  # full st_mode: type bits and permission bits
    size: int  # bytes of a regular file; 0 for anything else
    mtime_ns: int  # for the tar header and the changed-file check; never part of the key
    link_target: str | None = None  # symlinks only
    device: tuple[int, int] | None = None  # (major, minor) of a device node only
    # Never part of the key either: with size and mtime_ns, what tells a remembered digest
    # from a stale one (``digests``). A write changes ctime, which no one can set back.
    ctime_ns: int = 0
    inode: tuple[int, int] = (0, 0)  # (st_dev, st_ino)


def context_files(context_dir: Path, dockerfile: str = "Dockerfile") -> list[ContextFile]:
    """Every entry Docker would send for ``context_dir``, sorted by path.

    The Dockerfile and ``.dockerignore`` are kept even when a pattern excludes them, as the
    Docker CLI and docker-py keep them (the daemon needs them, then hides them from COPY).
    """
    return list_context(context_dir, dockerfile).files


def list_context(context_dir: Path, dockerfile: str = "Dockerfile") -> Listing:
    """The entries of ``context_files`` as ``lstat`` saw them, before any ContextFile is made."""
    root = os.fspath(context_dir)
    rules = IgnoreRules(read_dockerignore(Path(root)), dockerfile)
    found: list[tuple[str, os.stat_result]] = []
    links: dict[str, str] = {}
    paused = _pause_collector()
    try:
        top = os.open(root, _DIRECTORY_FLAGS & ~os.O_NOFOLLOW)  # the image's directory may be a symlink
        try:
            _walk(root, top, "", rules, found, links)
        finally:
            os.close(top)
    finally:
        if paused:
            gc.enable()
    found.sort(key=_first)
    return Listing(root, found, links)


def _pause_collector() -> bool:
    """Stop Python's cyclic garbage collector while a listing makes its tuples, one or two
    per entry and none in a cycle: otherwise every 700 of them start a collection, and the
    older generations' collections walk them all again (15 million instructions of a no-op
    over 20,000 entries, as callgrind counts them). True when it was running (the caller
    starts it again); a thread that finds it stopped leaves it to the thread that stopped it,
    so with several build workers listing at once the pause may end before the last one's
    listing does (it is a saving, never a condition of correctness)."""
    if not gc.isenabled():
        return False
    gc.disable()
    return True


class Listing(Sequence[ContextFile]):
    """A listed context: each entry's path and ``lstat``, sorted by path; as a sequence, its
    ContextFile records, made on first use.

    A no-op build of a context of 20,000 files needs no record of its own per file: only its
    ``summary``, which ``build_key`` compares with the one remembered with the last build's
    file records (``digests``). Its files are made when a key must be computed file by file,
    or a context tar written.
    """

    def __init__(self, root: str, entries: list[tuple[str, os.stat_result]], links: dict[str, str]) -> None:
        self.root = root
        self.entries = entries
        self.links = links  # each symlink's target, read as it was listed
        self._files: list[ContextFile] | None = None
        self._summary: str | None = None

    @property
    def files(self) -> list[ContextFile]:
        if self._files is None:
            links = self.links
            self._files = [_context_file(path, st, links) for path, st in self.entries]
        return self._files

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index):  # noqa: ANN001 - an int or a slice, as a list takes
        return self.files[index]

    def __iter__(self) -> Iterator[ContextFile]:
        return iter(self.files)

    def summary(self) -> str:
        """A sha256 over the key's version, every entry's path, type and mode, size, mtime
        and ctime in nanoseconds, the device it is on and its inode, and each symlink's
        target: what the digests of a context's files are trusted by (``digests``), for the
        whole context at once."""
        if self._summary is None:
            entries = self.entries
            # The key's version first: the records kept with a summary are the key's own
            # bytes, which a dockyard whose key records differ must not take.
            digest = hashlib.sha256(KEY_VERSION.encode() + b"\0\0")
            digest.update("\0".join(map(_first, entries)).encode("utf-8", "surrogateescape"))
            # By C-level getters and pickle (a fixed format for tuples of ints): a Python step
            # per entry would cost as much as its lstat.
            paused = _pause_collector()
            try:
                stamps = list(map(_lstat_stamp, map(_second, entries)))
            finally:
                if paused:
                    gc.enable()
            digest.update(b"\0\0" + pickle.dumps(stamps, protocol=4) + b"\0\0"
                          + repr(sorted(self.links.items())).encode())
            self._summary = digest.hexdigest()
        return self._summary

    def newest_ns(self) -> int:
        """The latest mtime or ctime of any entry (0 for an empty context)."""
        return max((max(st.st_mtime_ns, st.st_ctime_ns) for _, st in self.entries), default=0)


def build_key(context_dir: Path, files: Sequence[ContextFile], *, dockerfile: str,
              build_args: dict[str, str], parent_ids: list[str],
              labels: dict[str, str] | None = None, options: dict[str, str] | None = None,
              digests: FileDigests | None = None) -> str:
    """A sha256 over everything a build reads: files (path, mode, content), args, parents,
    the labels the image is given, and the build's options (its target stage, its network).

    Not mtimes, not owners: the engine ignores them too, and a fresh checkout must not rebuild.
    ``digests``: the content digests remembered from before, used where a file is as it was
    then, and told each digest read now; for a ``Listing`` as a whole when no entry changed
    since (its summary), so that not even a record per file is made. The key is the same with
    them or without.
    """
    key = hashlib.sha256()
    _feed(key, [KEY_VERSION, dockerfile, sorted(build_args.items()), list(parent_ids)])
    if labels:  # only when there are some, so that keys without labels stay as they were
        _feed(key, ["labels", sorted(labels.items())])
    if options:  # likewise
        _feed(key, ["options", sorted(options.items())])
    key.update(_files_part(context_dir, files, digests))
    return key.hexdigest()


def _files_part(context_dir: Path, files: Sequence[ContextFile],
                digests: FileDigests | None) -> bytes | memoryview:
    """The key's records of the files: one JSON line each, ``[path, mode, digest]`` (taken
    from the record as a view of it when the summary is the record's)."""
    summary = files.summary() if digests is not None and isinstance(files, Listing) else None
    if summary is not None:
        part = digests.remembered_part(summary)
        if part is not None:
            return part
    root = os.fspath(context_dir)
    buffer = bytearray(CHUNK_SIZE)  # one read buffer for all files: small files stay cheap
    # Each file is one record as _feed writes it, made without json.dumps's set-up per
    # call (a context may have 20,000 files): the same bytes, so the same key.
    part = "".join([f"[{_json_string(entry.path)}, {entry.mode}, "
                    f"{_json_string(_content_digest(root, entry, buffer, digests))}]\n"
                    for entry in sorted(files, key=_path_of)]).encode("ascii")
    if summary is not None:
        digests.learn_part(summary, part, files.newest_ns())
    return part


def write_context_tar(context_dir: Path, files: Sequence[ContextFile], out: BinaryIO,
                      appended: dict[str, bytes] | None = None) -> None:
    """Stream an uncompressed tar of exactly ``files`` to ``out``, owned by root.

    ``appended`` adds bytes to the end of named small files as they go into the tar
    (the builder's LABEL line on the Dockerfile); the files on disk are not touched.
    ``out`` is only written to, so it may be a pipe; it is left open.
    """
    appended = appended or {}
    root = os.fspath(context_dir)
    # Plain "w" mode writes straight through; stream mode ("w|") re-copies its whole buffer
    # on every small write, which made 20,000 small files take seconds.
    with tarfile.open(fileobj=_CountingWriter(out), mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.copybufsize = CHUNK_SIZE
        for entry in sorted(files, key=lambda entry: entry.path):
            info = _tar_info(entry)
            if stat.S_ISREG(entry.mode) and entry.path in appended:
                with _open_listed(root, entry) as content:
                    data = content.read() + appended[entry.path]
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif stat.S_ISREG(entry.mode):
                with _open_listed(root, entry) as content:
                    tar.addfile(info, content)
            else:
                tar.addfile(info)


# --- walking --------------------------------------------------------------------------


def _walk(root: str, directory: int, rel_dir: str, rules: IgnoreRules,
          found: list[tuple[str, os.stat_result]], links: dict[str, str]) -> None:
    """Add the entries of the open ``directory`` (``rel_dir`` of ``root``) to ``found``, and
    each symlink's target to ``links``. Each entry's lstat is taken relative to its
    directory's descriptor (one path component for the kernel to look up, not the whole
    path), into a list of (path, lstat) pairs, not a generator nor a record per entry: a
    context may have 20,000 files, and a no-op build lists them all."""
    try:
        with os.scandir(directory) as entries:
            listed = list(entries)
    except OSError as e:
        raise _at(e, root, rel_dir) from None
    prefix = f"{rel_dir}/" if rel_dir else ""
    can_exclude = rules.can_exclude
    for dir_entry in listed:
        rel_path = prefix + dir_entry.name
        try:
            st = dir_entry.stat(follow_symlinks=False)
            kind = stat.S_IFMT(st.st_mode)
            if kind == stat.S_IFSOCK:
                continue  # a socket cannot travel in a tar; Docker skips it too
            excluded = can_exclude and rules.excludes(rel_path)
            if not excluded:
                found.append((rel_path, st))
                if kind == stat.S_IFLNK:
                    links[rel_path] = os.readlink(dir_entry.name, dir_fd=directory)
            # lstat said directory, so a symlink to a directory is never entered (nor one
            # that replaced the directory since: O_NOFOLLOW).
            if kind != stat.S_IFDIR or (excluded and not rules.may_reinclude_under(rel_path)):
                continue
            below = os.open(dir_entry.name, _DIRECTORY_FLAGS, dir_fd=directory)
        except OSError as e:
            raise _at(e, root, rel_path) from None
        try:
            _walk(root, below, rel_path, rules, found, links)
        finally:
            os.close(below)


def _at(error: OSError, root: str, rel_path: str) -> OSError:
    """The error of a call relative to a directory's descriptor, naming the whole path."""
    return type(error)(error.errno, error.strerror, os.path.join(root, rel_path) if rel_path else root)


_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _context_file(rel_path: str, st: os.stat_result, links: dict[str, str]) -> ContextFile:
    mode = st.st_mode
    if stat.S_ISREG(mode):  # the common case first
        return ContextFile(rel_path, mode, st.st_size, st.st_mtime_ns, None, None, st.st_ctime_ns,
                           (st.st_dev, st.st_ino))
    device = None
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        device = (os.major(st.st_rdev), os.minor(st.st_rdev))
    return ContextFile(rel_path, mode, 0, st.st_mtime_ns, links.get(rel_path), device,
                       st.st_ctime_ns, (st.st_dev, st.st_ino))


_first = itemgetter(0)
_second = itemgetter(1)
_lstat_stamp = attrgetter("st_mode", "st_size", "st_mtime_ns", "st_ctime_ns", "st_dev", "st_ino")


# --- hashing and reading ----------------------------------------------------------------


def _path_of(entry: ContextFile) -> str:
    return entry.path


# The JSON string of a str, escaped as json.dumps(..., ensure_ascii=True) escapes it.
_json_string = json.encoder.encode_basestring_ascii


def _feed(key: hashlib._Hash, record: list[object]) -> None:
    # One JSON line per record: quoting makes every field boundary unambiguous.
    key.update(json.dumps(record, ensure_ascii=True).encode("ascii") + b"\n")


def _content_digest(root: str, entry: ContextFile, buffer: bytearray,
                    digests: FileDigests | None) -> str:
    if stat.S_ISREG(entry.mode):
        if digests is None:
            return _file_sha256(root, entry, buffer)
        known = digests.known(entry)
        if known is None:
            known = _file_sha256(root, entry, buffer)
            digests.learn(entry, known)
        return known
    if stat.S_ISLNK(entry.mode):
        return f"link:{entry.link_target}"
    if entry.device is not None:
        return f"device:{entry.device[0]}:{entry.device[1]}"
    return ""  # a directory or a FIFO: its mode says it all


def _file_sha256(root: str, entry: ContextFile, buffer: bytearray) -> str:
    digest = hashlib.sha256()
    view = memoryview(buffer)
    total = 0
    with _open_listed(root, entry) as content:
        while count := content.readinto(buffer):
            digest.update(view[:count])
            total += count
    if total != entry.size:
        path = os.path.join(root, entry.path)
        raise ContextChangedError(f"{path} changed while it was being read")
    return "sha256:" + digest.hexdigest()


def _open_listed(root: str, entry: ContextFile) -> BinaryIO:
    """Open a listed regular file, refusing one that changed since it was listed."""
    path = os.path.join(root, entry.path)
    content = open(path, "rb", buffering=0)  # the caller's ``with`` closes it
    st = os.fstat(content.fileno())
    if (not stat.S_ISREG(st.st_mode) or st.st_size != entry.size
            or st.st_mtime_ns != entry.mtime_ns):
        content.close()
        raise ContextChangedError(f"{path} changed after the build context was listed")
    return content


class _CountingWriter:
    """Lets tarfile write to any writable ``out``: its "w" mode asks nothing more than tell()."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.written = 0

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written


def _tar_info(entry: ContextFile) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.mode = stat.S_IMODE(entry.mode)
    info.mtime = entry.mtime_ns // 1_000_000_000  # whole seconds: no PAX header per file
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    mode = entry.mode
    if stat.S_ISREG(mode):
        info.type, info.size = tarfile.REGTYPE, entry.size
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, entry.link_target or ""
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    elif entry.device is not None:
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = entry.device
    return info
