"""A byte-counting progress bar on stderr, silent when nobody is watching."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Meter(Protocol):
    def update(self, n: int) -> object: ...


class _Silent:
    def update(self, n: int) -> None:
        pass


@contextmanager
def meter(total: int | None, desc: str, enabled: bool = True) -> Iterator[Meter]:
    """Yield something with ``.update(n_bytes)``: a tqdm bar, or a no-op.

    The bar shows bytes and rate, plus percent when ``total`` is known. It is
    drawn only when enabled and stderr is a terminal, so logs and pipes get
    nothing per chunk.
    """
    if not (enabled and sys.stderr.isatty()):
        yield _Silent()
        return
    from tqdm import tqdm  # lazy: keeps `inv --list` fast

    columns = _terminal_columns()
    with tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        mininterval=0.25,
        # A pty with no size set reports 0 columns, and tqdm then draws nothing.
        dynamic_ncols=columns > 0,
        ncols=None if columns > 0 else 80,
        nrows=None if columns > 0 else 24,  # both set, or tqdm asks the terminal again
    ) as bar:
        yield bar


def _terminal_columns() -> int:
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        return 0
