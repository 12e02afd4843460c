"""Signals: SIGTERM ends a task as Ctrl-C does, and the steps that put containers back in
order are not cut short by another signal.

An interrupt is a ``KeyboardInterrupt`` wherever it comes from (SIGTERM raises
``Terminated``, a subclass), so every cleanup written for Ctrl-C also runs for SIGTERM. A
second Ctrl-C while a replace rolls back, or finishes, is ``held``: noted, said once, and
raised when the block is done, never in the middle of it.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an interrupt."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def terminate_as_interrupt() -> None:
    """From now on SIGTERM raises ``Terminated`` in the main thread (a command-line process
    only: a library does not take over its caller's signals). Python's default is to die at
    once, cleanup and all."""
    if threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """What a shell expects of a process that a signal ended: 128 + the signal."""
    return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)


@contextlib.contextmanager
def held(what: str) -> Iterator[None]:
    """Within: SIGINT and SIGTERM are held. The first says once on stderr that ``what`` is
    finished first; when the block ends, the interrupt is raised (unless an error already
    leaves it). In a thread other than the main one, signals never arrive: nothing to hold."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, frame: object) -> None:
        if not received:
            print(f"dockyard: {what} first", file=sys.stderr, flush=True)
        received.append(signum)

    previous = {number: signal.signal(number, hold) for number in SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if received:
        raise Terminated() if signal.SIGTERM in received else KeyboardInterrupt()
