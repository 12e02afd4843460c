"""Export, save, import, load and commit images with flat memory use.

docker-py's conveniences do not fit big archives: ``images.load`` is documented
to take bytes, ``import_image(src=path)`` treats a missing file as a URL to
fetch, ``load_image`` reports a broken tar as HTTP 200 plus an ``error`` line,
and ``get_image`` gives up if the daemon's first byte takes longer than the
client's timeout (60 s by default; a big save takes that long). So this module talks
to the endpoints itself: downloads go chunk by chunk into a ``.part`` file that
is renamed into place only when complete (a symlink is followed, never
replaced; a device or fifo is written into as it comes), uploads stream from
disk, and every failure becomes one DockyardError that names the file or object.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import struct
import sys
import time
import zlib
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from dockyard.engine import engine_errors
from dockyard.errors import DockyardError
from dockyard.progress import Meter, meter

if TYPE_CHECKING:  # docker-py is imported lazily; names only for the type checker
    from docker import DockerClient
    from requests import Response

# Largest piece read at once. The daemon sends 32 KiB HTTP chunks, which
# iter_content passes on as they come (cheapest in CPU, measured); the cap
# matters only for uploads and non-chunked replies.
CHUNK_SIZE = 1 << 20
# Level 1: on mixed image content it is ~2x faster than 6 for a 4% bigger file.
GZIP_LEVEL = 1
GZIP_BLOCK = 1 << 20
HEAD_SIZE = 64 * 1024
TAR_BLOCK = 512

_COMPRESSED_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}


@dataclass
class ArtifactResult:
    """What an export/save/import/load/commit produced, for printing or --json."""

    kind: str  # "export" | "save" | "import" | "load" | "commit"
    path: str | None  # the archive written or read; "-" for stdout/stdin
    ids: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    size_bytes: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- downloads: export and save ---------------------------------------------


def export_container(
    client: DockerClient,
    container: str,
    target: str | Path,
    *,
    force: bool = False,
    progress: bool = True,
) -> ArtifactResult:
    """Write a container's filesystem as a tar (gzip if ``target`` ends in .gz; '-' = stdout)."""
    started = time.monotonic()
    destination = _check_target(target, force)
    with _output(destination, force) as out, \
            engine_errors(f"cannot export container {container} to {target}"):
        container_id = client.api.inspect_container(container)["Id"]
        response = _download(client, f"/containers/{container_id}/export", {})
        _pump(response, out.writer, total=None, desc=f"export {container}", progress=progress)
    return ArtifactResult("export", str(target), [container_id], [], out.size,
                          time.monotonic() - started)


def save_image(
    client: DockerClient,
    image: str | Sequence[str],
    target: str | Path,
    *,
    force: bool = False,
    progress: bool = True,
) -> ArtifactResult:
    """Write image(s) with layers, config and tags in ``docker save`` format."""
    started = time.monotonic()
    names = [image] if isinstance(image, str) else list(image)
    if not names:
        raise DockyardError("save: name at least one image")
    destination = _check_target(target, force)
    with _output(destination, force) as out, \
            engine_errors(f"cannot save {', '.join(names)} to {target}"):
        inspected = {name: client.api.inspect_image(name) for name in names}
        # Sizes of the distinct images: a fair estimate of the archive for the bar.
        sizes = {info["Id"]: info.get("Size") or 0 for info in inspected.values()}
        response = _download(client, "/images/get", {"names": names})
        _pump(response, out.writer, total=sum(sizes.values()) or None,
              desc=f"save {names[0]}" + (" ..." if len(names) > 1 else ""), progress=progress)
    tags = [tag for name, info in inspected.items() for tag in _saved_tags(name, info)]
    return ArtifactResult("save", str(target), list(sizes), tags, out.size,
                          time.monotonic() - started)


