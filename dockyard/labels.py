"""The labels dockyard puts on what it makes, and how it tells its own objects from others'.

Labels are inherited: a container carries its image's labels, and an image built FROM one
of ours carries ours. So ownership is decided by what cannot be inherited:
- a container is ours when it has ``dockyard.owner``, which only dockyard's own container
  creation sets;
- an image is ours when it has our ``dockyard.project`` and its ``dockyard.key`` is not
  simply its parent's (an image someone else builds FROM ours copies the parent's key).
"""

from __future__ import annotations

import json
from typing import Callable

PROJECT = "dockyard.project"
IMAGE = "dockyard.image"
KEY = "dockyard.key"
OWNER = "dockyard.owner"  # containers, networks and volumes: never inherited
SETTINGS = "dockyard.settings"  # containers: the hash of what they were created with
VOLUME = "dockyard.volume"  # volumes: the name containers.toml gives it


def labels_of(obj: dict | None) -> dict[str, str]:
    """The labels of an inspected container or image."""
    return ((obj or {}).get("Config") or {}).get("Labels") or {}


def container_labels(project: str, image: str) -> dict[str, str]:
    """What a container of ours carries: its project (as owner) and its image key."""
    return {OWNER: project, IMAGE: image}


def resource_labels(project: str, volume: str | None = None) -> dict[str, str]:
    """What the project's network and its volumes carry (``volume``: its name in containers.toml)."""
    return {OWNER: project} | ({VOLUME: volume} if volume else {})


def resource_is_ours(obj: dict, project: str) -> bool:
    """An inspected or listed network or volume (their labels are not under Config)."""
    return (obj.get("Labels") or {}).get(OWNER) == project


def resource_owner(obj: dict) -> str:
    owner = (obj.get("Labels") or {}).get(OWNER)
    return f"dockyard project '{owner}'" if owner else "something other than dockyard"


def container_is_ours(container: dict, project: str) -> bool:
    return labels_of(container).get(OWNER) == project


def container_owner(container: dict) -> str:
    """Who made a container, for a refusal message."""
    owner = labels_of(container).get(OWNER)
    return f"dockyard project '{owner}'" if owner else "something other than dockyard"


def image_is_ours(image: dict, project: str, parent_of: Callable[[str], dict | None]) -> bool:
    """``image`` is an inspect result; ``parent_of`` inspects its parent (None if gone)."""
    labels = labels_of(image)
    if labels.get(PROJECT) != project:
        return False
    parent_id = image.get("Parent")
    if not parent_id:
        return True  # imported, loaded or pulled: nothing to inherit from
    parent = parent_of(parent_id)
    return parent is None or labels_of(parent).get(KEY) != labels.get(KEY)


def label_instruction(labels: dict[str, str]) -> str:
    """One Dockerfile ``LABEL`` instruction that the builder and ``changes`` take literally.

    JSON strings are Dockerfile double-quoted words; ``$`` is escaped so the builder does not
    expand it, and non-ASCII text stays as it is (no ``\\u`` escapes stored in the label).
    """
    words = []
    for key, value in labels.items():
        words.append(f"{_quoted(key)}={_quoted(value)}")
    return "LABEL " + " ".join(words)


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("$", "\\$")
