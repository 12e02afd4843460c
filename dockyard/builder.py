"""Make for images: build what is out of date, parents first, independent images in parallel.

An image is up to date when its tag carries the build key (``dockyard.key`` label) that
its Dockerfile, context, build args and parents' image ids hash to now.

Builds of one image on one engine take turns, also across processes: four `inv httpd.run`
started together build each image once, and the other three find it up to date.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, TextIO
from urllib.parse import quote

from . import engine, interrupts, registry as registries, turns
from .config import ImageSpec, ProjectSpec, normalize_ref
from .context import Listing, build_key, list_context, write_context_tar
from .digests import FileDigests
from .engine import buildkit
from .errors import DockyardError
from .graph import build_order, from_refs
from .labels import IMAGE, KEY, PROJECT, image_is_ours, label_instruction
from .masking import masked_text

BUILT, UP_TO_DATE, FAILED, SKIPPED = "built", "up to date", "failed", "skipped"
INSPECTS_AT_ONCE = 8  # a build's inspects of images go this many at a time (see _Session)


@dataclass
class Outcome:
    key: str
    status: str
    seconds: float = 0.0
    image_id: str | None = None
    detail: str = ""


@dataclass
class BuildOptions:
    force: bool = False
    no_cache: bool = False
    pull: bool = False
    jobs: int = 1
    quiet: bool = False
    builder: str | None = None  # BUILDERS; None: DOCKYARD_BUILDER, else "auto"


# "auto": BuildKit where the engine offers it, else the classic builder (Docker's deprecated
# one, kept as the fallback and as a setting).
BUILDERS = ("auto", "buildkit", "classic")
BUILDER_VARIABLE = "DOCKYARD_BUILDER"


def builder_choice(value: str | None) -> str:
    """The builder asked for (the setting or the API's argument, else DOCKYARD_BUILDER), checked."""
    source = "dockyard.builder"
    if not value:
        value, source = os.environ.get(BUILDER_VARIABLE) or "auto", BUILDER_VARIABLE
    value = str(value).strip().lower()
    if value not in BUILDERS:
        raise DockyardError(f"{source} is {value!r}: expected one of {', '.join(BUILDERS)}")
    return value


class Output:
    """Line-prefixed, thread-safe output so parallel builds stay readable."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.lock = threading.Lock()
        self.width = 0

    def line(self, key: str, text: str) -> None:
        with self.lock:
            for part in text.rstrip("\n").split("\n"):
                self.stream.write(f"{key:<{self.width}} | {part}\n")
            self.stream.flush()  # a closed pipe raises BrokenPipeError here, as for any print


@dataclass
class _Session:
    """What one `build` invocation knows about images, asked of the engine once and kept current.

    Inspects cost what the project has, a listing what the engine holds: an inspect is about
    a millisecond, and they go 8 at a time; a listing (`GET /images/json`), even filtered by
    our project label, makes the engine read every image it has. Measured (medians, a busy
    2-core machine, Docker 20.10): 4 images by inspects 7 ms, by one listing 16 ms; 50 images
    44 ms against 18 ms on an engine holding 77 images, but 39 ms against 83 ms on one
    holding 780; 500 images 380 ms against 90 ms on one holding 600. So up to one round of
    inspects (``INSPECTS_AT_ONCE``) a project's images are inspected, and beyond it they are
    found in one listing of the project's images: a no-op's requests do not grow with them.
    """

    project: ProjectSpec
    options: BuildOptions
    output: Output
    targets: set[str] = field(default_factory=set)
    images: dict[str, dict | None] = field(default_factory=dict)  # normalized ref -> {"Id", "Labels"} or None
    replaced: list[tuple[str, str]] = field(default_factory=list)  # (image key, old id)
    in_flight: list = field(default_factory=list)  # the engine's answers to running builds
    lock: threading.Lock = field(default_factory=threading.Lock)
    interrupted: threading.Event = field(default_factory=threading.Event)
    _buildkit: bool | None = None

    def buildkit(self) -> bool:
        """Whether builds go through BuildKit: asked of the engine once, when a build is due."""
        if self._buildkit is None:
            choice = builder_choice(self.options.builder)
            self._buildkit = engine.offers_buildkit() if choice == "auto" else choice == "buildkit"
        return self._buildkit

    def image(self, ref: str) -> dict | None:
        ref = normalize_ref(ref)
        with self.lock:
            if ref in self.images:
                return self.images[ref]
        found = _inspect(ref)
        with self.lock:
            return self.images.setdefault(ref, found)

    def prefetch(self, refs: list[str]) -> None:
        """Ask for these images together, before the builds ask for them one by one: in one
        listing of the project's images when there are more than one round of inspects, then
        an inspect of each one the listing did not have (a base image from elsewhere, one not
        built yet). An unreachable engine fails here, once."""
        wanted = [ref for ref in dict.fromkeys(normalize_ref(ref) for ref in refs) if ref not in self.images]
        if len(wanted) > INSPECTS_AT_ONCE:
            self._list_project_images(set(wanted))
            wanted = [ref for ref in wanted if ref not in self.images]
        if not wanted:
            return
        self.image(wanted[0])  # alone: an unreachable engine fails once, not in each thread
        if len(wanted) > 1:
            # Each in a copy of our context: the engine chosen for these builds (engine.using).
            with ThreadPoolExecutor(max_workers=min(INSPECTS_AT_ONCE, len(wanted) - 1)) as pool:
                futures = [pool.submit(contextvars.copy_context().run, self.image, ref) for ref in wanted[1:]]
                for future in futures:
                    future.result()

    def _list_project_images(self, wanted: set[str]) -> None:
        """Record the wanted refs that tag an image labelled with our project. An image
        listed has the id and labels an inspect of its tag would give; a ref not listed is
        left for an inspect (it may tag an image that is not labelled ours)."""
        listed = engine.images({"label": [f"{PROJECT}={self.project.name}"]}, "list the project's images")
        with self.lock:
            for image in listed:
                for tag in image.get("RepoTags") or ():
                    ref = normalize_ref(tag)
                    if ref in wanted:
                        self.images[ref] = {"Id": image["Id"], "Labels": image.get("Labels") or {}}

    def image_id(self, ref: str) -> str | None:
        image = self.image(ref)
        return image["Id"] if image else None

    def rebuild_asked(self, spec: ImageSpec) -> bool:
        o = self.options
        return spec.key in self.targets and (o.force or o.no_cache or o.pull)

    def record(self, ref: str, image_id: str, labels: dict[str, str]) -> None:
        with self.lock:
            self.images[normalize_ref(ref)] = {"Id": image_id, "Labels": labels}

    def refresh(self, ref: str) -> dict | None:
        """The image as the engine has it now, not as this session saw it: another process
        may have built it since."""
        found = _inspect(normalize_ref(ref))
        with self.lock:
            self.images[normalize_ref(ref)] = found
        return found


def _inspect(ref: str) -> dict | None:
    """An image's id and labels, or None when the engine has no such image. Over the local
    socket this needs no docker-py: a no-op build never loads it."""
    image = engine.get_json(f"/images/{quote(ref, safe='/:')}/json", f"inspect image {ref}", missing=True)
    return {"Id": image["Id"], "Labels": (image.get("Config") or {}).get("Labels") or {}} if image else None


inspect_image = engine.inspect_image


def build(project: ProjectSpec, names: list[str] | None, options: BuildOptions,
          output: Output | None = None) -> list[Outcome]:
    """Build the named images (default: all) and their prerequisites; returns one Outcome each."""
    keys = build_order(project.images, names)
    output = output or Output()
    output.width = max(len(k) for k in keys)
    # --force, --no-cache and --pull apply to the images asked for, not to their prerequisites.
    session = _Session(project, options, output, targets=set(names or keys))
    session.prefetch([project.images[k].ref for k in keys])  # an unreachable engine fails here, once
    schedule = _Schedule(project, keys, output, session.interrupted)
    # ``jobs`` daemon threads, not an executor: on Ctrl-C we leave at once, and the engine
    # cancels a build whose client went away, so nothing half-built gets tagged. Each worker
    # takes the next image whose parents are done, so a no-op of many images passes no image
    # from thread to thread. Each runs in a copy of our context: the engine chosen for these
    # builds (engine.using).
    for n in range(min(max(1, options.jobs), len(keys))):
        threading.Thread(target=contextvars.copy_context().run, args=(_work, session, schedule),
                         name=f"build-{n}", daemon=True).start()
    try:
        schedule.wait()
    except KeyboardInterrupt as interrupt:
        # Named now: a build whose connection is cut below ends at once, and its worker may
        # report it done before the message is made.
        abandoned = schedule.under_way()
        session.interrupted.set()  # a build still waiting for its turn gives up, and none starts
        schedule.wake()  # idle workers end, also when the process lives on
        # Closing their connections makes the engine cancel the builds now, also when the
        # process lives on (a release script that catches the error).
        for response in session.in_flight:
            engine.cut(response)
        engine.close()
        said = f"the build of {', '.join(abandoned)} was abandoned" if abandoned else "no build was under way"
        raise DockyardError(f"interrupted: {said}", code=interrupts.exit_code(interrupt)) from None
    _remove_replaced(session)
    return [schedule.outcomes[k] for k in keys]


class _Schedule:
    """Which image is built next: the first, in build order, whose parents are all done. An
    image with a failed (or skipped) parent is skipped."""

    def __init__(self, project: ProjectSpec, keys: list[str], output: Output,
                 interrupted: threading.Event) -> None:
        self.project = project
        self.output = output
        self.interrupted = interrupted
        self.order = {key: n for n, key in enumerate(keys)}
        self.waiting_for = {key: sum(p in self.order for p in project.images[key].parents) for key in keys}
        self.children: dict[str, list[str]] = {key: [] for key in keys}
        for key in keys:
            for parent in project.images[key].parents:
                if parent in self.order:
                    self.children[parent].append(key)
        self.ready = [self.order[key] for key in keys if not self.waiting_for[key]]  # a heap, of build order
        self.keys = keys
        self.running: set[str] = set()
        self.outcomes: dict[str, Outcome] = {}
        self.error: BaseException | None = None  # a bug in a worker, raised in the caller's thread
        self.changed = threading.Condition()

    def next(self) -> ImageSpec | None:
        """The next image to build, once one is ready; None when there is none left to start."""
        with self.changed:
            while not self.ready:
                if len(self.outcomes) + len(self.running) == len(self.keys) or self.error or self.interrupted.is_set():
                    return None
                self.changed.wait()
            if self.error or self.interrupted.is_set():
                return None
            key = self.keys[heapq.heappop(self.ready)]
            self.running.add(key)
            return self.project.images[key]

    def done(self, key: str, outcome: Outcome | BaseException) -> None:
        with self.changed:
            self.running.discard(key)
            try:
                if isinstance(outcome, BaseException):
                    raise outcome
                self._finish(key, outcome)
            except BaseException as e:  # noqa: BLE001 - our closed output, or a bug: the caller's thread raises it
                self.error = e
            self.changed.notify_all()

    def _finish(self, key: str, outcome: Outcome) -> None:
        self.outcomes[key] = outcome
        for child in self.children[key]:
            if child in self.outcomes:
                continue
            if outcome.status in (FAILED, SKIPPED):
                # Skipped at once, as its failed parent is known; its own children follow (a
                # skipped child is in the outcomes, so its other parents pass it by).
                self.output.line(child, f"skipped: {key} failed")
                self._finish(child, Outcome(child, SKIPPED, detail=f"{key} failed"))
                continue
            self.waiting_for[child] -= 1
            if self.waiting_for[child] == 0:
                heapq.heappush(self.ready, self.order[child])

    def under_way(self) -> list[str]:
        """The images being built now, by name."""
        with self.changed:
            return sorted(self.running)

    def wake(self) -> None:
        """Workers waiting for an image look again (and find that the build was interrupted)."""
        with self.changed:
            self.changed.notify_all()

    def wait(self) -> None:
        """Until every image is done; a worker's bug is raised here."""
        with self.changed:
            while len(self.outcomes) < len(self.keys) and not self.error:
                self.changed.wait(timeout=0.5)  # a timeout keeps the wait interruptible by Ctrl-C
        if self.error:
            raise self.error


def _work(session: _Session, schedule: _Schedule) -> None:
    while (spec := schedule.next()) is not None:
        schedule.done(spec.key, _build_one(session, spec))


def _build_one(session: _Session, spec: ImageSpec) -> Outcome | BaseException:
    """The image's outcome; a BaseException is a bug or our closed output, not the build's failure."""
    started = time.monotonic()
    try:
        if spec.base is not None:
            outcome = _ensure_base(session, spec)
        else:
            outcome = _build_dockerfile(session, spec)
    except BrokenPipeError as e:  # our own output was closed: not the image's failure
        return e
    except (DockyardError, OSError) as e:
        # OSError: the context could not be read, or changed while it was being sent.
        detail = str(e) if isinstance(e, DockyardError) else f"build context {spec.dir}: {e}"
        outcome = Outcome(spec.key, FAILED, detail=detail)
    except BaseException as e:  # noqa: BLE001 - handed to the main thread, which raises it
        return e
    outcome.seconds = time.monotonic() - started
    return outcome


def image_key(session: _Session, spec: ImageSpec) -> tuple[str, Listing]:
    """The build key the image would carry if it were built now, and the context it hashed."""
    files, digests = _listed(spec.dir, spec.dockerfile)
    refs = from_refs(spec.dir / spec.dockerfile, dict(spec.build_args))
    parent_ids = [session.image_id(ref) or normalize_ref(ref) for ref in refs]
    options = {name: value for name, value in (("target", spec.target), ("network", spec.build_network)) if value}
    key = build_key(spec.dir, files, dockerfile=spec.dockerfile, build_args=dict(spec.build_args),
                    parent_ids=parent_ids, labels=dict(spec.labels), options=options, digests=digests)
    digests.save()
    return key, files


def base_key(spec: ImageSpec) -> str:
    """An imported base is as current as its directory (the rootfs script) and its changes."""
    assert spec.base is not None
    files, digests = _listed(spec.dir, "Dockerfile")
    key = build_key(spec.dir, files, dockerfile="(base)",
                    build_args={"changes": "\n".join(spec.base.changes)}, parent_ids=[], digests=digests)
    digests.save()
    return key


def _listed(context_dir: Path, dockerfile: str) -> tuple[Listing, FileDigests]:
    """The context's listing, and the content digests remembered for it from the last build,
    so that a no-op reads no file. The record is loaded first: the racy rule counts from then."""
    digests = FileDigests.load(context_dir, dockerfile)
    return list_context(context_dir, dockerfile), digests


def _labels(session: _Session, spec: ImageSpec, key: str) -> dict[str, str]:
    return {**dict(spec.labels), PROJECT: session.project.name, IMAGE: spec.key, KEY: key}


def _is_current(spec: ImageSpec, image: dict, key: str) -> bool:
    """The image carries the key it would get now. A base with no key was pulled, and is
    current until asked to pull again; an imported one is current until its script changes."""
    found = image["Labels"].get(KEY)
    return found == key or (spec.base is not None and found is None)


def _up_to_date(session: _Session, spec: ImageSpec, image: dict | None, key: str) -> Outcome | None:
    """The up-to-date outcome, said, when ``image`` needs no build."""
    if image and _is_current(spec, image, key) and not session.rebuild_asked(spec):
        session.output.line(spec.key, f"{spec.key} is up to date ({spec.ref})")
        return Outcome(spec.key, UP_TO_DATE, image_id=image["Id"])
    return None


def _build_dockerfile(session: _Session, spec: ImageSpec) -> Outcome:
    key, files = image_key(session, spec)
    current = _up_to_date(session, spec, session.image(spec.ref), key)
    if current:
        return current
    with _turn_to_build(session, spec):
        previous = session.refresh(spec.ref)
        return _up_to_date(session, spec, previous, key) or _build_from(session, spec, key, files, previous)


def _build_from(session: _Session, spec: ImageSpec, key: str, files: Listing, previous: dict | None) -> Outcome:
    out = session.output
    with_buildkit = session.buildkit()
    out.line(spec.key, f"building {spec.ref} from {spec.dir}{' with BuildKit' if with_buildkit else ''}")
    labels = _labels(session, spec, key)
    # BuildKit applies labels when it exports the image. The classic builder's `labels`
    # option adds a build step (a container and a commit) per label: there, ours go in as
    # one LABEL line at the end of the Dockerfile sent, unless a target stage is built, which
    # need not be the last.
    in_dockerfile = not with_buildkit and not spec.target
    appended = {spec.dockerfile: ("\n" + label_instruction(labels) + "\n").encode()} if in_dockerfile else {}
    if session.rebuild_asked(spec) and session.options.pull:
        _pull_external_parents(session, spec)
    with tempfile.TemporaryFile() as context:
        write_context_tar(spec.dir, files, context, appended=appended)
        context.seek(0)
        image_id = _stream_build(session, spec, context, None if in_dockerfile else labels,
                                 with_buildkit=with_buildkit)
    session.record(spec.ref, image_id, labels)
    if previous and previous["Id"] != image_id:
        session.replaced.append((spec.key, previous["Id"]))
    out.line(spec.key, f"built {spec.ref} ({engine.short_id(image_id)})")
    return Outcome(spec.key, BUILT, image_id=image_id)


def _stream_build(session: _Session, spec: ImageSpec, context, labels: dict[str, str] | None,
                  *, with_buildkit: bool) -> str:
    """Send the context to the engine's builder and show its progress; the new image's id.
    ``labels``: given to the engine's `labels` option (None: the Dockerfile sent has them)."""
    options, out = session.options, session.output
    image_id = None
    last_lines: list[str] = []
    params = {"t": spec.ref, "dockerfile": spec.dockerfile, "buildargs": json.dumps(dict(spec.build_args)),
              "nocache": options.no_cache and spec.key in session.targets,
              "pull": False, "rm": True, "forcerm": True}  # --pull: see _pull_external_parents
    if spec.target:
        params["target"] = spec.target
    if spec.build_network:
        params["networkmode"] = spec.build_network
    if labels is not None:
        params["labels"] = json.dumps(labels)
    trace = buildkit.Progress() if with_buildkit else None
    if with_buildkit:
        params["version"] = "2"

    def masked(text: str) -> str:
        return masked_text(text, session.project.masked_values)  # a RUN step may echo a build arg

    def show(text: str) -> None:
        nonlocal last_lines
        text = masked(text)
        last_lines = (last_lines + [text])[-10:]
        if not options.quiet:
            out.line(spec.key, text)

    stream = engine.build_stream(context, params, session.in_flight.append)
    for chunk in stream:
        if "error" in chunk:
            detail = (chunk.get("errorDetail", {}).get("message") or chunk["error"]).strip()
            step, output = trace.failure() if trace is not None else (None, [])
            at = f" at step '{step}'" if step else ""
            shown = "".join(f"\n  {line}" for line in output)
            raise DockyardError(masked(f"build of {spec.ref} ({spec.dir / spec.dockerfile}) failed{at}: {detail}"
                                       + (f"; its last output:{shown}" if shown else "")))
        aux = chunk.get("aux")
        if chunk.get("id") == buildkit.TRACE and trace is not None:
            for line in trace.feed(aux):
                show(line)
            continue
        if isinstance(aux, dict) and "ID" in aux:  # the classic builder's, or BuildKit's moby.image.id
            image_id = aux["ID"]
        text = chunk.get("stream") or chunk.get("status")
        if text and text.strip():
            show(text.rstrip())
    if image_id is None:  # older engines say it only in the stream; or the engine went away
        with engine.doing(f"build {spec.ref}"):  # and an engine gone is said as the build's end
            image = inspect_image(spec.ref)
        if not image:
            raise DockyardError(f"build of {spec.ref} produced no image:\n" + "\n".join(last_lines))
        image_id = image["Id"]
    return image_id


def _pull_external_parents(session: _Session, spec: ImageSpec) -> None:
    """--pull, for the FROM images that are not the project's own: the engine's own pull
    option would also try to pull our parents from a registry, where they are not."""
    ours = {session.project.images[key].ref for key in session.project.images}
    refs = from_refs(spec.dir / spec.dockerfile, dict(spec.build_args))
    for ref in dict.fromkeys(normalize_ref(r) for r in refs):
        if ref not in ours:
            session.output.line(spec.key, f"pulling {ref}")
            _pull_ref(ref)


def _remove_replaced(session: _Session) -> None:
    """Remove the images this run replaced, as build-httpd.sh's `docker rmi` did, but only
    after every build has finished (the engine's cache lookup trips over an image removed
    under a running build), only if they were ours, and only when nothing else uses them:
    no container or image (the engine refuses), and no Swarm service, which may need it
    again though it runs no task now (scaled to 0)."""
    services = None
    for key, image_id in session.replaced:
        from .cleanup import service_images, service_using

        image = inspect_image(image_id)
        if image is None or not image_is_ours(image, session.project.name, inspect_image):
            continue
        if services is None:
            try:
                services = service_images()
            except engine.Refused as e:  # a manager that lost its quorum: the build stands, the image stays
                services = e
        if isinstance(services, engine.Refused):
            session.output.line(key, f"kept the replaced image {engine.short_id(image_id)}: the swarm's "
                                     f"services, which may use it, could not be listed ({services.explanation})")
            continue
        user = service_using(image, services)
        if user is not None:
            session.output.line(key, f"kept the replaced image {engine.short_id(image_id)}: service {user} uses it")
            continue
        try:
            engine.remove_image(image_id, f"remove the replaced image {engine.short_id(image_id)}")
        except engine.Refused as e:
            if e.status not in (404, 409):
                raise
            continue  # gone, or still tagged elsewhere, or a container or child image uses it: keep it
        session.output.line(key, f"removed the replaced image {engine.short_id(image_id)}")


def _ensure_base(session: _Session, spec: ImageSpec) -> Outcome:
    """A base image: pulled where a registry answers, else imported from the rootfs script."""
    assert spec.base is not None
    files_key = base_key(spec)
    outcome = _up_to_date(session, spec, session.image(spec.ref), files_key)
    if outcome:
        return outcome
    with _turn_to_build(session, spec):
        current = session.refresh(spec.ref)
        return _up_to_date(session, spec, current, files_key) or _make_base(session, spec, files_key, current)


def _make_base(session: _Session, spec: ImageSpec, files_key: str, current: dict | None) -> Outcome:
    assert spec.base is not None
    out = session.output
    pull_error = None
    if spec.base.pull:
        try:
            image_id = _pull(spec)
            session.record(spec.ref, image_id, {})
            out.line(spec.key, f"pulled {spec.base.pull} as {spec.ref} ({engine.short_id(image_id)})")
            return Outcome(spec.key, BUILT, image_id=image_id, detail="pulled")
        except DockyardError as e:
            pull_error = str(e)
            if spec.base.rootfs is None:
                raise
    assert spec.base.rootfs is not None
    if pull_error:
        out.line(spec.key, f"cannot pull {spec.base.pull} ({pull_error}); making it offline from {spec.base.rootfs.name}")
    image_id = _import_rootfs(session, spec, files_key)
    session.record(spec.ref, image_id, _labels(session, spec, files_key))
    if current and current["Id"] != image_id:
        session.replaced.append((spec.key, current["Id"]))
    out.line(spec.key, f"imported {spec.ref} ({engine.short_id(image_id)}) from {spec.base.rootfs.name}")
    return Outcome(spec.key, BUILT, image_id=image_id, detail="imported")


def _pull(spec: ImageSpec) -> str:
    assert spec.base is not None and spec.base.pull
    pulled = _pull_ref(spec.base.pull)
    if normalize_ref(spec.base.pull) != spec.ref:
        target_repo, _, target_tag = spec.ref.rpartition(":")
        engine.tag_image(pulled, target_repo, target_tag, f"tag {spec.base.pull} as {spec.ref}")
    return pulled


def _pull_ref(ref: str) -> str:
    """Pull an image by reference; its id."""
    repository, _, tag = normalize_ref(ref).rpartition(":")
    for chunk in engine.pull(repository, tag, registries.auth_header(repository), f"pull {ref}"):
        if "error" in chunk:
            raise DockyardError(f"pull {ref}: {chunk['error']}")
    return engine.get_json(engine.query(f"/images/{repository}:{tag}/json"), f"pull {ref}")["Id"]


def _import_rootfs(session: _Session, spec: ImageSpec, key: str) -> str:
    """Run the rootfs script into a temporary tar and import it, streamed, with our labels."""
    from .artifacts import import_image

    assert spec.base is not None and spec.base.rootfs is not None
    with tempfile.TemporaryDirectory(prefix="dockyard-rootfs-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        result = subprocess.run(["sh", str(spec.base.rootfs), str(tarball)], cwd=spec.dir,
                                capture_output=True, text=True)
        if result.returncode != 0 or not tarball.is_file():
            reason = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no tarball written"]
            raise DockyardError(f"{spec.base.rootfs} failed (exit {result.returncode}): {reason[0]}")
        try:
            imported = import_image(tarball, tag=spec.ref, changes=list(spec.base.changes),
                                    labels=_labels(session, spec, key), progress=False)
        except DockyardError as e:  # name the script, not the temporary file it wrote
            raise DockyardError(f"{spec.base.rootfs} wrote an archive the engine rejects: "
                                f"{str(e).replace(str(tarball), 'its output')}") from None
    return imported.ids[0]


@contextlib.contextmanager
def _turn_to_build(session: _Session, spec: ImageSpec) -> Iterator[None]:
    """Builds of one image on one engine take turns (``turns``), held from the second
    up-to-date check (made afresh at the engine, since the one before the wait may be stale)
    until the new image is tagged."""
    with turns.turn("build", engine.endpoint(), normalize_ref(spec.ref), what=f"waiting to build {spec.ref}",
                    on_wait=lambda: session.output.line(
                        spec.key, f"waiting for another build of {spec.ref} on this engine"),
                    interrupted=session.interrupted.is_set):
        yield


def failures(outcomes: list[Outcome]) -> list[Outcome]:
    """The images that failed, or were skipped because a prerequisite failed."""
    return [o for o in outcomes if o.status in (FAILED, SKIPPED)]


def freshness(project: ProjectSpec, spec: ImageSpec) -> tuple[str, str | None]:
    """('up to date' | 'out of date' | 'missing', image id) without building anything."""
    session = _Session(project, BuildOptions(), Output())
    image = session.image(spec.ref)
    if image is None:
        return "missing", None
    key = base_key(spec) if spec.base is not None else image_key(session, spec)[0]
    return ("up to date" if _is_current(spec, image, key) else "out of date"), image["Id"]
