"""MkDocs hooks (mkdocs.yml `hooks:`): what the manual takes from the code and from bench/
when the site is built, so that no copy of it can drift.

- ``<!-- keys: containers.toml -->`` in a page becomes the table of every containers.toml key,
  made from dockyard/schema.py's key tables (the ones the loader checks and the JSON Schema is
  made from).
- ``<!-- include: bench/README.md -->`` becomes that file, less its title.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # dockyard itself, as checked out beside mkdocs.yml

from dockyard import schema  # noqa: E402 - after the path it is found on

KEYS_MARKER = "<!-- keys: containers.toml -->"
INCLUDE_MARKER = "<!-- include: bench/README.md -->"

# What a table of tables is called in a key's path: [images.NAME], [volumes.NAME].
TABLES_NAME = "NAME"


def key_rows(table: schema.Table = schema.DOCUMENT, prefix: str = "") -> Iterator[tuple[str, schema.Key]]:
    """Every key of containers.toml, depth first, as (dotted path, key)."""
    for key in table.keys:
        path = f"{prefix}{key.name}"
        if key.type == schema.TABLES:
            path = f"{path}.{TABLES_NAME}"
        yield path, key
        if key.table is not None:
            yield from key_rows(key.table, f"{path}.")


def key_reference() -> str:
    """The markdown table of every key: path, type, and what it means."""
    rows = ["| key | type | meaning |", "| --- | --- | --- |"]
    for path, key in key_rows():
        kind = "table" if key.type == schema.TABLES else key.type
        kind += ", required" if key.required else ""
        meaning = key.description
        if key.name_pattern:
            meaning += f"; `NAME` matches `{key.name_pattern}`"
        if key.reserved_names:
            meaning += ", and is not " + ", ".join(f"`{name}`" for name in key.reserved_names)
        rows.append(f"| `{path}` | {kind} | {cell(meaning)} |")
    return "\n".join(rows) + "\n"


def cell(text: str) -> str:
    """Text in a table cell: a `|` would end the cell."""
    return text.replace("|", "\\|")


def bench_readme() -> str:
    """bench/README.md without its title: the page has its own, and the file's sections are
    the page's."""
    lines = (ROOT / "bench" / "README.md").read_text(encoding="utf-8").splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip() + "\n"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if KEYS_MARKER in markdown:
        markdown = markdown.replace(KEYS_MARKER, key_reference())
    if INCLUDE_MARKER in markdown:
        markdown = markdown.replace(INCLUDE_MARKER, bench_readme())
    return markdown
