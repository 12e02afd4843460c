"""Remove stopped containers and dangling images: this project's only, unless told --all.

The tutorial warns that `docker ps -a` cannot tell who started what on a shared host;
dockyard can, by its labels, so its cleanup never touches other people's work.

One kind of container of ours has no owner label: a build step's, left behind when the
engine died mid-build (the builder removes its own otherwise). It carries our project's
labels only because it inherited them from its image, as a container someone runs from our
image by hand does. What tells them apart is what the legacy builder records and the
docker CLI does not: a log driver of "none" (the builder overrides the daemon's), the image
as its full ``sha256:`` id, and no healthcheck (a ``RUN`` step) or a ``#(nop)`` command (a
metadata step).
"""

from __future__ import annotations

import contextvars
import functools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

from . import engine
from .labels import IMAGE, OWNER, PROJECT, image_is_ours, labels_of

STOPPED = ("created", "exited", "dead")
WORKERS = engine.POOL_SIZE  # one connection each
# A build step's container that exited 0, or was never started, may belong to a build still
# running (its commit under way): only older ones are leftovers. One that failed or was
# killed is never kept by a live build, which removes it at once.
LIVE_BUILD_GRACE = 600  # seconds


@dataclass
class Scope:
    """Which objects a clean covers: a project (and maybe one image of it), or the whole host."""

    project: str | None
    image: str | None = None
    volumes: bool = False  # the project's named volumes too, those no other container uses
    volume_names: tuple[str, ...] | None = None  # one image's clean: only the volumes it mounts

    def container_labels(self) -> list[str]:
        if self.project is None:
            return []
        labels = [f"{OWNER}={self.project}"]
        return labels + ([f"{IMAGE}={self.image}"] if self.image else [])

    def image_labels(self) -> list[str]:
        if self.project is None:
            return []
        labels = [f"{PROJECT}={self.project}"]
        return labels + ([f"{IMAGE}={self.image}"] if self.image else [])


@dataclass
class Plan:
    containers: list[dict] = field(default_factory=list)  # {"id", "name", "size"}
    images: list[dict] = field(default_factory=list)      # {"id", "size"}
    volumes: list[dict] = field(default_factory=list)     # {"name", "volume"}
    kept: list[dict] = field(default_factory=list)        # {"id", "service"}: images a swarm service uses


@dataclass
class CleanResult:
    containers: list[dict]
    images: list[dict]
    space_reclaimed: int
    dry_run: bool
    volumes: list[dict] = field(default_factory=list)
    kept: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"containers": self.containers, "images": self.images, "volumes": self.volumes,
                "space_reclaimed": self.space_reclaimed, "dry_run": self.dry_run, "kept": self.kept}


def plan(scope: Scope) -> Plan:
    """What a clean would remove now."""
    found = Plan()
    filters = {"status": list(STOPPED), "label": scope.container_labels()}  # statuses OR, labels AND
    with ThreadPoolExecutor(max_workers=1) as beside:
        # The engine lists the build leftovers while it lists (and sizes) ours: for 200
        # containers each listing takes it 20 to 40 ms.
        leftovers = beside.submit(contextvars.copy_context().run, _build_leftovers, scope.project) \
            if scope.project is not None and scope.image is None else None
        for c in engine.containers(filters, "list containers", size=True):
            found.containers.append({"id": c["Id"], "name": c["Names"][0].lstrip("/"),
                                     "size": c.get("SizeRw") or 0})
        if leftovers is not None:
            found.containers += leftovers.result()
    services = None
    for listed in engine.images({"dangling": True, "label": scope.image_labels()}, "list images"):
        image = engine.inspect_image(listed["Id"])
        if image is None or (scope.project and not image_is_ours(image, scope.project, engine.inspect_image)):
            continue  # gone, or someone's image built FROM ours (it inherited our labels)
        services = service_images() if services is None else services
        user = service_using(image, services)
        if user is not None:
            found.kept.append({"id": image["Id"], "service": user})
            continue
        found.images.append({"id": image["Id"], "size": _own_size(image)})
    if scope.volumes and scope.project:
        from .resources import project_volumes

        going = {c["name"] for c in found.containers}
        found.volumes = [{"name": v["name"], "volume": v["volume"]} for v in project_volumes(scope.project)
                         if set(v["used_by"]) <= going  # kept while any container not removed here uses it
                         and (scope.volume_names is None or v["name"] in scope.volume_names)]
    return found


def service_images() -> dict[str, str]:
    """The images the engine's Swarm services run, or roll back to (their previous spec), by
    reference (an id, or REPOSITORY@DIGEST), each with the name of a service that uses it.
    A service scaled to 0, or whose tasks have exited, has no container holding its image: the
    engine would let it go, and the service could not start a task again. Every service
    counts, ours or not; none on an engine that is not a swarm manager."""
    found: dict[str, str] = {}
    for service in engine.services():
        for spec in (service.get("Spec") or {}, service.get("PreviousSpec") or {}):
            image = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image")
            if image:
                found.setdefault(_by_digest(image), (service.get("Spec") or {}).get("Name") or service["ID"])
    return found


def service_using(image: dict, services: dict[str, str]) -> str | None:
    """The name of a service (from ``service_images``) that runs the inspected image, or None."""
    refs = [image["Id"], *(image.get("RepoDigests") or [])]
    return next((services[ref] for ref in refs if ref in services), None)


