"""`up --watch` and `run --watch`: edit a file, see it served, without typing a command.

One long-running process brings the services up (or one image, as `run` starts it), then
watches what they are made from: each image's build context (what ``.dockerignore`` leaves
in), containers.toml and its ``.env`` and env files, and the host paths the services mount.
Each burst of changes is one turn, and turns never overlap (a change during a turn makes one
more turn after it):

- a change to a file an image syncs (``[images.NAME.watch] sync``) is copied into its running
  container (``sync_file``): no build, no new container;
- any other change builds what is out of date, parents first (the build key decides: a
  change that alters no key builds nothing), then replaces the services whose image or
  settings changed, in `after` order, each removed only once its new container answers
  (``up.up``'s ``keep_until_ready``): a failed build or container leaves the old one
  serving, and the next change tries again;
- a change under a host path a service mounts restarts that service (the container sees the
  file already; a server reads its configuration when it starts).

Least privilege stays: the root filesystem stays read-only. While a watch runs, each
directory a sync writes into is an anonymous volume (the engine copies the image's content
there, owners and modes included), which only the engine writes into (as root, keeping
each file's owner and mode); the volume goes with its container. A container made by a
watch differs in that from one `up` makes, and each replaces the other.

The file watcher is ``watchfiles`` (inotify), imported only here, when a watch starts.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import queue
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, TextIO

from . import config, containers, engine, interrupts, up
from .config import ImageSpec, ProjectSpec
from .dockerignore import sends
from .errors import DockyardError
from .graph import build_order
from .services import start_order

if TYPE_CHECKING:
    from .project import Project

# How long the files must stay quiet before a turn starts: an editor's save, or twenty saves
# in a second, is one turn. The longest a burst is gathered before a turn starts anyway.
DEFAULT_DEBOUNCE = 0.1
LONGEST_BURST = 2.0
STEP_MS = 20  # how often watchfiles hands over what it has gathered
ADDED = 1  # watchfiles.Change.added (its values, without importing it where no watch runs)


@dataclass(frozen=True)
class Target:
    """What a watch keeps running: the services `up` starts (``only`` some), or one image as
    `run` starts it (``image``, with its flags)."""

    only: tuple[str, ...] | None = None
    image: str | None = None
    overrides: containers.RunOverrides = field(default_factory=containers.RunOverrides)

    def keys(self, project: ProjectSpec) -> list[str]:
        if self.image is not None:
            return [self.image]
        order = start_order(project.images, self.only)
        if not order:
            raise DockyardError(f"{project.path.name} has no services: give an image ports, a ready check "
                                "or run.service = true")
        return order

    def overrides_for(self, spec: ImageSpec) -> containers.RunOverrides:
        """The flags of a `run` (its image only), and the directories a sync writes into."""
        base = self.overrides if spec.key == self.image else containers.RunOverrides()
        return containers.RunOverrides(port=base.port, env=base.env, args=base.args,
                                       writable=writable_directories(spec))


def writable_directories(spec: ImageSpec) -> tuple[str, ...]:
    """The container directories a watch makes volumes of: a synced file's directory, a synced
    directory itself; one inside another is already writable through it."""
    found = sorted({target if (spec.dir / source).is_dir() else posixpath.dirname(target)
                    for source, target in spec.watch.sync})
    return tuple(d for d in found if not any(d.startswith(other.rstrip("/") + "/") for other in found if other != d))


@dataclass
class Turn:
    """What one turn did, as the report gets it (``as_json``)."""

    changed: list[str]
    synced: list[str] = field(default_factory=list)  # IMAGE:TARGET, e.g. "httpd:/www/index.html"
    built: list[str] = field(default_factory=list)  # image keys, parents first
    replaced: list[str] = field(default_factory=list)  # as `up` says it: "httpd replaced (image changed)"
    restarted: list[str] = field(default_factory=list)  # image keys
    seconds: float = 0.0
    url: str | None = None
    error: str | None = None

    def as_json(self) -> dict:
        return {"changed": self.changed, "synced": self.synced, "built": self.built, "replaced": self.replaced,
                "restarted": self.restarted, "seconds": round(self.seconds, 3), "url": self.url,
                "error": self.error}


class Ended(Exception):
    """The watch was told to end (a signal, or ``stop``): how, for the one who ends it."""

    def __init__(self, signal_code: int | None, said: str | None = None) -> None:
        super().__init__(said or "")
        self.signal_code = signal_code
        self.said = said


class Watcher:
    """``watchfiles`` in a thread of its own, from before the first turn to the end: changes
    made during a turn are gathered, not lost, and the main thread keeps its signals (Ctrl-C
    ends the wait at once). ``bursts`` gets each burst once the files have been quiet for
    ``debounce`` seconds, or after ``LONGEST_BURST`` of changes that never stop."""

    def __init__(self, paths: list[Path], debounce: float, directories: list[Path] = ()) -> None:
        """``paths``: watched with all they hold; ``directories``: their own entries only (the
        project's directory, for containers.toml and .env: a file deleted and made again,
        or replaced by an editor's rename, is seen there, where a watch of the file is lost)."""
        self.bursts: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._failure: list[BaseException] = []
        self._threads = []
        for group, recursive in ((paths, True), (directories, False)):
            if not group:
                continue
            ready = threading.Event()
            thread = threading.Thread(target=self._watch, args=(group, debounce, recursive, ready),
                                      name="dockyard-watch", daemon=True)
            thread.start()
            ready.wait(10)  # watching from here on (or failed, said below)
            self._threads.append(thread)
            if self._failure:
                self.close()
                raise DockyardError(f"cannot watch {', '.join(map(str, group))}: {self._failure[0]}")

    def _watch(self, paths: list[Path], debounce: float, recursive: bool, ready: threading.Event) -> None:
        import watchfiles  # the file watcher: only a watch needs it

        # watchfiles groups changes until their set stops growing, but a file saved again and
        # again is one member of that set: its own grouping would split twenty saves of one
        # file into several turns. So it hands over what it has often (STEP_MS), and the quiet
        # time is ours: a wait of ``debounce`` that sees no change at all (an empty set).
        pending: set[tuple[object, str]] = set()
        since = 0.0
        try:
            for burst in watchfiles.watch(*paths, debounce=int(LONGEST_BURST * 1000), step=STEP_MS,
                                          rust_timeout=max(1, int(debounce * 1000)), yield_on_timeout=True,
                                          stop_event=self._stop, raise_interrupt=False, recursive=recursive):
                ready.set()
                if burst and not pending:
                    since = time.monotonic()
                pending |= burst
                if pending and (not burst or time.monotonic() - since > LONGEST_BURST):
                    self.bursts.put(pending)
                    pending = set()
        except Exception as e:  # noqa: BLE001 - a path that went, a watch limit: said by the main thread
            self._failure.append(e)
            self.bursts.put(e)
        finally:
            ready.set()

    def replaced_by(self, other: Watcher) -> Watcher:
        """``other``, with what this one gathered and had not handed over; this one closed."""
        self.close()
        with contextlib.suppress(queue.Empty):
            while True:
                other.bursts.put(self.bursts.get_nowait())
        return other

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)


