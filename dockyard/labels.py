"""The labels dockyard puts on what it makes, and how it tells its own objects from others'.

Labels are inherited: a container carries its image's labels, and an image built FROM one
of ours carries ours. So ownership is decided by what cannot be inherited:
- a container is ours when it has ``dockyard.owner``, which only `run` and `shell` set;
- an image is ours when it has our ``dockyard.project`` and its ``dockyard.key`` is not
  simply its parent's (an image someone else builds FROM ours copies the parent's key).
"""

from __future__ import annotations

PROJECT = "dockyard.project"
IMAGE = "dockyard.image"
KEY = "dockyard.key"
OWNER = "dockyard.owner"  # containers only


def image_is_ours(api, image: dict, project: str) -> bool:
    """``image`` is an inspect result; its parent is looked up when it has one."""
    import docker

    labels = (image.get("Config") or {}).get("Labels") or {}
    if labels.get(PROJECT) != project:
        return False
    parent_id = image.get("Parent")
    if not parent_id:
        return True  # imported, loaded or pulled: nothing to inherit from
    try:
        parent = api.inspect_image(parent_id)
    except docker.errors.ImageNotFound:
        return True
    parent_labels = (parent.get("Config") or {}).get("Labels") or {}
    return parent_labels.get(KEY) != labels.get(KEY)