def _by_digest(reference: str) -> str:
    """REPOSITORY:TAG@DIGEST as REPOSITORY@DIGEST, the form an image's RepoDigests take; an
    id or any other reference as it is."""
    name, at, digest = reference.partition("@")
    if not at:
        return reference
    slash = name.rfind("/")
    colon = name.rfind(":")
    return f"{name[:colon] if colon > slash else name}@{digest}"


def _build_leftovers(project: str) -> list[dict]:
    """Stopped build-step containers with our project's (inherited) labels and no owner:
    what a build left when the engine died under it. The listing also finds every container
    of ours run from our images, and someone's run by hand from them, so it asks no sizes
    (the engine walks each container's writable layer for one): only the leftovers found
    are asked theirs."""
    filters = {"status": list(STOPPED), "label": [f"{PROJECT}={project}"]}
    found = []
    for listed in engine.containers(filters, "list build leftovers"):
        if OWNER in (listed.get("Labels") or {}):
            continue
        container = engine.inspect_container(listed["Id"])
        if container is None or not is_build_leftover(container, time.time()):
            continue
        image = engine.inspect_image(container["Image"])
        if image is None or labels_of(image).get(PROJECT) != project:
            continue  # our labels given by hand, not inherited from one of our images
        sized = engine.inspect_container(listed["Id"], size=True) or {}
        found.append({"id": listed["Id"], "name": listed["Names"][0].lstrip("/"),
                      "size": sized.get("SizeRw") or 0})
    return found


def is_build_leftover(container: dict, now: float) -> bool:
    """A stopped container of the legacy builder's, that no running build can still use."""
    config = container.get("Config") or {}
    host_config = container.get("HostConfig") or {}
    state = container.get("State") or {}
    made_by_builder = (
        (host_config.get("LogConfig") or {}).get("Type") == "none"
        and str(config.get("Image", "")).startswith("sha256:")
        and config.get("Image") == container.get("Image")
        and ((config.get("Healthcheck") or {}).get("Test") == ["NONE"]
             or any(str(word).startswith("#(nop) ") for word in config.get("Cmd") or [])))
    if not made_by_builder or OWNER in labels_of(container):
        return False
    if state.get("Status") == "dead" or (state.get("Status") == "exited" and state.get("ExitCode")):
        return True
    since = state.get("FinishedAt") if state.get("Status") == "exited" else container.get("Created")
    return now - _seconds(since) > LIVE_BUILD_GRACE


def _seconds(timestamp: str | None) -> float:
    """An engine timestamp (RFC 3339, nanoseconds, UTC) as seconds since the epoch."""
    try:
        moment = datetime.strptime(str(timestamp)[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return float("inf")  # unknown: treat it as new, i.e. keep the container
    return moment.replace(tzinfo=timezone.utc).timestamp()


def _own_size(image: dict) -> int:
    """What removing the image frees: its size less its nearest tagged ancestor's, since
    the untagged build steps between them go with it."""
    ancestor = image
    while ancestor.get("Parent"):
        ancestor = engine.inspect_image(ancestor["Parent"])
        if ancestor is None or ancestor.get("RepoTags"):
            break
    kept = ancestor.get("Size", 0) if ancestor is not None and ancestor is not image else 0
    return max(image.get("Size", 0) - kept, 0)


def clean(scope: Scope, *, dry_run: bool) -> CleanResult:
    """Remove (or, dry, list) the scope's stopped containers, then its dangling images.

    Exactly what `plan` listed is removed, several at a time; not the engine's prune
    endpoints, which hold an engine-wide lock, go one by one, and cannot tell an image
    of ours from one that merely inherited our labels.
    """
    found = plan(scope)
    if dry_run:
        return CleanResult(found.containers, found.images, sum(i["size"] for i in found.images), True,
                           found.volumes, found.kept)
    containers = _remove_all(found.containers, "container")
    images = _remove_all(found.images, "image")
    space = sum(c["size"] for c in containers) + sum(i["size"] for i in images)
    return CleanResult(containers, images, space, False, _remove_volumes(found.volumes), found.kept)


def _remove_volumes(volumes: list[dict]) -> list[dict]:
    """The planned volumes that could be removed; one in use again is left, as the engine says."""
    from .resources import remove_volume

    return [v for v in volumes if remove_volume(v["name"]) == "removed"]


def _remove_all(objects: list[dict], kind: str) -> list[dict]:
    """Remove the listed containers or images, WORKERS at a time as `docker rm` does;
    returns those removed. One that is gone already, or in use again, is left out."""
    # A container's anonymous volumes go with it (a watch's writable directories), as in `down`.
    remove = functools.partial(engine.remove_container, volumes=True) if kind == "container" \
        else engine.remove_image

    def one(obj: dict) -> dict | None:
        try:
            remove(obj["id"], f"remove {kind}s")
        except engine.Refused as e:
            if e.status in (404, 409):  # gone already; started again, or now used by a container or child image
                return None
            raise
        return obj

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        # Each removal in a copy of our context, made here: the engine chosen for this clean.
        removals = [pool.submit(contextvars.copy_context().run, one, obj) for obj in objects]
        return [obj for obj in (removal.result() for removal in removals) if obj is not None]


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"
