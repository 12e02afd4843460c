"""The chosen engine, resolved: the address both transports connect to (a Docker context's
endpoint read from the CLI's store), that address as messages name it, and how long an
ordinary request may wait for an answer.

Which engine is chosen is ``engine_choice``'s (settings, environment, containers.toml,
contexts; it makes no request). This module is apart from the transports because they, the
errors and the answers all need it, and it needs none of them.
"""

from __future__ import annotations

import os

from .. import engine_choice
from ..errors import DockyardError

# How long an ordinary request (inspect, list, create, start, remove) may go unanswered
# before the engine is called stuck: a busy engine answers these in seconds, docker-py's
# own 60 s default agrees, and an engine that accepts and never answers then costs a
# minute, not docker-py's 300 s of silence. Streams (builds, logs -f, attach, exec,
# export/save/import/load) and commits have no read timeout: they are long by nature.
# DOCKYARD_ENGINE_TIMEOUT (seconds) changes it.
DEFAULT_TIMEOUT = 60
TIMEOUT_VARIABLE = "DOCKYARD_ENGINE_TIMEOUT"


def request_timeout() -> float:
    """The read (and connect) timeout of ordinary requests, in seconds."""
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text) if text.isascii() else -1.0
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise DockyardError(f"{TIMEOUT_VARIABLE}={text!r}: expected a number of seconds "
                            "greater than 0 (at most 86400)")
    return value


def endpoint() -> str:
    """The address of the chosen engine (see ``engine_choice``); a context's is its host."""
    choice = engine_choice.chosen()
    return checked_address(choice) if choice.is_address else current_context().host


def checked_address(choice: "engine_choice.Choice") -> str:
    """The chosen address, if docker-py can use it; else one line naming what chose it."""
    problem = engine_choice.address_problem(choice.value)
    if problem:
        raise DockyardError(f"the engine address '{choice.value}', chosen by {choice.source}, is not usable: "
                            f"{problem}; expected {engine_choice.FORMS}")
    return choice.value


def where() -> str:
    """The chosen engine for a message: its address and, unless it is the default, what chose it."""
    choice = engine_choice.chosen()
    address = endpoint()
    if choice.source == "default":
        return address
    return engine_choice.said(address, None if choice.is_address else choice.value, choice.source)


def current_context():
    """The chosen Docker context (its endpoint and TLS files), or None when an address is chosen."""
    choice = engine_choice.chosen()
    return None if choice.is_address else _context(choice.value, choice.source)


def _context(name: str, source: str) -> "engine_choice.Context":
    context = engine_choice.context(name)
    if context is None:
        raise DockyardError(f"Docker context '{name}', chosen by {source}, does not exist "
                            "(see `docker context ls`)")
    problem = engine_choice.address_problem(context.host) if "://" in context.host else "it is not an address"
    if problem:
        raise DockyardError(f"Docker context '{name}', chosen by {source}, has the engine address "
                            f"'{context.host}', which is not usable: {problem}")
    return context
