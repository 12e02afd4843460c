"""Signals: SIGTERM and SIGHUP (a closed terminal, a lost ssh session) end a task as Ctrl-C
does, and the steps that put containers back in order are not cut short by another signal.

An interrupt is a ``KeyboardInterrupt`` wherever it comes from (SIGTERM and SIGHUP raise
``Terminated``, a subclass), so every cleanup written for Ctrl-C also runs for them. A
signal that the process was started ignoring (`nohup`, a background job) stays ignored.
Within a replace, signals are ``Deferred``: noted, and raised between its steps, never in the
middle of a request or of the roll back.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Callable, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised as an interrupt."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__()
        self.signum = signum


def _terminate(signum: int, frame: object) -> None:
    raise Terminated(signum)


def _interrupt(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _handled() -> list[int]:
    """The signals we take over: not those the process was started ignoring."""
    return [number for number in SIGNALS if signal.getsignal(number) is not signal.SIG_IGN]


def terminate_as_interrupt() -> None:
    """From now on SIGTERM and SIGHUP raise ``Terminated`` in the main thread (a command-line
    process only: a library does not take over its caller's signals). Python's default is to
    die at once, cleanup and all."""
    if threading.current_thread() is not threading.main_thread():
        return
    for number in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(number) is signal.SIG_DFL:
            signal.signal(number, _terminate)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """What a shell expects of a process that a signal ended: 128 + the signal."""
    return 128 + (interrupt.signum if isinstance(interrupt, Terminated) else signal.SIGINT)


class Deferred:
    """Within: SIGINT and SIGTERM are noted, not raised, so that no engine request is cut off
    half-way (the engine finishes it all the same, and we would not know what it did). The
    caller raises the first one with ``check()`` between its steps, where it knows what is
    done, and rolls back with the signals still noted: a second one cannot cut the roll back
    short. ``say`` is printed on stderr at the first signal (e.g. what happens next), and
    ``on_signal`` is called at each (e.g. to tell threads to stop waiting). In a thread other
    than the main one, signals never arrive: then it notes nothing."""

    def __init__(self, say: str | None = None, on_signal: Callable[[], object] | None = None) -> None:
        self.say = say
        self.on_signal = on_signal
        self.received: list[int] = []
        self.raised = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "Deferred":
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._note) for number in _handled()}
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self._restore()
        if kind is None:
            self.check()

    def _note(self, signum: int, frame: object) -> None:
        if not self.received and self.say:
            print(f"dockyard: {self.say}", file=sys.stderr, flush=True)
        self.received.append(signum)
        if self.on_signal is not None:
            self.on_signal()

    def _restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    def check(self) -> None:
        """Raise the interrupt noted (once): ``Terminated`` for SIGTERM or SIGHUP, else
        KeyboardInterrupt."""
        if self.received and not self.raised:
            self.raised = True
            raise _interrupt(next((number for number in self.received if number != signal.SIGINT), signal.SIGINT))

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        """Within: the first signal raises as usual (an attached run's Ctrl-C stops its
        container), and the handler goes back to noting before it raises, so that a second
        one cannot cut short what the first one's handling does; ``check`` raises that one."""
        self.check()
        if not self._previous:  # not the main thread
            yield
            return

        def raise_once(signum: int, frame: object) -> None:
            for number in self._previous:
                signal.signal(number, self._note)
            raise _interrupt(signum)

        for number in self._previous:
            signal.signal(number, raise_once)
        try:
            yield
        finally:
            for number in self._previous:
                signal.signal(number, self._note)
