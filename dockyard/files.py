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


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path`` (a link is followed). ``DockyardError`` when it is
    not a regular file or holds more than ``limit`` bytes; ``OSError`` as opening it raises it
    (FileNotFoundError, PermissionError, ...), for the caller to word."""
    # O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer; a regular
    # file's reads are not affected by it.
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(descriptor, "rb") as file:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "a special file")
            raise DockyardError(f"{path}: {kind}, not a regular file; dockyard reads only regular files here")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise DockyardError(f"{path}: larger than {_size(limit)}; is this the right file?")
    return data


def _size(limit: int) -> str:
    return f"{limit // 1024 // 1024} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
