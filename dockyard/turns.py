"""Turns: one process at a time for one object on one engine (a build of one image, a
replace of one container).

Without turns, N processes that find an image out of date all build it (N builds, N-1 images
left dangling), and N runs that replace one container undo each other's work. A turn is an
exclusive flock on a file per kind, engine and name, in the user's runtime directory; the
kernel drops the lock when its process ends, however it ends. Turns are per user and per
machine: two hosts that share a remote engine do not see each other's.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from .errors import DockyardError

POLL_SECONDS = 0.1


@contextlib.contextmanager
def turn(kind: str, engine: str, name: str, *, what: str, on_wait: Callable[[], object],
         interrupted: Callable[[], bool] = lambda: False) -> Iterator[None]:
    """Within: this process's turn at ``kind`` (e.g. "build") of ``name`` on ``engine``.
    ``on_wait`` is called once if another process has it; ``interrupted`` is asked while
    waiting (a thread's way to be told to give up; the main thread gets KeyboardInterrupt).
    ``what`` names the wait in the error an interrupt makes of it."""
    path = lock_dir() / f"{kind}-{lock_name(engine, name)}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as e:
        raise DockyardError(f"cannot open the lock {path}: {e.strerror}") from None
    try:
        waiting = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting:
                    on_wait()
                    waiting = True
                if interrupted():
                    raise DockyardError(f"interrupted while {what}", code=130) from None
                time.sleep(POLL_SECONDS)  # polled, not blocking: an interrupt must not wait for the turn
        yield
    finally:
        os.close(fd)  # also releases the lock


def taken(kind: str, engine: str, name: str) -> bool:
    """Whether another process has its turn at ``kind`` of ``name`` on ``engine`` now."""
    path = lock_dir() / f"{kind}-{lock_name(engine, name)}.lock"
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except OSError:  # no such lock: nobody has had a turn since the machine started
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock, if we took it


def lock_name(engine: str, name: str) -> str:
    return hashlib.sha256(f"{engine}\0{name}".encode()).hexdigest()[:32]


def lock_dir() -> Path:
    """$XDG_RUNTIME_DIR/dockyard, else a directory of our own in the temp dir. The temp dir is
    shared, so ours must be a real directory that we own and only we can write to."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        directory = Path(runtime) / "dockyard"
    else:
        directory = Path(tempfile.gettempdir()) / f"dockyard-{os.getuid()}"
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(directory)
    except OSError as e:
        raise DockyardError(f"cannot make the lock directory {directory}: {e.strerror}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise DockyardError(f"the lock directory {directory} is not a private directory of this "
                            "user; remove it, or set XDG_RUNTIME_DIR to one")
    return directory