def _saved_tags(name: str, info: dict[str, Any]) -> list[str]:
    """Tags the archive carries for ``name``: an ID carries none, a bare repo all of its."""
    repo_tags: list[str] = info.get("RepoTags") or []
    if name in repo_tags:
        return [name]
    return [tag for tag in repo_tags if tag.rsplit(":", 1)[0] == name]


def _download(client: DockerClient, endpoint: str, params: dict[str, Any]) -> Response:
    api = client.api
    # timeout=None: the daemon may take minutes before its first byte (save
    # copies layers first), and docker-py's default read timeout is 60 s.
    response = api._get(api._url(endpoint), params=params, stream=True, timeout=None)
    api._raise_for_status(response)
    return response


def _pump(response: Response, out: _Writer, *, total: int | None, desc: str,
          progress: bool) -> int:
    """Copy the response body to ``out`` chunk by chunk; return the bytes received."""
    received = 0
    with response, meter(total, desc, progress) as bar:
        for chunk in response.iter_content(CHUNK_SIZE):
            out.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    return received


@dataclass(frozen=True)
class _Target:
    """Where an archive goes, decided before the engine is asked for anything."""

    kind: str  # "stdout" | "file" (created or replaced atomically) | "stream" (written in place)
    path: Path | None  # "file": the real file, symlinks resolved; "stream": the node as named
    name: str  # as the user gave it: for messages and the gzip choice


class _Output:
    """The writer the archive goes through, and how many bytes reached the target."""

    def __init__(self, raw: _ByteSink, gzip: bool) -> None:
        self._counter = _CountingSink(raw)
        self.writer: _Writer = _GzipWriter(self._counter) if gzip else _PlainWriter(self._counter)

    @property
    def size(self) -> int:
        return self._counter.size


@contextmanager
def _output(target: _Target, force: bool) -> Iterator[_Output]:
    """An output on stdout, on an atomic file, or straight into a device or fifo."""
    if target.kind == "file":
        with _atomic_file(target, force) as out:
            yield out
    elif target.kind == "stream":
        with _stream_into(target) as out:
            yield out
    else:
        sys.stdout.flush()  # text printed earlier must not land inside the archive
        try:
            yield _Output(sys.stdout.buffer, gzip=False)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            raise DockyardError("stdout was closed before the archive was complete") from None


def _check_target(target: str | Path, force: bool) -> _Target:
    """Refuse a target we cannot or must not write, before asking the engine for anything.

    A symlink is judged by what it points to and is never replaced itself. An
    existing device, fifo or socket is written into like shell ``>`` does
    (``-o /dev/null`` is a sink), never renamed over.
    """
    name = str(target)
    if name == "-":
        if sys.stdout.isatty():
            raise DockyardError(
                "refusing to write a tar archive to a terminal; give a file name or redirect stdout")
        return _Target("stdout", None, name)
    path = Path(target)
    try:
        info: os.stat_result | None = path.stat()  # follows symlinks
    except (FileNotFoundError, NotADirectoryError):
        info = None  # absent, a dangling symlink, or a bad parent (reported below)
    except OSError as error:  # a symlink loop, no permission
        raise DockyardError(f"cannot write {path}: {error.strerror or error}") from error
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise DockyardError(f"{path} is a directory; give a file name for the archive")
    if info is not None and not stat.S_ISREG(info.st_mode):
        return _Target("stream", path, name)
    if info is not None and not force:
        raise DockyardError(f"{path} already exists; use --force to overwrite it")
    # The part file must sit beside the real file for the rename to replace it.
    real = Path(os.path.realpath(path)) if path.is_symlink() else path
    if info is not None and not _is_same_file(real, info):
        # e.g. /proc/<pid>/fd/N of a deleted file: no name to rename onto
        raise DockyardError(f"cannot replace {path}: it leads to a file with no reachable name "
                            f"({real}); give the file's own path")
    parent = real.parent
    if not parent.exists():
        raise DockyardError(f"cannot write {path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise DockyardError(f"cannot write {path}: {parent} is not a directory")
    return _Target("file", real, name)


def _is_same_file(path: Path, info: os.stat_result) -> bool:
    try:
        found = path.stat()
    except OSError:
        return False
    return (found.st_dev, found.st_ino) == (info.st_dev, info.st_ino)


@contextmanager
def _stream_into(target: _Target) -> Iterator[_Output]:
    """Write into an existing device or fifo as it comes; no atomicity is possible there."""
    assert target.path is not None
    name = target.name
    # No O_CREAT and no O_TRUNC: if the node was swapped for a regular file
    # since the check, nothing is created or cut; the fstat below refuses it.
    flags = os.O_WRONLY | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target.path, flags)  # a fifo blocks here until it has a reader
    except OSError as error:
        raise DockyardError(f"cannot write {name}: {error.strerror or error}") from error
    raw = os.fdopen(fd, "wb")
    out: _Output | None = None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
            raise DockyardError(f"{name} changed while dockyard was checking it; try again")
        if os.isatty(fd):
            raise DockyardError(f"refusing to write a tar archive to a terminal ({name}); "
                                "give a file name or redirect stdout")
        try:
            out = _Output(raw, gzip=_wants_gzip(Path(name)))
            yield out
            out.writer.finish()
            raw.flush()
        except OSError as error:
            raise DockyardError(f"cannot write {name}: {error.strerror or error}; "
                                "what it received is incomplete") from error
    except BaseException:
        if out is not None:
            out.writer.abort()
        raise
    finally:
        with suppress(OSError):  # after a failed write, close retries the flush
            raw.close()


