"""Turn a project's containers.toml into an Invoke namespace: one collection per image."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from invoke import Collection

from . import config
from .tasks import artifacts, image, project, registry, services, swarm
from .tasks.core import SETTINGS, Target, bind, end_quietly_on_closed_stdout


def namespace(path: str | Path = config.DEFAULT_FILE) -> Collection:
    """The root collection: project-wide tasks plus ``<image>.<task>`` for every image.

    Every task is bound to its containers.toml and image (see ``tasks.core``). The file is
    ``path``, unless ``INVOKE_DOCKYARD_CONFIG`` names another: the one setting that must be
    known before the tasks exist. The root's configuration declares the dockyard settings,
    so Invoke reads them from invoke.yaml, ~/.invoke.yaml, INVOKE_DOCKYARD_* and -f.

    It is a plain Collection, and `inv` loads it with Invoke's own ``Collection.from_module``
    and parses with Invoke's own parser contexts: what keeps a project of many images quick
    to start is in the tasks (``ImageTask.get_arguments``) and in ``ImageCollection``.
    """
    end_quietly_on_closed_stdout()
    chosen = os.environ.get("INVOKE_DOCKYARD_CONFIG") or path
    spec = config.load(chosen)
    root = Collection()
    for body in (*project.TASKS, *services.TASKS, *registry.PROJECT_TASKS, *swarm.PROJECT_TASKS):
        root.add_task(bind(body, Target(spec.path)))
    for key in spec.images:
        images = ImageCollection(key)
        for body in (*image.TASKS, *artifacts.TASKS, *registry.IMAGE_TASKS, *swarm.IMAGE_TASKS):
            images.add_task(bind(body, Target(spec.path, key)))
        root.add_collection(images)
    root.configure({"dockyard": dict(SETTINGS)})
    return root


class ImageCollection(Collection):
    """One image's tasks. ``inv`` copies tasks.py's ``ns`` (``Collection.from_module``
    deep-copies every collection in it), and then looks up every task of every image to
    make the parser's contexts; for 500 images that is 10,000 look-ups, so both are cheap
    here. A user may still add tasks to it and configure it, as to any collection."""

    def __deepcopy__(self, memo: dict) -> "ImageCollection":
        # Its tasks are bound to their image and not changed after they are made
        # (ImageTask.__deepcopy__ is the task itself): the copy can be the collection.
        return self

    def task_with_config(self, name: str | None) -> tuple[Any, dict[str, Any]]:
        # Invoke's version copies this collection's configuration on every look-up; with
        # none set, a task of its own is found without it.
        if not self._configuration and name:
            task = self.tasks.get(name)
            if task is not None:
                return task, {}
        return super().task_with_config(name)
