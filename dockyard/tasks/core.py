"""What every dockyard task shares: its project and image bound to the task itself, settings
from Invoke's configuration layers, flag parsing, and output that ends well in a pipe.

Each namespace holds its own Task objects, made by ``bind`` from one module of generic task
functions (no code generation). A bound task carries its containers.toml path and its image
key, so it runs the same when Invoke calls it by name, when it is named in a user's
``pre=[...]``, or when a user's task calls it with its own Context; and ``inv a.stop b.stop``
runs both, since tasks of different images are different tasks to Invoke.
"""

from __future__ import annotations

import atexit
import inspect
import json
import os
import select
import shlex
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from invoke import Argument, Context, Exit, Task

from .. import interrupts
from ..config import load as load_config, warnings as spec_warnings
from ..engine_choice import said, use_setting
from ..errors import DockyardError
from ..masking import masked_text
from ..project import Project

# Defaults of the settings a project (invoke.yaml), a user (~/.invoke.yaml), the environment
# (INVOKE_DOCKYARD_*) or `-f FILE` may set; a task's flag wins over all of them. They are in
# the root collection's configuration, so that Invoke knows the keys and reads them from
# every layer. None means "the task's own default".
SETTINGS: dict[str, Any] = {
    "config": None,         # the containers.toml the namespace was built from
    "jobs": None,           # inv build --jobs (1)
    "quiet": False,         # build --quiet, run --quiet-build
    "progress": True,       # progress bars of archive tasks (a terminal only)
    "stop_timeout": None,   # stop --timeout, restart (10 s)
    "ready_timeout": None,  # run and restart: replaces run.ready.timeout
    "engine": None,         # the Docker engine (an address or a context), before DOCKYARD_ENGINE
    "registry": None,       # push and pull --registry, before [project] registry
    "builder": None,        # auto, buildkit or classic, before DOCKYARD_BUILDER (default auto)
    "watch_debounce": None, # up --watch and run --watch --debounce: quiet milliseconds before a turn (100)
}


