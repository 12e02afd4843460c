"""Archive outputs without an engine: the parallel gzip writer and the progress meter."""

from __future__ import annotations

import gzip
import io
import os
import random
import stat
import sys

from dockyard.archive_writing import GZIP_BLOCK, GzipWriter, check_target, open_output
from dockyard.progress import meter


def test_gzip_writer_output_is_one_ordinary_gzip_stream():
    rng = random.Random(3)
    data = rng.randbytes(3 * GZIP_BLOCK) + b"repetitive " * 300_000 + b"tail"
    raw = io.BytesIO()
    writer = GzipWriter(raw)
    for start in range(0, len(data), 70_001):
        writer.write(data[start:start + 70_001])
    writer.finish()

    assert gzip.decompress(raw.getvalue()) == data
    assert len(raw.getvalue()) < len(data)


def test_gzip_writer_handles_empty_input():
    raw = io.BytesIO()
    writer = GzipWriter(raw)
    writer.finish()
    assert gzip.decompress(raw.getvalue()) == b""


def test_meter_prints_nothing_when_stderr_is_not_a_terminal(capsys):
    with meter(1000, "export x", enabled=True) as bar:
        bar.update(500)
    assert capsys.readouterr().err == ""


def test_meter_draws_bytes_and_percent_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with meter(2048, "save x", enabled=True) as bar:
        bar.update(1024)
    assert "save x" in terminal.getvalue() and "50%" in terminal.getvalue()

    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    with meter(2048, "save x", enabled=False) as bar:
        bar.update(1024)
    assert quiet.getvalue() == ""


def test_a_replaced_file_keeps_its_mode_and_a_new_one_gets_the_umasks(tmp_path):
    private, fresh = tmp_path / "private.tar", tmp_path / "fresh.tar"
    private.write_bytes(b"old")
    private.chmod(0o600)
    old_umask = os.umask(0o022)
    try:
        for path in (private, fresh):
            with open_output(check_target(path, force=True), force=True) as out:
                out.writer.write(b"new")
    finally:
        os.umask(old_umask)
    assert private.read_bytes() == b"new" and stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
