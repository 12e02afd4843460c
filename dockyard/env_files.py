"""Files of ``KEY=VALUE`` lines, read as Docker Compose reads ``.env`` and ``env_file``.

Used twice: the ``.env`` beside containers.toml gives ``${VAR}`` its values where the
process environment does not (``dockyard.config``), and each ``env_file`` of a run table
gives the container variables. One line each:

- blank lines and lines starting with ``#`` are skipped;
- ``KEY=VALUE``, with an optional ``export`` before it and blanks around ``KEY`` and ``=``;
  the name is ASCII letters, digits, ``_``, ``.`` and ``-``, not starting with a digit;
- an unquoted value runs to the end of the line, or to a ``#`` after a blank (a comment),
  without the blanks around it;
- ``'...'`` is taken literally; ``"..."`` takes the escapes ``\\n``, ``\\r``, ``\\t``, ``\\"``
  and ``\\\\`` (another backslash stays); a comment may follow the closing quote;
- ``KEY=`` is the empty string; a later line for the same name wins.

Unlike Compose, a value is never interpolated (``$`` is a ``$``), a quoted value ends on
its own line, and a bare ``KEY`` without ``=`` is an error, not "take it from the host".

Errors name the line and never echo it: the line may hold a secret.
"""

from __future__ import annotations

import re
from pathlib import Path

from . import files

MAX_BYTES = 1024 * 1024  # as containers.toml: a real one is a few KiB

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
_ESCAPE_RE = re.compile(r"\\(.)")


class EnvFileError(ValueError):
    """What is wrong with the file, without its name: the caller says where it is."""


def read(path: Path) -> dict[str, str]:
    """The variables of ``path``; FileNotFoundError if there is none, EnvFileError if it cannot
    be used. Only a regular file is read: a FIFO or a device would block or never end."""
    try:
        raw = files.regular_bytes(path, MAX_BYTES)
    except FileNotFoundError:
        raise
    except files.NotReadable as e:
        raise EnvFileError(str(e)) from None
    except OSError as e:
        raise EnvFileError(f"cannot read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise EnvFileError(f"not UTF-8 ({e.reason} at byte {e.start})") from None
    return parse(text)


def parse(text: str) -> dict[str, str]:
    variables: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            entry = _entry(line)
        except EnvFileError as e:
            raise EnvFileError(f"line {number}: {e}") from None
        if entry is not None:
            variables[entry[0]] = entry[1]
    return variables


def _entry(line: str) -> tuple[str, str] | None:
    if "\0" in line:
        raise EnvFileError("must not contain NUL")
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    if text.startswith("export") and text[6:7] in (" ", "\t"):
        text = text[6:].lstrip()
    name, equals, value = text.partition("=")
    name = name.strip()
    if not equals or not _NAME_RE.fullmatch(name):
        raise EnvFileError("expected KEY=VALUE (a name of ASCII letters, digits, '_', '.' or '-', "
                           "not starting with a digit)")
    value = value.strip()
    if value[:1] in ("'", '"'):
        return name, _quoted(value)
    comment = re.search(r"\s#", value)
    return name, (value[:comment.start()] if comment else value).rstrip()


def _quoted(value: str) -> str:
    quote = value[0]
    end = value.find("'", 1) if quote == "'" else _closing_double_quote(value)
    if end < 0:
        raise EnvFileError(f"the closing {quote} is missing (a quoted value ends on its own line)")
    rest = value[end + 1:].strip()
    if rest and not rest.startswith("#"):
        raise EnvFileError(f"text after the closing {quote}; put a comment after a blank and #")
    inner = value[1:end]
    if quote == "'":
        return inner
    return _ESCAPE_RE.sub(lambda m: _ESCAPES.get(m[1], m[0]), inner)


def _closing_double_quote(value: str) -> int:
    i = 1
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == '"':
            return i
        i += 1
    return -1