class DockyardTask(Task):
    """A task of ours: a closed stdout ends it quietly, Ctrl-C ends it with 130."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        interrupts.terminate_as_interrupt()  # SIGTERM cleans up as Ctrl-C does
        try:
            result = super().__call__(*args, **kwargs)
            sys.stdout.flush()  # within reach of the handler below, not at interpreter exit
            return result
        except BrokenPipeError:
            if not stdout_closed():
                raise
            # As `cat` does when its reader goes away: no message, the status of SIGPIPE.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise Exit(code=128 + 13) from None
        except KeyboardInterrupt as interrupt:
            raise DockyardError(f"interrupted: {self.name} stopped", code=interrupts.exit_code(interrupt)) from None


class ImageTask(DockyardTask):
    """A generic image task bound to one image of one project.

    The body is ``body(c, target, ...)``; Invoke sees it without ``target`` (no flag for
    it), and the call passes the bound target in.
    """

    def __init__(self, body: Callable, target: "Target", **options: Any) -> None:
        self.target = target
        super().__init__(body, **options)

    def argspec(self, body: Callable) -> inspect.Signature:
        return _signature_without_target(body)

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list:
        # Every `inv` asks every task for its flags (Collection.to_contexts), 10,000 tasks
        # for 500 images; the tasks of one generic body have the same flags, so they are
        # made once per body. The parser copies them before it fills in values.
        key = (self.body, ignore_unknown_help)
        flags = _FLAGS.get(key)
        if flags is None:
            # Invoke's version uses up the help texts (it pops them), so it gets a copy.
            saved = dict(self.help)
            try:
                flags = _FLAGS[key] = [Flag.of(made) for made in super().get_arguments(ignore_unknown_help)]
            finally:
                self.help = saved
        return flags

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not args or not isinstance(args[0], Context):
            raise TypeError(f"{self.target.key}.{self.name} expects a Context as its first argument")
        try:
            return super().__call__(args[0], self.target, *args[1:], **kwargs)
        except DockyardError as e:
            masked = self.target.masked(e.text)
            if masked == e.text:
                raise
            raise DockyardError(masked, code=e.code) from None  # an engine's message may echo a secret

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ImageTask) and other.target == self.target and super().__eq__(other)

    def __hash__(self) -> int:
        return hash((self.name, self.body, self.target))

    def __deepcopy__(self, memo: dict) -> "ImageTask":
        # Invoke deep-copies every task of a loaded tasks.py (Collection.from_module): for 50
        # images that is a fifth of a second. A bound task is not changed after it is made, so
        # the copy can be the task itself.
        return self

    def __repr__(self) -> str:
        return f"<Task {self.target.key}.{self.name}>"


class ProjectTask(ImageTask):
    """A top-level task (``inv build``) bound to its project; ``target.key`` is None."""

    def __repr__(self) -> str:
        return f"<Task {self.name} of {self.target.path}>"


class Target:
    """What a bound task works on: a containers.toml, and (image tasks) one image key."""

    def __init__(self, path: Path, key: str | None = None) -> None:
        self.path = path
        self.key = key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Target) and (other.path, other.key) == (self.path, self.key)

    def __hash__(self) -> int:
        return hash((self.path, self.key))

    def masked(self, text: str) -> str:
        """``text`` with the project's secret values masked, once the project has loaded
        (an error of loading masks them itself)."""
        try:
            values = load_config(self.path).masked_values  # cached: loaded already, or failing again
        except DockyardError:
            return text
        return masked_text(text, values)

    def project(self, c: Context) -> Project:
        """The project, checked against a containers.toml named in Invoke's configuration."""
        configured = setting(c, "config")
        if configured is not None and Path(str(configured)).absolute() != self.path:
            raise DockyardError(
                f"dockyard.config is {configured} (from Invoke's configuration: invoke.yaml, "
                f"~/.invoke.yaml, INVOKE_DOCKYARD_CONFIG or -f), but these tasks were made from "
                f"{self.path}; make them from that file (INVOKE_DOCKYARD_CONFIG is read when "
                f"the namespace is made) or unset it")
        # The dockyard.engine setting (invoke.yaml, INVOKE_DOCKYARD_ENGINE, -f): Invoke tasks
        # share no global flag, so the engine is chosen by a setting, not an --engine.
        use_setting(setting(c, "engine"))
        return Project(self.path, builder=setting(c, "builder"))


class Flag(Argument):
    """An Argument made once per generic body and shared by its tasks in every image.
    Invoke copies and shows every task's flags on every command (the parser deep-copies
    them all and logs them all): a Flag's copy is shallow, since only its value changes,
    and its text is made once."""

    @classmethod
    def of(cls, made: Argument) -> "Flag":
        flag = cls(names=made.names, kind=made.kind, default=made.default, help=made.help,
                   positional=made.positional, optional=made.optional,
                   incrementable=made.incrementable, attr_name=made.attr_name)
        flag.text = Argument.__repr__(flag)
        return flag

    def __deepcopy__(self, memo: dict) -> "Flag":
        copied = Flag.__new__(Flag)
        copied.__dict__.update(self.__dict__)
        for name in ("_value", "raw_value"):  # a list kind's values, filled in by the parser
            value = self.__dict__[name]
            if isinstance(value, list):
                copied.__dict__[name] = list(value)
        return copied

    def __repr__(self) -> str:
        return self.text


# The flags of each generic body (and ignore_unknown_help), as ImageTask.get_arguments made them.
_FLAGS: dict[tuple[Callable, bool | None], list] = {}


@lru_cache(maxsize=None)
def _signature_without_target(body: Callable) -> inspect.Signature:
    """The body's signature less its Context and target: computed once per generic body."""
    signature = inspect.signature(body)
    return signature.replace(parameters=list(signature.parameters.values())[2:])


def task_options(**options: Any) -> Callable[[Callable], Callable]:
    """Mark a generic task function with the options ``bind`` gives each of its Tasks."""

    def mark(body: Callable) -> Callable:
        body.task_options = options
        return body

    return mark


def bind(body: Callable, target: Target) -> ImageTask:
    options = dict(body.task_options)
    options.setdefault("positional", [])
    cls = ImageTask if target.key is not None else ProjectTask
    return cls(body, target, **options)


