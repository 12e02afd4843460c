"""Make for images: build what is out of date, parents first, independent images in parallel.

An image is up to date when its tag carries the build key (``dockyard.key`` label) that
its Dockerfile, context, build args and parents' image ids hash to now.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from . import engine
from .config import ImageSpec, ProjectSpec, normalize_ref
from .context import build_key, context_files, write_context_tar
from .errors import DockyardError
from .graph import build_order, from_refs

BUILT, UP_TO_DATE, FAILED, SKIPPED = "built", "up to date", "failed", "skipped"


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


class Output:
    """Line-prefixed, thread-safe output so parallel builds stay readable."""

    def __init__(self, stream: TextIO | None = None, prefix: bool = True) -> None:
        self.stream = stream or sys.stdout
        self.prefix = prefix
        self.lock = threading.Lock()
        self.width = 0

    def line(self, key: str, text: str) -> None:
        with self.lock:
            for part in text.rstrip("\n").split("\n"):
                lead = f"{key:<{self.width}} | " if self.prefix else ""
                self.stream.write(f"{lead}{part}\n")
            self.stream.flush()


@dataclass
class _Session:
    """What one `build` invocation knows: image ids seen so far, by reference."""

    project: ProjectSpec
    options: BuildOptions
    output: Output
    targets: set[str] = field(default_factory=set)
    ids: dict[str, str | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def image_id(self, ref: str) -> str | None:
        ref = normalize_ref(ref)
        with self.lock:
            if ref in self.ids:
                return self.ids[ref]
        image = _inspect(ref)
        found = image["Id"] if image else None
        with self.lock:
            self.ids[ref] = found
        return found

    def rebuild_asked(self, spec: ImageSpec) -> bool:
        o = self.options
        return spec.key in self.targets and (o.force or o.no_cache or o.pull)

    def record(self, ref: str, image_id: str) -> None:
        with self.lock:
            self.ids[normalize_ref(ref)] = image_id


def _inspect(ref: str) -> dict | None:
    import docker

    with engine.engine_errors(f"inspect image {ref}"):
        try:
            return engine.client().api.inspect_image(ref)
        except docker.errors.ImageNotFound:
            return None


def build(project: ProjectSpec, names: list[str] | None, options: BuildOptions,
          output: Output | None = None) -> list[Outcome]:
    """Build the named images (default: all) and their prerequisites; returns one Outcome each."""
    keys = build_order(project.images, names)
    output = output or Output()
    output.width = max(len(k) for k in keys)
    # --force, --no-cache and --pull apply to the images asked for, not to their prerequisites.
    session = _Session(project, options, output, targets=set(names or keys))
    outcomes: dict[str, Outcome] = {}
    pending = list(keys)
    running: dict[Future, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        while pending or running:
            for key in list(pending):
                parents = project.images[key].parents
                failed = [p for p in parents if p in outcomes and outcomes[p].status in (FAILED, SKIPPED)]
                if failed:
                    pending.remove(key)
                    outcomes[key] = Outcome(key, SKIPPED, detail=f"{failed[0]} failed")
                    output.line(key, f"skipped: {failed[0]} failed")
                elif all(p in outcomes for p in parents) and len(running) < max(1, options.jobs):
                    pending.remove(key)
                    running[pool.submit(_build_one, session, project.images[key])] = key
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                key = running.pop(future)
                outcomes[key] = future.result()
    return [outcomes[k] for k in keys]


def _build_one(session: _Session, spec: ImageSpec) -> Outcome:
    started = time.monotonic()
    try:
        if spec.base is not None:
            outcome = _ensure_base(session, spec)
        else:
            outcome = _build_dockerfile(session, spec)
    except (DockyardError, OSError) as e:
        # OSError: the context could not be read, or changed while it was being sent.
        detail = str(e) if isinstance(e, DockyardError) else f"build context {spec.dir}: {e}"
        session.output.line(spec.key, f"error: {detail}")
        outcome = Outcome(spec.key, FAILED, detail=detail)
    outcome.seconds = time.monotonic() - started
    return outcome


def image_key(session: _Session, spec: ImageSpec) -> tuple[str, list]:
    """The build key the image would carry if it were built now, and the context it hashed."""
    files = context_files(spec.dir, spec.dockerfile)
    parent_ids = [session.image_id(ref) or normalize_ref(ref) for ref in from_refs(spec.dir / spec.dockerfile)]
    key = build_key(spec.dir, files, dockerfile=spec.dockerfile, build_args=dict(spec.build_args),
                    parent_ids=parent_ids)
    return key, files


def base_key(spec: ImageSpec) -> str:
    """An imported base is as current as its directory (the rootfs script) and its changes."""
    assert spec.base is not None
    return build_key(spec.dir, context_files(spec.dir, "Dockerfile"), dockerfile="(base)",
                     build_args={"changes": "\n".join(spec.base.changes)}, parent_ids=[])


def _up_to_date(session: _Session, spec: ImageSpec, key: str) -> str | None:
    """The current image's id when its tag already carries this key."""
    image = _inspect(spec.ref)
    labels = (image or {}).get("Config", {}).get("Labels") or {}
    if image and labels.get("dockyard.key") == key:
        return image["Id"]
    return None