@dataclass
class Plan:
    """What a burst of changes asks for."""

    changed: list[str]  # as said: relative to the project's directory
    reload: bool = False  # containers.toml or a file it reads
    rebuild: bool = False
    syncs: list[tuple[ImageSpec, Path, str]] = field(default_factory=list)  # (image, file, target)
    restarts: list[str] = field(default_factory=list)  # image keys


class Watch:
    """One watch of a project (``Project.watch``): ``run`` until a signal or ``stop``."""

    def __init__(self, project: Project, target: Target, *, debounce: float = DEFAULT_DEBOUNCE,
                 ready_timeout: float | None = None, quiet_build: bool = True, output: TextIO | None = None,
                 report: Callable[[dict], None] = lambda turn: None,
                 stop: threading.Event | None = None) -> None:
        self.project = project
        self.target = target
        self.debounce = debounce
        self.ready_timeout = ready_timeout
        self.quiet_build = quiet_build
        self.output = output or sys.stderr
        self.report = report
        self.stop = stop or threading.Event()
        self._owners: dict[tuple[str, str], tarfile.TarInfo] = {}  # sync_file's, for the watch's life

    @property
    def spec(self) -> ProjectSpec:
        return self.project.spec

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        """The first turn (bring everything up), then one turn per burst of changes, until a
        signal or ``stop``: then ``Ended`` is raised. The services are left as they are. The
        files are watched from before the first turn: an edit made while it runs is the next."""
        watcher = Watcher(self.watched_paths(), self.debounce, self.watched_directories())
        try:
            self._turn(Turn(changed=[]), Plan(changed=[], rebuild=True), first=True)
            while True:
                for changes in self._changes(watcher):
                    plan = self._plan(changes)
                    if plan is not None:
                        self._do(plan)
                        if plan.reload:
                            # What is watched may have changed (and an editor may have replaced
                            # containers.toml): a new watcher, what the old one still has handed on.
                            watcher = watcher.replaced_by(Watcher(self.watched_paths(), self.debounce,
                                                                  self.watched_directories()))
                            break
        except KeyboardInterrupt as interrupt:  # while waiting, or between the steps of a turn
            raise Ended(interrupts.exit_code(interrupt)) from None
        finally:
            watcher.close()

    def _changes(self, watcher: Watcher) -> Iterator[set[tuple[object, str]]]:
        """The watcher's bursts, as they come; those that came during a turn are one (the turn
        after it). Ends by ``Ended`` when ``stop`` is set."""
        while True:
            try:
                burst = watcher.bursts.get(timeout=0.1)  # short: ``stop`` is seen soon
            except queue.Empty:
                if self.stop.is_set():
                    raise Ended(None) from None
                continue
            except KeyboardInterrupt as interrupt:  # Ctrl-C or SIGTERM: the wait ends at once
                raise Ended(interrupts.exit_code(interrupt)) from None
            with contextlib.suppress(queue.Empty):
                while not isinstance(burst, BaseException):
                    more = watcher.bursts.get_nowait()
                    burst = more if isinstance(more, BaseException) else burst | more
            if isinstance(burst, BaseException):
                raise DockyardError(f"the watch of the files failed: {burst}; start it again")
            yield burst

    # -- what a burst of changes asks for ----------------------------------------------------

    def watched_paths(self) -> list[Path]:
        """The image directories of what the target needs built (parents included), the
        project's own files, and the host paths its services mount; those that exist."""
        keys = self.target.keys(self.spec)
        paths = {self.spec.images[key].dir for key in build_order(self.spec.images, keys)}
        for key in keys:
            paths |= set(_mounted(self.spec.images[key]))
        return sorted(path for path in paths if path.exists())

    def watched_directories(self) -> list[Path]:
        """The directories of the project's own files (containers.toml, .env, env_files),
        watched for their own entries only: such a file may be gone for a while."""
        return sorted({path.parent for path in self._config_files() if path.parent.exists()})

    def _config_files(self) -> list[Path]:
        files = [self.spec.path, self.spec.root / config.DOTENV_FILE]
        for spec in self.spec.images.values():
            files += list(spec.run.env_file)
        return [path.absolute() for path in files]

    def _plan(self, changes: set[tuple[object, str]]) -> Plan | None:
        """The turn a burst asks for, or None when nothing watched was touched (a file that
        `.dockerignore` leaves out)."""
        keys = self.target.keys(self.spec)
        images = [self.spec.images[key] for key in build_order(self.spec.images, keys)]
        configs = set(self._config_files())
        plan = Plan(changed=[])
        added = {Path(name).absolute() for kind, name in changes if int(kind) == ADDED}
        for path in sorted({Path(name).absolute() for _, name in changes}):
            if path in added and not os.path.lexists(path):
                continue  # made and gone within the burst: an editor's temporary file (a save by rename)
            if path in configs:
                plan.reload = plan.rebuild = True
                plan.changed.append(self._said(path))
                continue
            owner = next((spec for spec in images if path.is_relative_to(spec.dir.absolute())), None)
            if owner is not None:
                if sends(owner.dir, owner.dockerfile, path):
                    plan.changed.append(self._said(path))
                    target = _sync_target(owner, path) if owner.key in keys else None
                    if target is None:  # not synced, or deleted: a rebuild says what it is now
                        plan.rebuild = True
                    else:
                        plan.syncs.append((owner, path, target))
                continue
            mounting = [key for key in keys if any(path.is_relative_to(m) for m in _mounted(self.spec.images[key]))]
            if mounting:
                plan.changed.append(self._said(path))
                plan.restarts += [key for key in mounting if key not in plan.restarts]
        return plan if plan.changed else None

    def _said(self, path: Path) -> str:
        with contextlib.suppress(ValueError):
            return path.relative_to(self.spec.root.absolute()).as_posix()
        return str(path)

    # -- a turn -------------------------------------------------------------------------------

    def _do(self, plan: Plan) -> None:
        turn = Turn(changed=plan.changed)
        started = time.monotonic()
        if plan.reload:
            try:
                self.project.reload()
            except DockyardError as e:
                turn.error = str(e)  # the turn's line says that what ran before keeps serving
                self._finish(turn, started)
                return
        if not plan.rebuild and plan.syncs:
            try:
                self._sync(turn, plan)
            except DockyardError as e:  # the engine: a rebuild would fail the same way
                turn.error = str(e)
                self._finish(turn, started)
                return
            if not plan.rebuild:
                self._restart(turn, plan)
                self._finish(turn, started)
                return
            turn.synced = []  # what could be synced is rebuilt with what could not
        self._turn(turn, plan)

    def _turn(self, turn: Turn, plan: Plan, first: bool = False) -> None:
        """Build what is out of date, then bring the target up; a failure is said in the
        turn's report, and the watch goes on. The first turn's build output is shown (a first
        build takes long); a later turn is its one line, and its error says where a build failed."""
        started = time.monotonic()
        try:
            if plan.rebuild:
                self._build_and_up(turn, self.output if first else io.StringIO())
            self._restart(turn, plan)
        except DockyardError as e:
            if e.code in _SIGNAL_CODES:  # the step under way was interrupted, and said so
                raise Ended(e.code, str(e)) from None
            turn.error = str(e)
        self._finish(turn, started)

    def _build_and_up(self, turn: Turn, output: TextIO) -> None:
        keys = self.target.keys(self.spec)
        outcomes = self.project.build(keys, quiet=self.quiet_build, output=output, check=False)
        turn.built = [o["image"] for o in outcomes if o["status"] == "built"]
        failed = [o for o in outcomes if o["status"] == "failed"]
        if failed:
            raise DockyardError(failed[0]["detail"])
        with self.project.on_engine_of(keys[0]):
            outcomes = up.up(self.spec, keys, ready_timeout=self.ready_timeout,
                                 overrides=self.target.overrides_for, keep_until_ready=True)
        turn.replaced = [f"{o['image']} {o['action']}" + (f" ({o['reason']})" if o["reason"] else "")
                         for o in outcomes if o["action"] != "unchanged"]

    def _sync(self, turn: Turn, plan: Plan) -> None:
        """Copy each synced file into its running container; one that cannot be (no such
        file there yet, no container running, a refusal) makes the turn a rebuild."""
        for spec, path, target in plan.syncs:
            with self.project.on_engine_of(spec.key):
                container = containers.owned(self.spec, spec, required=False)
                if container is None or not container["State"]["Running"]:
                    plan.rebuild = True
                    return
                with interrupts.Deferred() as signals:  # a file is copied whole or not at all
                    why = sync_file(container["Id"], path, target, f"sync {self._said(path)} into {spec.run.name}",
                                    self._owners)
                signals.check()
            if why is not None:
                plan.rebuild = True
                return
            turn.synced.append(f"{spec.key}:{target}")

    def _restart(self, turn: Turn, plan: Plan) -> None:
        for key in plan.restarts:
            spec = self.spec.images[key]
            with self.project.on_engine_of(key):
                container = containers.owned(self.spec, spec, required=False)
                if container is None:
                    continue
                containers.restart(spec, container["Id"], 10)
                containers.wait_ready(spec, container["Id"], containers.ports_of(spec, container),
                                      timeout=self.ready_timeout)
            turn.restarted.append(key)

    def _finish(self, turn: Turn, started: float) -> None:
        turn.seconds = time.monotonic() - started
        turn.url = self.url()
        self.report(turn.as_json())

    def url(self) -> str | None:
        """Where to look: the first of the target's services that publishes a port, as `run`
        says it."""
        for key in self.target.keys(self.spec):
            spec = self.spec.images[key]
            url = containers.browser_url(containers.published_ports(spec, self.target.overrides_for(spec)))
            if url:
                return url
        return None


