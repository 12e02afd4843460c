"""Archives read for an upload (import, load): opened, sniffed and checked before a byte is
sent, then streamed from disk or stdin in chunks, with a Content-Length when the size is known.

A load that must not touch other images' tags goes through ``guarded_body``: the tar is read
as it streams past (``TarScanner``), its metadata members (``manifest.json``, ``repositories``,
``index.json``) are kept, and the last chunk is sent only once they pass the caller's check.
An upload cut before its end makes the engine load nothing.
"""

from __future__ import annotations

import bz2
import json
import lzma
import os
import posixpath
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

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
        self.compression: str | None = None  # set by the sniffing: "gzip", "bzip2", ...

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
    compression = upload.compression = next((kind for magic, kind in _COMPRESSED_MAGIC.items()
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


# --- what a `docker save` archive holds, read as it streams past -----------------------

METADATA_NAMES = ("manifest.json", "repositories", "index.json")
# docker save writes a few hundred bytes per image; anything near this is not an image's.
METADATA_LIMIT = 1 << 20
_REGULAR = (b"0", b"\0", b"7")
_LINKS = (b"1", b"2")


@dataclass
class SavedImages:
    """The metadata members of a ``docker save`` archive, parsed; None when absent."""

    name: str
    manifest: list[dict[str, Any]] | None = None
    repositories: dict[str, dict[str, str]] | None = None
    index: dict[str, Any] | None = None

    def image_count(self) -> int:
        """How many images the engine would load (manifest.json decides, as it does there)."""
        if self.manifest is not None:
            return len(self.manifest)
        if self.repositories is not None:
            return len({layer for tags in self.repositories.values() for layer in tags.values()})
        return 0

    def tags(self) -> list[str]:
        """Every tag the archive would set, from any of its metadata files, as written."""
        found: list[str] = []
        for entry in self.manifest or []:
            found += entry.get("RepoTags") or []
        for repository, tags in (self.repositories or {}).items():
            found += [f"{repository}:{tag}" for tag in tags]
        for entry in (self.index or {}).get("manifests") or []:
            annotations = entry.get("annotations") or {}
            found += [annotations[key] for key in ("io.containerd.image.name",)
                      if isinstance(annotations.get(key), str)]
        return list(dict.fromkeys(found))


class TarScanner:
    """Reads a tar stream fed in pieces of any size, as Go's archive/tar (the engine's) reads
    it: ustar prefixes, pax and GNU long names, then the path cleaned. It keeps the metadata
    members (each at most METADATA_LIMIT bytes) and refuses what could make the engine read
    other metadata than this scanner saw: a metadata name twice, or as a link or directory,
    or a path that goes through a link."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ended = False
        self._block = bytearray()
        self._data_left = 0  # bytes of the current member's data still to come
        self._pad_left = 0  # then the zeros up to the next 512-byte block
        self._sink: bytearray | None = None
        self._on_data: Callable[[bytes], None] | None = None
        self._pax: dict[str, str] = {}
        self._long_name: str | None = None
        self._zero_block = False
        self._links: set[str] = set()
        self._members: dict[str, bytes] = {}

    def feed(self, data: bytes) -> None:
        view, position = memoryview(data), 0
        while position < len(view) and not self.ended:
            if self._data_left:
                take = min(self._data_left, len(view) - position)
                if self._sink is not None:
                    self._sink += view[position:position + take]
                self._data_left -= take
                position += take
                if not self._data_left:
                    self._member_done()
            elif self._pad_left:
                take = min(self._pad_left, len(view) - position)
                self._pad_left -= take
                position += take
            else:
                take = min(TAR_BLOCK - len(self._block), len(view) - position)
                self._block += view[position:position + take]
                position += take
                if len(self._block) == TAR_BLOCK:
                    block, self._block = bytes(self._block), bytearray()
                    self._header(block)

    def finish(self) -> SavedImages:
        """The archive is complete: its metadata, parsed. Go's reader takes a tar that stops
        at a member's end as complete; one that stops inside a member is cut short."""
        if self._data_left or self._pad_left or self._block or self._sink is not None:
            raise self._refusal("is truncated: it ends inside a member")
        images = SavedImages(self.name)
        if "manifest.json" in self._members:
            images.manifest = self._parsed("manifest.json", list, _valid_manifest)
        if "repositories" in self._members:
            images.repositories = self._parsed("repositories", dict, _valid_repositories)
        if "index.json" in self._members:
            images.index = self._parsed("index.json", dict, lambda value: True)
        return images

    # -- one header block ------------------------------------------------------------

    def _header(self, block: bytes) -> None:
        if block.count(0) == TAR_BLOCK:
            self.ended = self._zero_block  # two zero blocks: the end; Go reads no further
            self._zero_block = True
            return
        if self._zero_block:
            raise self._refusal("has a header after a zero block (not a tar archive Docker reads)")
        stored = _number(block[148:156], self)
        unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
        signed = unsigned - 2 * sum(b for b in block[:148] + block[156:] if b > 127)
        if stored not in (unsigned, signed):
            raise self._refusal("has a damaged tar header (bad checksum)")
        kind = block[156:157]
        size = _number(block[124:136], self)
        if kind in (b"x", b"L", b"K"):  # metadata for the next member
            if size > METADATA_LIMIT:
                raise self._refusal(f"has an extended tar header of {size} bytes; too big to be real")
            self._start(size, lambda data: self._extension(kind, data))
            return
        if kind == b"g":  # global pax header: Docker ignores it
            self._start(size, None)
            return
        if kind == b"S":
            raise self._refusal("has a sparse member, which `docker save` never writes")
        name = self._long_name if self._long_name is not None else _ustar_name(block)
        name = self._pax.get("path", name)
        if "size" in self._pax:
            try:
                size = int(self._pax["size"])
            except ValueError:
                raise self._refusal("has a bad size in an extended tar header") from None
        self._pax, self._long_name = {}, None
        path = posixpath.normpath("/" + name).lstrip("/")
        parents = path.split("/")[:-1]
        through = next(("/".join(parents[:i]) for i in range(1, len(parents) + 1)
                        if "/".join(parents[:i]) in self._links), None)
        if through is not None:
            raise self._refusal(f"has member {path!r} under the link {through!r}")
        if kind in _LINKS:
            self._links.add(path)
        if path in METADATA_NAMES:
            if kind not in _REGULAR:
                raise self._refusal(f"has {path} as a link or directory, not a file")
            if path in self._members:
                raise self._refusal(f"has {path} twice")
            if size > METADATA_LIMIT:
                raise self._refusal(f"has a {path} of {size} bytes; an image's is a few hundred")
            self._start(size, lambda data: self._members.__setitem__(path, data))
            return
        self._start(0 if kind in _LINKS or kind in (b"3", b"4", b"5", b"6") else size, None)

    def _start(self, size: int, on_data: Callable[[bytes], None] | None) -> None:
        self._data_left, self._pad_left = size, -size % TAR_BLOCK
        self._on_data = on_data
        self._sink = bytearray() if on_data is not None else None
        if not size:
            self._member_done()

    def _member_done(self) -> None:
        sink, on_data = self._sink, self._on_data
        self._sink = self._on_data = None
        if on_data is not None:
            on_data(bytes(sink or b""))

    def _extension(self, kind: bytes, data: bytes) -> None:
        if kind == b"x":
            self._pax = _pax_records(data, self)
        elif kind == b"L":  # a GNU long name; "K", a long link target, names nothing here
            self._long_name = data.split(b"\0", 1)[0].decode("utf-8", "replace")

    def _parsed(self, member: str, kind: type, valid: Callable[[Any], bool]) -> Any:
        try:
            value = json.loads(self._members[member])
        except (ValueError, RecursionError) as error:
            raise self._refusal(f"has a {member} that is not valid JSON ({error})") from None
        if not isinstance(value, kind) or not valid(value):
            raise self._refusal(f"has a {member} that is not what `docker save` writes")
        return value

    def _refusal(self, what: str) -> DockyardError:
        return DockyardError(f"{self.name} {what}")


def _number(field: bytes, scanner: TarScanner) -> int:
    """A tar number field: octal text, or base-256 when the top bit is set (GNU, big files)."""
    if field[:1] and field[0] & 0x80:
        if field[0] & 0x40:
            raise scanner._refusal("has a negative number in a tar header")
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise scanner._refusal("has a damaged tar header (bad number)") from None


def _ustar_name(block: bytes) -> str:
    """name, with the ustar prefix in front where the format has one (as Go reads it)."""
    def text(field: bytes) -> str:
        return field.split(b"\0", 1)[0].decode("utf-8", "replace")

    name = text(block[0:100])
    if block[257:263] == b"ustar\0" and block[263:265] == b"00":
        star = block[508:512] == b"tar\0"
        prefix = text(block[345:476] if star else block[345:500])
        if prefix:
            name = f"{prefix}/{name}"
    return name


def _pax_records(data: bytes, scanner: TarScanner) -> dict[str, str]:
    """``LENGTH KEY=VALUE\\n`` records of a pax extended header."""
    records: dict[str, str] = {}
    position = 0
    while position < len(data) and data[position:position + 1] != b"\0":
        length_text, space, _ = data[position:position + 20].partition(b" ")
        if not space or not length_text.isdigit() or int(length_text) <= len(length_text) + 1:
            raise scanner._refusal("has a damaged extended tar header")
        record = data[position:position + int(length_text)]
        position += int(length_text)
        key, equals, value = record[len(length_text) + 1:].rstrip(b"\n").partition(b"=")
        if not equals or not record.endswith(b"\n"):
            raise scanner._refusal("has a damaged extended tar header")
        records[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return records


def _valid_manifest(value: list) -> bool:
    return all(isinstance(entry, dict) and isinstance(entry.get("RepoTags") or [], list)
               and all(isinstance(tag, str) for tag in entry.get("RepoTags") or [])
               for entry in value)


def _valid_repositories(value: dict) -> bool:
    return all(isinstance(tags, dict) and all(isinstance(layer, str) for layer in tags.values())
               for tags in value.values())


def guarded_body(upload: Upload, bar: Meter, check: Callable[[SavedImages], None]) -> Iterable[bytes]:
    """The upload's body as the engine reads it (a compressed archive decompressed here, so
    that what is checked is what is loaded), scanned on the way; the last chunk goes only
    after ``check`` accepted the archive's metadata (it raises to refuse: the engine then
    sees an upload cut short and loads nothing)."""
    chunks = upload._chunks(bar)
    if upload.compression is not None:
        chunks = _decompressed(chunks, upload.compression, upload.name)
    guarded = _held_back(chunks, TarScanner(upload.name), check)
    return _SizedBody(guarded, upload.size) if upload.size is not None and upload.compression is None \
        else guarded


def _held_back(chunks: Iterator[bytes], scanner: TarScanner,
               check: Callable[[SavedImages], None]) -> Iterator[bytes]:
    previous = b""
    for chunk in chunks:
        if not chunk:
            continue
        scanner.feed(chunk)
        if previous:
            yield previous
        previous = chunk
    check(scanner.finish())
    if previous:
        yield previous


def _decompressed(chunks: Iterator[bytes], compression: str, name: str) -> Iterator[bytes]:
    """A gzip, bzip2 or xz stream decompressed piece by piece (concatenated streams too), at
    most CHUNK_SIZE bytes out per step, so a small bomb of a chunk stays small in memory."""
    makers: dict[str, Callable[[], Any]] = {
        "gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
        "bzip2": bz2.BZ2Decompressor,
        "xz": lzma.LZMADecompressor,
    }
    if compression not in makers:
        raise DockyardError(f"{name} is {compression}-compressed, which this load cannot check; "
                            "decompress it first, or load it with plain `docker load`")
    decompressor, pending = makers[compression](), False
    try:
        for chunk in chunks:
            while chunk:
                pending = True
                if compression == "gzip":
                    yield decompressor.decompress(chunk, CHUNK_SIZE)
                    chunk = decompressor.unconsumed_tail
                else:
                    yield decompressor.decompress(chunk, max_length=CHUNK_SIZE)
                    while not decompressor.eof and not decompressor.needs_input:
                        yield decompressor.decompress(b"", max_length=CHUNK_SIZE)
                    chunk = b""
                if decompressor.eof:
                    chunk, decompressor, pending = decompressor.unused_data, makers[compression](), False
        if compression == "gzip":
            yield decompressor.flush()
    except (zlib.error, OSError, lzma.LZMAError, EOFError) as error:
        raise DockyardError(f"{name} is not a valid {compression} file ({error})") from None
    if pending:
        raise DockyardError(f"{name} is truncated: its {compression} stream ends too early")