@contextmanager
def _atomic_file(target: _Target, force: bool) -> Iterator[_Output]:
    """Yield an output on ``.name.XXXX.part`` beside the file; move it into place on success.

    On any error, KeyboardInterrupt included, the part file is removed and
    the target is left as it was.
    """
    assert target.path is not None
    path, name = target.path, target.name
    part, fd = _create_part_file(path, name)
    raw = os.fdopen(fd, "wb")
    out: _Output | None = None
    try:
        try:
            out = _Output(raw, gzip=_wants_gzip(Path(name)))
            yield out
            out.writer.finish()
            raw.flush()
            os.fsync(raw.fileno())
            raw.close()
            _move_into_place(part, path, force)
        except OSError as error:
            raise DockyardError(f"cannot write {name}: {error.strerror or error}") from error
    except BaseException:
        if out is not None:
            out.writer.abort()
        with suppress(OSError):  # a failing flush must not keep the part file alive
            raw.close()
        part.unlink(missing_ok=True)
        raise


def _wants_gzip(path: Path) -> bool:
    return path.suffix in (".gz", ".tgz")


def _create_part_file(path: Path, name: str) -> tuple[Path, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        part = path.parent / f".{path.name}.{secrets.token_hex(4)}.part"
        try:
            # 0o666 and the umask, like any new file; mkstemp would force 0600.
            return part, os.open(part, flags, 0o666)
        except FileExistsError:
            continue
        except OSError as error:
            raise DockyardError(f"cannot write {name}: cannot create a file in "
                                f"{path.parent} ({error.strerror})") from error


def _move_into_place(part: Path, path: Path, force: bool) -> None:
    if force:
        _refuse_non_regular(path)
        os.replace(part, path)
    else:
        # link() refuses to clobber, so a file that appeared meanwhile survives.
        try:
            os.link(part, path)
        except FileExistsError:
            raise DockyardError(f"{path} already exists; use --force to overwrite it") from None
        except OSError:  # filesystems without hard links
            if os.path.lexists(path):
                raise DockyardError(f"{path} already exists; use --force to overwrite it") from None
            os.replace(part, path)
        else:
            part.unlink()
    _fsync_dir(path.parent)


def _refuse_non_regular(path: Path) -> None:
    """Last look before the rename: a link, device or fifo put there since the check survives."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise DockyardError(f"{path} is no longer a regular file; not replacing it")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot fsync a directory; the rename still happened
    finally:
        os.close(fd)


class _ByteSink(Protocol):
    def write(self, data: bytes, /) -> object: ...


class _CountingSink:
    """Passes writes on and counts the bytes, for the result's size (devices report none)."""

    def __init__(self, raw: _ByteSink) -> None:
        self._raw = raw
        self.size = 0

    def write(self, data: bytes) -> None:
        self._raw.write(data)
        self.size += len(data)


class _Writer:
    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        pass


class _PlainWriter(_Writer):
    def __init__(self, out: _ByteSink) -> None:
        self.write = out.write  # type: ignore[method-assign]  # no per-chunk indirection


class _GzipWriter(_Writer):
    """One gzip member, compressed in parallel 1 MiB blocks the way pigz does it.

    zlib at level 1 runs at ~45 MB/s per core here, below the engine's export
    rate, so blocks go to a thread pool (zlib drops the GIL). Each block ends in
    a sync flush and is primed with the previous block's last 32 KiB, so the
    concatenation is a single ordinary deflate stream that gzip, Python and the
    engine all read, and nearly as small as a serial one. Memory stays at a few
    blocks in flight.
    """

    def __init__(self, out: _ByteSink, level: int = GZIP_LEVEL) -> None:
        self._out = out
        self._level = level
        workers = max(1, min(4, os.cpu_count() or 1))
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="dockyard-gzip")
        self._max_pending = 2 * workers
        self._pending: deque[Future[bytes]] = deque()
        self._buffer = bytearray()
        self._previous = b""
        self._crc = 0
        self._size = 0
        # Header: deflate, no name, mtime 0 (reproducible), OS unknown.
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff")

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= GZIP_BLOCK:
            block = bytes(self._buffer[:GZIP_BLOCK])
            del self._buffer[:GZIP_BLOCK]
            self._submit(block, last=False)

    def finish(self) -> None:
        self._submit(bytes(self._buffer), last=True)
        self._buffer.clear()
        while self._pending:
            self._out.write(self._pending.popleft().result())
        self._out.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))
        self._pool.shutdown()

    def abort(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _submit(self, block: bytes, *, last: bool) -> None:
        self._crc = zlib.crc32(block, self._crc)
        self._size += len(block)
        self._pending.append(
            self._pool.submit(_deflate_block, block, self._previous, self._level, last))
        self._previous = block[-32768:]
        while len(self._pending) > self._max_pending:
            self._out.write(self._pending.popleft().result())


def _deflate_block(block: bytes, dictionary: bytes, level: int, last: bool) -> bytes:
    if dictionary:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, zdict=dictionary)
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(block) + compressor.flush(
        zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


# --- uploads: import and load ------------------------------------------------


def import_image(
    client: DockerClient,
    source: str | Path,
    *,
    tag: str | None,
    changes: Sequence[str] = (),
    message: str | None = None,
    labels: dict[str, str] | None = None,
    progress: bool = True,
) -> ArtifactResult:
    """Make an image from a filesystem tar (plain or compressed; '-' = stdin), like ``docker import``."""
    started = time.monotonic()
    all_changes = [*changes, *_label_changes(labels)]
    params: dict[str, Any] = {"fromSrc": "-", "changes": all_changes or None,
                              "message": message}
    tags = []
    if tag:
        repository, version = _split_tag(tag)
        params["repo"], params["tag"] = repository, version or "latest"
        tags = [f"{repository}:{version or 'latest'}"]
    with _open_upload(source) as upload:
        events = _send_upload(client, "/images/create", params, upload,
                              what=f"cannot import {upload.name}",
                              desc=f"import {upload.name}", progress=progress)
    image_ids = [event["status"] for event in events
                 if str(event.get("status", "")).startswith("sha256:")]
    if not image_ids:
        raise DockyardError(f"cannot import {upload.name}: the engine reported no image ID")
    return ArtifactResult("import", str(source), image_ids[-1:], tags,
                          upload.sent, time.monotonic() - started)


def load_image(client: DockerClient, source: str | Path, *, progress: bool = True) -> ArtifactResult:
    """Load images from a ``docker save`` archive (plain or compressed; '-' = stdin), keeping tags."""
    started = time.monotonic()
    with _open_upload(source) as upload:
        what = f"cannot load {upload.name}"
        events = _send_upload(client, "/images/load", {"quiet": "1"}, upload,
                              what=what, desc=f"load {upload.name}", progress=progress)
    tags, ids = [], []
    for event in events:
        line = str(event.get("stream", "")).strip()
        if line.startswith("Loaded image ID: "):
            ids.append(line.removeprefix("Loaded image ID: "))
        elif line.startswith("Loaded image: "):
            tags.append(line.removeprefix("Loaded image: "))
    if not tags and not ids:
        raise DockyardError(f"{what}: the engine loaded no image; is it a `docker save` archive?")
    with engine_errors(what):
        ids += [client.api.inspect_image(tag)["Id"] for tag in tags]
    return ArtifactResult("load", str(source), list(dict.fromkeys(ids)), tags,
                          upload.sent, time.monotonic() - started)


class _Upload:
    """An archive to send: its first bytes already read and checked, the rest streamed."""

    def __init__(self, name: str, stream: BinaryIO, size: int | None, head: bytes) -> None:
        self.name = name
        self.stream = stream
        self.size = size  # None when unknown (stdin, pipes): sent chunked
        self.head = head
        self.sent = 0

    def __enter__(self) -> _Upload:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.stream is not sys.stdin.buffer:
            self.stream.close()

    def body(self, bar: Meter) -> Iterable[bytes]:
        chunks = self._chunks(bar)
        return chunks if self.size is None else _SizedBody(chunks, self.size)

    def _chunks(self, bar: Meter) -> Iterator[bytes]:
        block = self.head
        while block:
            self.sent += len(block)
            bar.update(len(block))
            yield block
            if self.size is None:
                block = self.stream.read(CHUNK_SIZE)
            elif self.sent < self.size:
                block = self.stream.read(min(CHUNK_SIZE, self.size - self.sent))
            else:
                return
        if self.size is not None:
            # The engine would wait forever for the promised Content-Length.
            raise DockyardError(f"{self.name} shrank while it was being sent")


class _SizedBody:
    """An iterable with a length, so requests sends Content-Length instead of chunks."""

    def __init__(self, chunks: Iterator[bytes], size: int) -> None:
        self._chunks = chunks
        self._size = size

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def __len__(self) -> int:
        return self._size


def _open_upload(source: str | Path) -> _Upload:
    """Open and sniff ``source``: a readable, non-empty tar or compressed tar, or stdin."""
    if str(source) == "-":
        if sys.stdin.isatty():
            raise DockyardError("no archive on stdin (it is a terminal); give a file or pipe one in")
        upload = _Upload("stdin", sys.stdin.buffer, None, b"")
    else:
        path = Path(source)
        if path.is_dir():
            raise DockyardError(f"{path} is a directory, not a tar archive")
        try:
            stream = open(path, "rb")  # noqa: SIM115  # closed by _Upload.__exit__
        except FileNotFoundError:
            raise DockyardError(f"{path}: no such file") from None
        except OSError as error:
            raise DockyardError(f"cannot read {path}: {error.strerror}") from error
        size = os.fstat(stream.fileno()).st_size if path.is_file() else None
        upload = _Upload(str(path), stream, size, b"")
    try:
        upload.head = upload.stream.read(HEAD_SIZE if upload.size is None
                                         else min(HEAD_SIZE, upload.size))
        _check_archive(upload)
    except BaseException:
        upload.__exit__(None, None, None)
        raise
    return upload


def _check_archive(upload: _Upload) -> None:
    """Cheap checks before sending: not empty, a tar (or compressed), not cut short."""
    name, head = upload.name, upload.head
    if not head:
        raise DockyardError(f"{name} is empty; expected a tar archive")
    compression = next((kind for magic, kind in _COMPRESSED_MAGIC.items()
                        if head.startswith(magic)), None)
    if compression == "gzip":
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, TAR_BLOCK)
        except zlib.error as error:
            raise DockyardError(f"{name} is not a valid gzip file ({error})") from None
    elif compression is not None:
        return  # the engine reads bzip2/xz/zstd too and will judge the content
    if len(head) < TAR_BLOCK or head[257:262] != b"ustar":
        detail = "too short" if len(head) < TAR_BLOCK else "no tar header"
        raise DockyardError(f"{name} is not a tar archive ({detail}); "
                            "expected a file from `docker export` or `docker save`")
    if compression is None and upload.size is not None:
        _check_tar_end(upload)


