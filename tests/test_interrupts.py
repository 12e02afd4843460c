"""Signals during a replace, engine-free: what ``interrupts.Deferred`` notes, raises and says."""

from __future__ import annotations

import os
import signal

import pytest

from dockyard import interrupts


def send(number: int) -> None:
    os.kill(os.getpid(), number)  # the handler runs before the next line


def test_a_deferred_signal_is_raised_only_when_checked_and_once(capsys):
    told = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.Deferred(say="interrupted; finishing first", on_signal=lambda: told.append(1)) as signals:
            send(signal.SIGINT)
            send(signal.SIGINT)
            assert told == [1, 1]  # noted, not raised: the step under way goes on
            signals.check()
    assert capsys.readouterr().err == "dockyard: interrupted; finishing first\n"  # said once
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_is_raised_as_terminated_with_its_exit_status():
    with pytest.raises(interrupts.Terminated) as raised:
        with interrupts.Deferred():
            send(signal.SIGTERM)
    assert interrupts.exit_code(raised.value) == 143
    assert interrupts.exit_code(KeyboardInterrupt()) == 130


def test_released_raises_the_first_signal_and_notes_the_next():
    with interrupts.Deferred() as signals:
        with signals.released():
            with pytest.raises(KeyboardInterrupt):
                send(signal.SIGINT)
            send(signal.SIGINT)  # while the first one's handling runs: noted
        with pytest.raises(KeyboardInterrupt):
            signals.check()


def test_sighup_is_raised_as_terminated_with_its_exit_status():
    """A closed terminal or a lost ssh session: the replace finishes or rolls back, as for
    Ctrl-C, instead of the process dying half-way."""
    with pytest.raises(interrupts.Terminated) as raised:
        with interrupts.Deferred():
            send(signal.SIGHUP)
    assert interrupts.exit_code(raised.value) == 129


def test_a_signal_the_process_ignores_stays_ignored():
    """Under `nohup` (SIGHUP ignored) a replace does not take SIGHUP over."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with interrupts.Deferred():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            send(signal.SIGHUP)  # ignored: nothing noted, nothing raised
        interrupts.terminate_as_interrupt()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