def _labels(session: _Session, spec: ImageSpec, key: str) -> dict[str, str]:
    return {**dict(spec.labels), "dockyard.project": session.project.name,
            "dockyard.image": spec.key, "dockyard.key": key}


def _build_dockerfile(session: _Session, spec: ImageSpec) -> Outcome:
    out = session.output
    key, files = image_key(session, spec)
    current = _up_to_date(session, spec, key)
    if current and not session.rebuild_asked(spec):
        session.record(spec.ref, current)
        out.line(spec.key, f"{spec.key} is up to date ({spec.ref})")
        return Outcome(spec.key, UP_TO_DATE, image_id=current)
    previous = _inspect(spec.ref)
    out.line(spec.key, f"building {spec.ref} from {spec.dir}")
    with tempfile.TemporaryFile() as context:
        write_context_tar(spec.dir, files, context)
        context.seek(0)
        image_id = _stream_build(session, spec, key, context)
    session.record(spec.ref, image_id)
    if previous and previous["Id"] != image_id:
        _remove_replaced(session, spec, previous)
    out.line(spec.key, f"built {spec.ref} ({image_id[7:19]})")
    return Outcome(spec.key, BUILT, image_id=image_id)


def _stream_build(session: _Session, spec: ImageSpec, key: str, context) -> str:
    options, out = session.options, session.output
    api = engine.client().api
    image_id = None
    last_lines: list[str] = []
    with engine.engine_errors(f"build {spec.ref}"):
        stream = api.build(
            fileobj=context, custom_context=True, dockerfile=spec.dockerfile, tag=spec.ref,
            buildargs=dict(spec.build_args), labels=_labels(session, spec, key),
            nocache=options.no_cache and spec.key in session.targets,
            pull=options.pull and spec.key in session.targets, rm=True, forcerm=True, decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise DockyardError(f"build of {spec.ref} ({spec.dir / spec.dockerfile}) failed: {detail.strip()}")
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
            text = chunk.get("stream") or chunk.get("status")
            if text and text.strip():
                last_lines = (last_lines + [text.rstrip()])[-10:]
                if not options.quiet:
                    out.line(spec.key, text.rstrip())
    if image_id is None:  # older engines say it only in the stream
        image = _inspect(spec.ref)
        if not image:
            raise DockyardError(f"build of {spec.ref} produced no image:\n" + "\n".join(last_lines))
        image_id = image["Id"]
    return image_id


def _remove_replaced(session: _Session, spec: ImageSpec, previous: dict) -> None:
    """Remove the image this build replaced, as build-httpd.sh's `docker rmi` did, but only
    after the new one exists, only if it was ours, and only when nothing else uses it."""
    import docker

    labels = previous.get("Config", {}).get("Labels") or {}
    if labels.get("dockyard.project") != session.project.name:
        return
    try:
        engine.client().api.remove_image(previous["Id"], noprune=False)
    except docker.errors.APIError:
        return  # still tagged elsewhere, or a container or child image uses it: keep it
    session.output.line(spec.key, f"removed the replaced image {previous['Id'][7:19]}")


def _ensure_base(session: _Session, spec: ImageSpec) -> Outcome:
    """A base image: pulled where a registry answers, else imported from the rootfs script."""
    assert spec.base is not None
    out = session.output
    files_key = base_key(spec)
    current = _inspect(spec.ref)
    if current and not session.rebuild_asked(spec):
        labels = current.get("Config", {}).get("Labels") or {}
        # A pulled base is current until asked to pull again; an imported one until its script changes.
        if labels.get("dockyard.key") in (None, files_key):
            session.record(spec.ref, current["Id"])
            out.line(spec.key, f"{spec.key} is up to date ({spec.ref})")
            return Outcome(spec.key, UP_TO_DATE, image_id=current["Id"])
    pull_error = None
    if spec.base.pull:
        try:
            image_id = _pull(spec)
            session.record(spec.ref, image_id)
            out.line(spec.key, f"pulled {spec.base.pull} as {spec.ref} ({image_id[7:19]})")
            return Outcome(spec.key, BUILT, image_id=image_id, detail="pulled")
        except DockyardError as e:
            pull_error = str(e)
            if spec.base.rootfs is None:
                raise
    assert spec.base.rootfs is not None
    if pull_error:
        out.line(spec.key, f"cannot pull {spec.base.pull} ({pull_error}); making it offline from {spec.base.rootfs.name}")
    image_id = _import_rootfs(session, spec, files_key)
    session.record(spec.ref, image_id)
    if current and current["Id"] != image_id:
        _remove_replaced(session, spec, current)
    out.line(spec.key, f"imported {spec.ref} ({image_id[7:19]}) from {spec.base.rootfs.name}")
    return Outcome(spec.key, BUILT, image_id=image_id, detail="imported")


def _pull(spec: ImageSpec) -> str:
    assert spec.base is not None and spec.base.pull
    api = engine.client().api
    repository, _, tag = normalize_ref(spec.base.pull).rpartition(":")
    with engine.engine_errors(f"pull {spec.base.pull}"):
        for chunk in api.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                raise DockyardError(chunk["error"])
        pulled = api.inspect_image(f"{repository}:{tag}")
        if normalize_ref(spec.base.pull) != spec.ref:
            target_repo, _, target_tag = spec.ref.rpartition(":")
            api.tag(pulled["Id"], target_repo, target_tag)
    return pulled["Id"]


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
        imported = import_image(engine.client(), tarball, tag=spec.ref, changes=list(spec.base.changes),
                                labels=_labels(session, spec, key), progress=False)
    return imported.ids[0]


def failures(outcomes: list[Outcome]) -> list[Outcome]:
    """The images that failed, or were skipped because a prerequisite failed."""
    return [o for o in outcomes if o.status in (FAILED, SKIPPED)]


def summary(outcomes: list[Outcome]) -> str:
    width = max(len(o.key) for o in outcomes)
    lines = [f"  {o.key:<{width}}  {o.status:<10}  {o.seconds:6.1f}s  {o.detail}".rstrip() for o in outcomes]
    counts = {s: sum(o.status == s for o in outcomes) for s in (BUILT, UP_TO_DATE, FAILED, SKIPPED)}
    head = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return "\n".join([f"build summary: {head}"] + lines)


def freshness(project: ProjectSpec, spec: ImageSpec) -> tuple[str, str | None]:
    """('up to date' | 'out of date' | 'missing', image id) without building anything."""
    session = _Session(project, BuildOptions(), Output())
    image = _inspect(spec.ref)
    if image is None:
        return "missing", None
    labels = image.get("Config", {}).get("Labels") or {}
    if spec.base is not None:
        current = labels.get("dockyard.key") in (None, base_key(spec))
    else:
        current = labels.get("dockyard.key") == image_key(session, spec)[0]
    return ("up to date" if current else "out of date"), image["Id"]
