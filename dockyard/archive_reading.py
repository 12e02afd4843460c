"""Archives read for an upload (import, load): opened, sniffed and checked before a byte is
sent, then streamed from disk or stdin in chunks, with a Content-Length when the size is known.
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import DockyardError
from .progress import Meter

CHUNK_SIZE = 1 << 20
HEAD_SIZE = 64 * 1024
TAR_BLOCK = 512

_COMPRESSED_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}


class Upload:
    """An archive to send: its first bytes already read and checked, the rest streamed."""

    def __init__(self, name: str, stream: BinaryIO, size: int | None, head: bytes) -> None:
        self.name = name
        self.stream = stream
        self.size = size  # None when unknown (stdin, pipes): sent chunked
        self.head = head
        self.sent = 0

    def __enter__(self) -> Upload:
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


def open_upload(source: str | Path) -> Upload:
    """Open and sniff ``source``: a readable, non-empty tar or compressed tar, or stdin."""
    if str(source) == "-":
        if sys.stdin.isatty():
            raise DockyardError("no archive on stdin (it is a terminal); give a file or pipe one in")
        upload = Upload("stdin", sys.stdin.buffer, None, b"")
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
        upload = Upload(str(path), stream, size, b"")
    try:
        upload.head = upload.stream.read(HEAD_SIZE if upload.size is None
                                         else min(HEAD_SIZE, upload.size))
        _check_archive(upload)
    except BaseException:
        upload.__exit__(None, None, None)
        raise
    return upload


def _check_archive(upload: Upload) -> None:
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


def _check_tar_end(upload: Upload) -> None:
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
