"""Turn a project's containers.toml into an Invoke namespace: one collection per image."""

from __future__ import annotations

from pathlib import Path

from invoke import Collection

from . import config
from .tasks import artifacts, image, project


def namespace(path: str | Path = config.DEFAULT_FILE) -> Collection:
    """The root collection: project-wide tasks plus ``<image>.<task>`` for every image.

    Each image's collection is configured with its key; tasks find their ImageSpec
    through it, the way invocations configures one namespace per target.
    """
    spec = config.load(path)
    root = Collection(*project.TASKS)
    for key in spec.images:
        images = Collection(key, *image.TASKS, *artifacts.TASKS)
        # Its own top-level key: Invoke merges collection config shallowly, the root winning.
        images.configure({"dockyard_image": key})
        root.add_collection(images)
    root.configure({"dockyard": {"config": str(spec.path)}})
    return root
