"""The resolved configuration as `inv config` prints it: every field of the specs.

It is read from the spec dataclasses of ``dockyard.config`` themselves (``dataclasses.fields``),
never from a list kept by hand, so a field added there is printed without a change here;
tests/test_config_output.py holds that every field of every spec is in the text and the JSON.
Values are plain JSON: paths as strings, tuples as lists, a table of pairs (``environment``,
``build_args``, ``labels``) as an object, a nested spec as an object of its own fields, and a
port mapping as it reads everywhere else (``127.0.0.1:8000->8000/tcp``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, get_type_hints

from .config import ImageSpec, ProjectSpec
from .masking import masked_variables

# Fields that are not a `name = value` of their own: an image's key is the name of its section
# (its key under "images"), the images are the sections, and the masked values are the secrets
# themselves, which nothing dockyard prints may show.
NOT_LISTED = frozenset({(ImageSpec, "key"), (ProjectSpec, "images"), (ProjectSpec, "masked_values")})
PAIRS = tuple[tuple[str, str], ...]  # a TOML table of strings, kept in order


def resolved_config(project: ProjectSpec) -> dict:
    """``{"project": ..., "images": {KEY: ...}}``: the specs' fields as plain JSON values, with
    the values in use where they differ from what was written (a tag with its ``:latest``) and
    each secret variable's value masked."""
    images = {}
    for key, spec in project.images.items():
        image = spec_fields(spec)
        image["tag"] = spec.ref
        image["build_args"] = masked_variables(image["build_args"], project.secrets)
        image["run"]["environment"] = masked_variables(image["run"]["environment"], spec.run.secrets)
        images[key] = image
    return {"project": spec_fields(project), "images": images}


def spec_fields(spec: Any) -> dict[str, Any]:
    """A spec's listed fields, by name, as plain JSON values."""
    hints = _hints(type(spec))
    return {f.name: _plain(getattr(spec, f.name), hints[f.name]) for f in listed(spec)}


def field_lines(spec: Any, shown: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted name, value)`` for each listed field of ``spec``, its value taken from
    ``shown`` (its `spec_fields`, resolved and masked); a nested spec is opened into its own
    fields (``run.ready.url``), as a TOML key path names them."""
    for f in listed(spec):
        value = getattr(spec, f.name)
        if dataclasses.is_dataclass(value) and isinstance(shown[f.name], dict):
            yield from field_lines(value, shown[f.name], f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", shown[f.name]


def setting_line(name: str, value: Any) -> str:
    return f"{name} = {json.dumps(value)}"


def listed(spec: Any) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(spec) if (type(spec), f.name) not in NOT_LISTED]


@cache
def _hints(kind: type) -> dict[str, Any]:
    return get_type_hints(kind)  # the annotations are strings (`from __future__ import annotations`)


def _plain(value: Any, hint: Any) -> Any:
    if dataclasses.is_dataclass(value):
        # A spec that says itself (a port mapping) is shown as it reads in `status` and `run`.
        return str(value) if "__str__" in vars(type(value)) else spec_fields(value)
    if hint == PAIRS:
        return dict(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, frozenset):
        return sorted(_plain(item, None) for item in value)
    if isinstance(value, tuple):
        return [_plain(item, None) for item in value]
    return value