# -- settings and flags ----------------------------------------------------------------


def setting(c: Context, name: str) -> Any:
    """A dockyard setting from Invoke's configuration layers, or None when unset."""
    section = c.config.get("dockyard") or {}
    value = section.get(name) if hasattr(section, "get") else None
    return SETTINGS.get(name) if value is None else value


def choose(c: Context, flag: Any, name: str, flag_name: str | None = None) -> tuple[Any, str]:
    """The flag's value when given, else the setting's: the value and where it came from."""
    if flag is not None and flag is not False:
        return flag, flag_name or f"--{name.replace('_', '-')}"
    return setting(c, name), f"dockyard.{name} in Invoke's configuration"


def parse_number(where: str, value: Any, low: int, high: int) -> int | None:
    """A whole number in ASCII digits, checked here: Invoke's own int() would end in a
    traceback, and str.isdigit() takes superscripts and other scripts' digits."""
    if value is None:
        return None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise DockyardError(f"{where} {value!r}: expected a whole number from {low} to {high}")
    return int(text)


def number_setting(c: Context, flag: Any, name: str, low: int, high: int,
                   flag_name: str | None = None) -> int | None:
    value, source = choose(c, flag, name, flag_name)
    return parse_number(source, value, low, high)


def parse_env(pairs: list[str]) -> dict[str, str]:
    """``--env KEY=VALUE``, or ``--env KEY`` for this environment's value, as `docker run -e`."""
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not key:
            raise DockyardError(f"--env {pair!r}: expected KEY=VALUE or the name of a variable that is set")
        if not sep:
            if key not in os.environ:
                raise DockyardError(f"--env {pair!r}: {key} is not set here; give KEY=VALUE or export {key}")
            value = os.environ[key]
        parsed[key] = value
    return parsed


def stdin_is_data() -> bool:
    """Whether our standard input is data to pass on (a pipe or a file), not a terminal."""
    try:
        return not os.isatty(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):  # closed, or replaced by something without a descriptor
        return False


def remainder_args(c: Context) -> list[str]:
    """The words after `--` on the command line, as given (Invoke joins them with spaces)."""
    remainder = getattr(c, "remainder", "") or ""
    if not remainder:
        return []
    if "--" in sys.argv:
        words = sys.argv[sys.argv.index("--") + 1:]
        if " ".join(words) == remainder:
            return words
    return shlex.split(remainder)


def counted(count: int, noun: str) -> str:
    """'1 layer', '2 layers', '0 layers': a count as English says it (nouns with a plain -s)."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def engine_line(engine: dict) -> str:
    """`engine: ...`, the engine in use and what chose it, or why there is none."""
    if engine.get("error"):
        return f"engine: {engine['error']}"
    return f"engine: {said(engine['address'], engine['context'], engine['source'])}"


def warn(project: Any, deployed: Any = ()) -> None:
    """Settings that weaken the defaults, on stderr: stdout stays the result. ``deployed``:
    images whose Swarm service runs now (it publishes on every interface, [deploy] table or not)."""
    for line in spec_warnings(project, deployed):
        print(f"dockyard: warning: {masked_text(line, project.masked_values)}", file=sys.stderr)


def end_quietly_on_closed_stdout() -> None:
    """Output into a closed pipe ends as `cat` does, with no message and the status of
    SIGPIPE, also where Invoke itself writes (--list, -h), which no task of ours wraps:
    stdout is flushed at exit while a failure can still be caught."""
    def flush() -> None:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _close_stdout_and_exit()
        except (OSError, ValueError):
            pass

    def hook(kind: type, value: BaseException, traceback: Any) -> None:
        if issubclass(kind, BrokenPipeError) and stdout_closed():
            _close_stdout_and_exit()
        previous(kind, value, traceback)

    if getattr(sys.excepthook, "dockyard", False):
        return
    previous = sys.excepthook
    hook.dockyard = True
    sys.excepthook = hook
    atexit.register(flush)


def _close_stdout_and_exit() -> None:
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.stderr.flush()
    os._exit(128 + 13)


def stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (so writing to it fails)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False