def _check_tar_end(upload: _Upload) -> None:
    """A complete tar ends with two zero blocks; a cut-off one usually does not."""
    size = upload.size or 0
    tail = b""
    if size >= 3 * TAR_BLOCK and size % TAR_BLOCK == 0:
        position = upload.stream.tell()
        upload.stream.seek(size - 2 * TAR_BLOCK)
        tail = upload.stream.read(2 * TAR_BLOCK)
        upload.stream.seek(position)
    if tail.count(0) != 2 * TAR_BLOCK:
        raise DockyardError(f"{upload.name} is truncated: it does not end like a complete tar archive")


def _send_upload(
    client: DockerClient,
    endpoint: str,
    params: dict[str, Any],
    upload: _Upload,
    *,
    what: str,
    desc: str,
    progress: bool,
) -> list[dict[str, Any]]:
    """POST the archive as the request body and return the engine's JSON messages."""
    api = client.api
    with meter(upload.size, desc, progress) as bar, engine_errors(what):
        response = api._post(
            api._url(endpoint), params=params, data=upload.body(bar),
            headers={"Content-Type": "application/x-tar"}, stream=True, timeout=None)
        with response:
            api._raise_for_status(response)
            return _read_messages(response, what)


def _read_messages(response: Response, what: str) -> list[dict[str, Any]]:
    """Parse the engine's JSON lines; an ``error`` line (sent with HTTP 200) is a failure."""
    messages = []
    for line in response.iter_lines():
        if not line.strip():
            continue
        message = json.loads(line)
        if "error" in message or "errorDetail" in message:
            detail = (message.get("errorDetail") or {}).get("message") or message.get("error")
            raise DockyardError(f"{what}: {detail}")
        messages.append(message)
    return messages


