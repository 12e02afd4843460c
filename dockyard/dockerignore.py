"""A build context's ``.dockerignore``: which files a build sends to the engine.

The rules follow docker-py 7.x (``docker/utils/build.py``, a port of moby's ``fileutils``),
with one deliberate difference: matching is case-sensitive, as in the Docker CLI on Linux
(docker-py lower-cases both the path and the pattern, so ``*.md`` would drop ``NOTES.MD``).
``context`` walks a context with them; ``config`` asks ``sends`` whether a watched file or
an env file is sent, without loading what a build needs (tarfile, hashing).
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from .files import read_regular
from .records import frozen

DOCKERIGNORE = ".dockerignore"
MAX_DOCKERIGNORE = 16 * 1024 * 1024  # real ones are a few KiB


def read_dockerignore(context_dir: Path) -> list[str]:
    """The patterns of the context's ``.dockerignore``, trimmed, without comments and blanks."""
    try:  # a FIFO or a link to /dev/zero is refused, not waited on or read without end
        text = read_regular(Path(context_dir) / DOCKERIGNORE, MAX_DOCKERIGNORE).decode(
            "utf-8-sig", errors="surrogateescape")
    except FileNotFoundError:
        return []
    lines = (line.strip() for line in text.split("\n"))
    return [line for line in lines if line and not line.startswith("#")]


@frozen
class Pattern:
    """One line of .dockerignore, cleaned and compiled."""

    exception: bool  # a "!" line: re-includes what it matches
    dirs: tuple[str, ...]  # cleaned path components
    cleaned: str
    regex: re.Pattern[str]

    @classmethod
    def parse(cls, line: str) -> Pattern | None:
        """A pattern, or None for lines that clean to nothing ("/", ".", "!")."""
        exception = line.startswith("!")
        dirs = _clean(line[1:] if exception else line)
        if not dirs:
            return None
        cleaned = "/".join(dirs)
        return cls(exception, tuple(dirs), cleaned, re.compile(_translate(cleaned)))

    def matches(self, path: str) -> bool:
        return self.regex.match(path) is not None


def sends(context_dir: Path, dockerfile: str, path: Path) -> bool:
    """Whether a build of ``context_dir`` sends the file ``path`` to the engine."""
    root = Path(context_dir).resolve()
    target = Path(path).resolve()
    if not target.is_relative_to(root):
        return False
    rules = IgnoreRules(read_dockerignore(root), dockerfile)
    return not rules.excludes(target.relative_to(root).as_posix())


class IgnoreRules:
    """docker-py's PatternMatcher: the last pattern that matches a path or a parent decides."""

    def __init__(self, lines: list[str], dockerfile: str) -> None:
        always_kept = [f"!{dockerfile}", f"!{DOCKERIGNORE}"]
        parsed = (Pattern.parse(line) for line in [*lines, *always_kept])
        self.patterns = [pattern for pattern in parsed if pattern is not None]
        self.exceptions = [pattern for pattern in self.patterns if pattern.exception]
        # Without a pattern that excludes (no .dockerignore: only the two kept above), no
        # path is excluded, and the walk need not ask for each.
        self.can_exclude = len(self.exceptions) < len(self.patterns)

    def excludes(self, path: str) -> bool:
        parent = posixpath.dirname(path)
        parent_dirs = parent.split("/") if parent else []
        excluded = False
        for pattern in self.patterns:
            matched = pattern.matches(path)
            # "build" must also exclude "build/x/y": try the parent cut to the pattern's depth.
            if not matched and parent_dirs and len(pattern.dirs) <= len(parent_dirs):
                matched = pattern.matches("/".join(parent_dirs[:len(pattern.dirs)]))
            if matched:
                excluded = not pattern.exception
        return excluded

    def may_reinclude_under(self, dir_path: str) -> bool:
        """Whether the walk must enter an excluded dir because an exception may reach into it.

        A plain prefix test, as in docker-py and moby: "!build/keep" enters "build", while
        "!*/keep" enters nothing.
        """
        return any(pattern.cleaned.startswith(dir_path) for pattern in self.exceptions)


def _clean(pattern: str) -> list[str]:
    """Path components after filepath.Clean: no empty or "." parts, ".." folded away.

    Leading and trailing slashes go with the empty parts, so "/abs" is "abs" and "build/"
    is "build" (which then excludes a file named "build" too, as Docker does). A ".." past
    the top is dropped, as docker-py drops it.
    """
    parts: list[str] = []
    for part in pattern.strip().split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part and part != ".":
            parts.append(part)
    return parts


def _translate(pattern: str) -> str:
    """The regex for a cleaned pattern: ``*`` and ``?`` stop at "/", ``**`` spans dirs."""
    regex, i, n = "^", 0, len(pattern)
    while i < n:
        char = pattern[i]
        i += 1
        if char == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1  # "**/" is "**": zero or more whole directories
                regex += ".*" if i >= n else "(.*/)?"
            else:
                regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                regex += "\\["  # unclosed: a literal "["
            else:
                members = pattern[i:j].replace("\\", "\\\\")
                i = j + 1
                if members[0] == "!":
                    members = "^" + members[1:]
                elif members[0] == "^":
                    members = "\\" + members
                regex += f"[{members}]"
        else:
            regex += re.escape(char)
    return regex + "$"
