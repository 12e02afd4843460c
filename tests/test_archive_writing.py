"""Archive outputs without an engine: the parallel gzip writer and the progress meter."""

from __future__ import annotations

import gzip
import io
import random
import sys

from dockyard.archive_writing import GZIP_BLOCK, GzipWriter
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