# --- commit ------------------------------------------------------------------


def commit_container(
    client: DockerClient,
    container: str,
    *,
    repository: str,
    tag: str,
    message: str | None = None,
    author: str | None = None,
    changes: Sequence[str] = (),
    labels: dict[str, str] | None = None,
) -> ArtifactResult:
    """Make an image ``repository:tag`` from a container's current filesystem."""
    started = time.monotonic()
    all_changes = [*changes, *_label_changes(labels)]
    with engine_errors(f"cannot commit container {container} as {repository}:{tag}"):
        image_id = client.api.commit(container, repository=repository, tag=tag,
                                     message=message, author=author,
                                     changes=all_changes or None)["Id"]
        size = client.api.inspect_image(image_id).get("Size") or 0
    return ArtifactResult("commit", None, [image_id], [f"{repository}:{tag}"], size,
                          time.monotonic() - started)


# --- shared ------------------------------------------------------------------


def _label_changes(labels: dict[str, str] | None) -> list[str]:
    """Dockerfile ``LABEL`` lines, quoted so spaces and quotes survive."""
    changes = []
    for key, value in (labels or {}).items():
        if "\n" in key or "\n" in value:
            raise DockyardError(f"label {key!r}: newlines are not allowed in labels")
        changes.append(f"LABEL {_quote(key)}={_quote(value)}")
    return changes


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _split_tag(reference: str) -> tuple[str, str | None]:
    from docker.utils import parse_repository_tag

    repository, tag = parse_repository_tag(reference)
    return repository, tag
