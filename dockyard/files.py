"""Reading a project's own small files: containers.toml, Dockerfiles, ``.dockerignore``.

Regular files only, and no more than a limit: a FIFO in their place would hang a command
(opening it waits for a writer), and a link to ``/dev/zero`` would fill memory. A link to a
regular file is followed, as the engine and the docker CLI follow it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import DockyardError

# Kinds of file that are not regular, as a message names them.
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class NotReadable(ValueError):
    """Why a file is not read, without its name: the caller says where it is."""


class UnusableFile(DockyardError):
    """A project file that is not read (``read_regular``), named."""


def regular_bytes(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path`` (a link is followed). ``NotReadable`` when it is
    not a regular file or holds more than ``limit`` bytes; ``OSError`` as opening it raises it
    (FileNotFoundError, PermissionError, ...), for the caller to word."""
    # O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer; a regular
    # file's reads are not affected by it.
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(descriptor).st_mode  # before fdopen, which refuses a directory itself
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "a special file")
            raise NotReadable(f"{kind}, not a regular file; dockyard reads only regular files here")
        with os.fdopen(descriptor, "rb", closefd=False) as file:
            data = file.read(limit + 1)
    finally:
        os.close(descriptor)
    if len(data) > limit:
        raise NotReadable(f"larger than {_size(limit)}; is this the right file?")
    return data


def read_regular(path: Path, limit: int) -> bytes:
    """``regular_bytes``, with a file that is not read as one ``DockyardError`` naming it."""
    try:
        return regular_bytes(path, limit)
    except NotReadable as e:
        raise UnusableFile(f"{path}: {e}") from None


def _size(limit: int) -> str:
    return f"{limit // 1024 // 1024} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
