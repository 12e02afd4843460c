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
    _load_tasks_py_as_namespace()
    return root


class Namespace(Collection):
    """The root collection. Its parser contexts make their flags only when the command line
    uses them: Invoke makes and deep-copies one context per task for every command, which
    for 50 images is 800 contexts and most of `inv build`'s start-up."""

    def to_contexts(self, ignore_unknown_help: bool | None = None) -> list[ParserContext]:
        # One _Arguments per task, kept for later calls: Invoke's get_arguments uses up a
        # plain task's help texts, so a task's flags are made once per namespace.
        made = self.__dict__.setdefault("_dockyard_arguments", {})
        contexts = []
        for primary, aliases in self.task_names.items():
            task = _task(self, primary)
            arguments = made.get((primary, ignore_unknown_help))
            if arguments is None or arguments.task is not task:
                arguments = made[primary, ignore_unknown_help] = _Arguments(task, ignore_unknown_help)
            contexts.append(_LazyContext(primary, aliases, arguments))
        return contexts


def _task(root: Collection, name: str) -> Any:
    """The task of a primary name from ``task_names``: ``root[name]`` without the
    configuration Invoke merges and deep-copies on every look-up (1,000 of them for 50
    images). Collections' and tasks' keys are already transformed, as primary names are;
    a name that is not a path to a task is left to Invoke."""
    *path, last = name.split(".")
    collection = root
    try:
        for part in path:
            collection = collection.collections[part]
        return collection.tasks[last]
    except KeyError:
        return root[name]


def _load_tasks_py_as_namespace() -> None:
    """`inv` loads tasks.py with ``Collection.from_module``, which copies its ``ns`` into a
    plain Collection and so would lose Namespace's lazy contexts; a module whose ``ns`` (or
    ``namespace``) is a Namespace is loaded as one. Every other module loads as before."""
    original = Collection.__dict__["from_module"].__func__
    if getattr(original, "dockyard", False):
        return

    def from_module(cls: type, module: Any, *args: Any, **kwargs: Any) -> Collection:
        for candidate in ("ns", "namespace"):  # Invoke's own order of look-up
            obj = getattr(module, candidate, None)
            if obj and isinstance(obj, Collection):
                if cls is Collection and isinstance(obj, Namespace):
                    cls = Namespace
                break
        return original(cls, module, *args, **kwargs)

    from_module.dockyard = True
    from_module.__doc__ = original.__doc__
    Collection.from_module = classmethod(from_module)


class _Arguments:
    """A task's flags, made once and handed out as fresh copies (parsing fills in values)."""

    def __init__(self, task: Any, ignore_unknown_help: bool | None) -> None:
        self.task, self.ignore_unknown_help, self.made = task, ignore_unknown_help, None

    def fresh(self) -> list:
        if self.made is None:
            self.made = self.task.get_arguments(ignore_unknown_help=self.ignore_unknown_help)
        return copy.deepcopy(self.made)


class _LazyContext(ParserContext):
    """A task's ParserContext whose arguments are made on first use, and whose deep copy
    before that use is just another lazy context of the same task."""

    def __init__(self, name: str, aliases: Any, arguments: _Arguments) -> None:
        self._arguments, self._loaded = arguments, False
        super().__init__(name=name, aliases=aliases)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for argument in self._arguments.fresh():
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
            return _LazyContext(self.name, self.aliases, self._arguments)
        copied = ParserContext(name=self.name, aliases=self.aliases)
        for key in ("args", "positional_args", "flags", "inverse_flags"):
            setattr(copied, key, copy.deepcopy(getattr(self, key), memo))
        return copied

    def __repr__(self) -> str:  # Invoke logs every context: that must not make its flags
        return f"<parser/Context {self.name!r}>"
