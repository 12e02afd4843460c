"""Secret values as dockyard prints them: ``******``.

The rule (docs/configuration.md, "Secrets"): a variable is secret when an ``env_file``
sets it, or when ``[project] secrets`` names it. dockyard prints a secret variable's value,
in ``run.environment`` and ``build_args``, as ``MASK``; the value of a name in
``[project] secrets`` is also masked wherever else it appears in what dockyard prints (a
``${DB_PASSWORD}`` inside a URL, a command, the build output). ``dockyard.config`` works
out which names and values these are; this module only replaces them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

MASK = "******"


def masked_text(text: str, values: Iterable[str]) -> str:
    """``text`` with every occurrence of each value replaced by ``MASK``, longest value first
    (a secret that holds another is masked whole)."""
    for value in sorted(values, key=len, reverse=True):
        if value and value in text:
            text = text.replace(value, MASK)
    return text


def masked_variables(variables: Mapping[str, str], secret: Collection[str]) -> dict[str, str]:
    """``variables`` with the value of each name in ``secret`` replaced by ``MASK``."""
    return {name: MASK if name in secret else value for name, value in variables.items()}


def masked(data: Any, values: Iterable[str]) -> Any:
    """Every string in a tree of dicts and lists (keys too) passed through ``masked_text``."""
    values = tuple(values)
    if not values:
        return data
    if isinstance(data, str):
        return masked_text(data, values)
    if isinstance(data, dict):
        return {masked(key, values): masked(item, values) for key, item in data.items()}
    if isinstance(data, (list, tuple)):
        return [masked(item, values) for item in data]
    return data