def _mounted(spec: ImageSpec) -> list[Path]:
    """The host paths the image's container mounts (`run.volumes` with an absolute source)."""
    return [Path(mount.partition(":")[0]) for mount in spec.run.volumes if mount.startswith("/")]


_SIGNAL_CODES = (130, 143, 129)  # interrupts.exit_code of SIGINT, SIGTERM, SIGHUP: what ended a step


class _Either:
    """Set when either event is: what watchfiles asks (``is_set``) to end its wait."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def is_set(self) -> bool:
        return any(event.is_set() for event in self.events)


def _sync_target(spec: ImageSpec, path: Path) -> str | None:
    """Where ``path`` goes in the image's container if it is synced: a synced file's target, or
    a file under a synced directory's target; None when it is not synced (a rebuild)."""
    for source, target in spec.watch.sync:
        synced = (spec.dir / source).absolute()
        if path == synced and path.is_file():
            return target
        if path.is_relative_to(synced) and path != synced and path.is_file():
            return posixpath.join(target, path.relative_to(synced).as_posix())
    return None


def sync_file(container_id: str, path: Path, target: str, what: str,
              owners: dict[tuple[str, str], tarfile.TarInfo] | None = None) -> str | None:
    """Copy the file ``path`` into the container at ``target``, keeping the owner and mode of
    the file there (the engine writes as root; a tar header carries both). None once done,
    else why it cannot be synced: no such file in the container yet (a rebuild says what it
    should be), something else than a file there, the engine's refusal. ``owners``: the
    headers read before, by (container, target): only the engine writes there, so they hold
    for the container's life, and a sync after the first is one request (half the time)."""
    owners = {} if owners is None else owners
    old = owners.get((container_id, target))
    if old is None:
        current = engine.get_archive(container_id, target, what)
        if current is None:
            return f"{target} does not exist in the container"
        with tarfile.open(fileobj=io.BytesIO(current)) as tar:
            members = tar.getmembers()
        if not members or not members[0].isfile():
            return f"{target} is not a file in the container"
        old = owners[(container_id, target)] = members[0]
    try:
        data = path.read_bytes()
    except OSError as e:
        return f"{path}: {e.strerror}"
    info = tarfile.TarInfo(posixpath.basename(target))
    info.size, info.mode, info.mtime = len(data), old.mode, time.time()
    info.uid, info.gid, info.uname, info.gname = old.uid, old.gid, old.uname, old.gname
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(data))
    try:
        engine.put_archive(container_id, posixpath.dirname(target), packed.getvalue(), what)
    except engine.Refused as e:
        return e.explanation
    return None
