"""Turn a project's containers.toml into an Invoke namespace: one collection per image."""

from __future__ import annotations

import os
from pathlib import Path

import copy
from typing import Any

from invoke import Collection
from invoke.parser import ParserContext

from . import config
from .tasks import artifacts, image, project, registry, services, swarm
from .tasks.core import SETTINGS, Target, bind, end_quietly_on_closed_stdout


def namespace(path: str | Path = config.DEFAULT_FILE) -> Collection:
    """The root collection: project-wide tasks plus ``<image>.<task>`` for every image.

    Every task is bound to its containers.toml and image (see ``tasks.core``). The file is
    ``path``, unless ``INVOKE_DOCKYARD_CONFIG`` names another: the one setting that must be
    known before the tasks exist. The root's configuration declares the dockyard settings,
    so Invoke reads them from invoke.yaml, ~/.invoke.yaml, INVOKE_DOCKYARD_* and -f.
    """
    end_quietly_on_closed_stdout()
    chosen = os.environ.get("INVOKE_DOCKYARD_CONFIG") or path
    spec = config.load(chosen)
    root = Namespace()
    for body in (*project.TASKS, *services.TASKS, *registry.PROJECT_TASKS, *swarm.PROJECT_TASKS):
        root.add_task(bind(body, Target(spec.path)))
    for key in spec.images:
        images = Collection(key)
        for body in (*image.TASKS, *artifacts.TASKS, *registry.IMAGE_TASKS, *swarm.IMAGE_TASKS):
            images.add_task(bind(body, Target(spec.path, key)))
        root.add_collection(images)
    root.configure({"dockyard": dict(SETTINGS)})
    return root


class Namespace(Collection):
    """The root collection. Its parser contexts make their flags only when the command line
    uses them: Invoke makes and deep-copies one context per task for every command, which
    for 50 images is 800 contexts and most of `inv build`'s start-up."""

    def to_contexts(self, ignore_unknown_help: bool | None = None) -> list[ParserContext]:
        return [_LazyContext(primary, aliases, self[primary], ignore_unknown_help)
                for primary, aliases in self.task_names.items()]


class _LazyContext(ParserContext):
    """A task's ParserContext whose arguments are made on first use, and whose deep copy
    before that use is just another lazy context of the same task."""

    def __init__(self, name: str, aliases: Any, task: Any, ignore_unknown_help: bool | None) -> None:
        self._task, self._ignore_unknown_help, self._loaded = task, ignore_unknown_help, False
        super().__init__(name=name, aliases=aliases)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for argument in self._task.get_arguments(ignore_unknown_help=self._ignore_unknown_help):
                self.add_arg(argument)

    def _get(name: str) -> property:  # noqa: N805 - a property factory, used in the class body
        def get(self: "_LazyContext") -> Any:
            self._load()
            return self.__dict__[name]

        def put(self: "_LazyContext", value: Any) -> None:
            self.__dict__[name] = value

        return property(get, put)

    args = _get("_args")
    positional_args = _get("_positional_args")
    flags = _get("_flags")
    inverse_flags = _get("_inverse_flags")

    def __deepcopy__(self, memo: dict) -> ParserContext:
        if not self._loaded:
            return _LazyContext(self.name, self.aliases, self._task, self._ignore_unknown_help)
        copied = ParserContext(name=self.name, aliases=self.aliases)
        for key in ("args", "positional_args", "flags", "inverse_flags"):
            setattr(copied, key, copy.deepcopy(getattr(self, key), memo))
        return copied

    def __repr__(self) -> str:  # Invoke logs every context: that must not make its flags
        return f"<parser/Context {self.name!r}>"
