"""Read containers.toml into plain data, within limits, with ``${VAR}`` resolved.

This is the layer under ``dockyard.config``: it turns bytes into the TOML tree, and
whatever the bytes are, it returns that tree or raises ``DockyardError``.

Limits, so that a hostile or broken file fails at once with a message instead of a
RecursionError or a minute of parsing:

- a regular file (not a FIFO, which would hang, nor a device) of at most ``MAX_BYTES``
  (1 MiB); a real containers.toml is a few KiB;
- at most ``MAX_NESTING`` arrays and tables open inside each other (tomllib recurses
  once per level and overflows the stack near 400);
- at most ``MAX_KEY_PARTS`` parts in one dotted key (tomllib takes time quadratic in
  them: 40,000 parts take about a minute);
- no NUL character in any key or string.

Interpolation, as Docker Compose does it. In every string value (not in keys):

- ``${VAR}`` is the environment variable ``VAR``; if it is unset, loading fails with
  the key path and the variable's name (set but empty is fine, and gives "");
- ``${VAR:-default}`` is ``VAR``, or ``default`` when ``VAR`` is unset or empty; the
  default is taken literally (up to the first ``}``);
- ``$$`` is a literal ``$``;
- any other ``${`` is an error; a ``$`` followed by anything else stays as it is.

Names are ASCII letters, digits and ``_``, not starting with a digit.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import DockyardError
from .files import read_regular

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

MAX_BYTES = 1024 * 1024
MAX_NESTING = 32
MAX_KEY_PARTS = 32

# Just enough of TOML's lexical structure to count nesting without parsing: strings and
# comments are skipped whole, so brackets and dots inside them do not count.
_TOKEN_RE = re.compile(
    r'"""(?:[^\\]|\\.)*?"""'
    r"|'''.*?'''"
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|'[^'\n]*'"
    r"|#[^\n]*"
    r"|[\[\]{}.=,\n]",
    re.DOTALL,
)
_VARIABLE_RE = re.compile(
    r"\$(?:(?P<dollar>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<fallback>:-(?P<default>[^}]*))?\}|(?P<bad>\{))"
)


def read(path: Path, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The TOML tree of ``path`` with its strings interpolated from ``environ`` (os.environ)."""
    text = _read_text(path)
    _check_nesting(path, text)
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise DockyardError(f"{path}: nested too deeply (at most {MAX_NESTING} levels)") from None
    except ValueError as e:  # TOMLDecodeError, and integers over Python's 4300 digits
        raise DockyardError(f"{path}: invalid TOML: {e}") from None
    _resolve_strings(path, data, os.environ if environ is None else environ)
    return data


def _read_text(path: Path) -> str:
    try:
        raw = read_regular(path, MAX_BYTES)  # a FIFO or a device is refused, not waited on
    except FileNotFoundError:
        raise DockyardError(f"{path}: no such file (dockyard reads containers.toml in the project root)") from None
    except OSError as e:
        raise DockyardError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        return raw.decode("utf-8-sig")  # an editor's byte order mark is not content
    except UnicodeDecodeError as e:
        raise DockyardError(f"{path}: cannot read: not UTF-8 ({e.reason} at byte {e.start})") from None


def _check_nesting(path: Path, text: str) -> None:
    depth = parts = 0
    line = 1
    for match in _TOKEN_RE.finditer(text):
        token = match.group()
        if len(token) != 1:  # a string or a comment
            line += token.count("\n")
            continue
        if token == "\n":
            line += 1
        if token in "[{":
            depth += 1
            if depth > MAX_NESTING:
                raise DockyardError(f"{path}: line {line}: nested more than {MAX_NESTING} levels deep")
        elif token in "]}":
            depth = max(depth - 1, 0)
        if token == ".":
            parts += 1
            if parts >= MAX_KEY_PARTS:
                raise DockyardError(f"{path}: line {line}: a dotted key of more than {MAX_KEY_PARTS} parts")
        else:
            parts = 0


def _resolve_strings(path: Path, data: dict, environ: Mapping[str, str]) -> None:
    """Check keys and strings for NUL and interpolate strings, in place, without recursion."""
    pending: list[tuple[dict | list, str]] = [(data, "")]
    while pending:
        container, where = pending.pop()
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, value in list(items):
            if isinstance(key, str):
                if "\0" in key:
                    raise DockyardError(f"{path}: {key_path(where, key)}: a key must not contain NUL")
                at = key_path(where, key)
            else:
                at = f"{where}[{key}]"
            if isinstance(value, str):
                if "\0" in value:
                    raise DockyardError(f"{path}: {at}: must not contain NUL")
                container[key] = interpolate(value, environ, lambda message: DockyardError(f"{path}: {at}: {message}"))
            elif isinstance(value, (dict, list)):
                pending.append((value, at))


def interpolate(text: str, environ: Mapping[str, str],
                fail: Callable[[str], Exception] = ValueError) -> str:
    """``text`` with ``${VAR}``, ``${VAR:-default}`` and ``$$`` replaced (see the module docstring).

    ``fail`` makes the exception to raise from a message.
    """
    if "$" not in text:
        return text

    def replace(match: re.Match) -> str:
        if match["dollar"]:
            return "$"
        if match["bad"]:
            raise fail(f"'${{' at character {match.start()} starts no ${{VAR}} or ${{VAR:-default}}; "
                       "write $$ for a literal $")
        value = environ.get(match["name"])
        if match["fallback"]:
            return value or match["default"]
        if value is None:
            raise fail(f"the environment variable {match['name']} is not set (use ${{{match['name']}:-default}} "
                       "for a default)")
        return value

    return _VARIABLE_RE.sub(replace, text)


def key_path(where: str, key: str) -> str:
    """A key path as the messages write it: ``images.httpd.run``."""
    part = key if key and key.isprintable() else repr(key)
    return f"{where}.{part}" if where else part
