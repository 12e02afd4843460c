"""Remove stopped containers and dangling images: this project's only, unless told --all.

The tutorial warns that `docker ps -a` cannot tell who started what on a shared host;
dockyard can, by its labels, so its cleanup never touches other people's work.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import engine
from .errors import DockyardError
from .containers import OWNER_LABEL

STOPPED = ("created", "exited", "dead")


@dataclass
class Scope:
    """Which objects a clean covers: a project (and maybe one image of it), or the whole host."""

    project: str | None
    image: str | None = None

    def container_labels(self) -> list[str]:
        if self.project is None:
            return []
        labels = [f"{OWNER_LABEL}={self.project}"]
        return labels + ([f"dockyard.image={self.image}"] if self.image else [])

    def image_labels(self) -> list[str]:
        if self.project is None:
            return []
        labels = [f"dockyard.project={self.project}"]
        return labels + ([f"dockyard.image={self.image}"] if self.image else [])


@dataclass
class Plan:
    containers: list[dict] = field(default_factory=list)  # {"id", "name", "size"}
    images: list[dict] = field(default_factory=list)      # {"id", "size"}


@dataclass
class CleanResult:
    containers: list[dict]
    images: list[dict]
    space_reclaimed: int
    dry_run: bool

    def to_json(self) -> dict:
        return {"containers": self.containers, "images": self.images,
                "space_reclaimed": self.space_reclaimed, "dry_run": self.dry_run}


def plan(scope: Scope) -> Plan:
    """What a clean would remove now."""
    api = engine.client().api
    found = Plan()
    with engine.engine_errors("list containers"):
        filters = {"status": list(STOPPED), "label": scope.container_labels()}  # statuses OR, labels AND
        for c in api.containers(all=True, filters=filters, size=True):
            found.containers.append({"id": c["Id"], "name": c["Names"][0].lstrip("/"),
                                     "size": c.get("SizeRw") or 0})
    with engine.engine_errors("list images"):
        for image in api.images(filters={"dangling": True, "label": scope.image_labels()}):
            found.images.append({"id": image["Id"], "size": image.get("Size", 0)})
    return found


def clean(scope: Scope, *, dry_run: bool) -> CleanResult:
    """Remove (or, dry, list) the scope's stopped containers, then its dangling images.

    The engine's prune endpoints do it in one call each, with the same filters as `plan`,
    so the space reported is the engine's own count.
    """
    if dry_run:
        found = plan(scope)
        return CleanResult(found.containers, found.images, sum(i["size"] for i in found.images), True)
    api = engine.client().api
    before = plan(scope)
    containers = _remove_containers(before.containers)
    images = _prune(api.prune_images, "remove dangling images",
                    filters={"dangling": True, "label": scope.image_labels()} if scope.project
                    else {"dangling": True})
    deleted = {d.get("Deleted") for d in images.get("ImagesDeleted") or [] if d.get("Deleted")}
    image_rows = [i for i in before.images if i["id"] in deleted]
    space = sum(c.get("size", 0) for c in containers) + (images.get("SpaceReclaimed") or 0)
    return CleanResult(containers, image_rows, space, False)


def _remove_containers(containers: list[dict]) -> list[dict]:
    """Remove exactly the listed containers, several at a time as `docker rm` does.

    Not the prune endpoint: it works one container after another, holds an engine-wide
    lock, and would also take a container that stopped after we listed.
    """
    import docker

    api = engine.client().api

    def remove(container: dict) -> dict | None:
        try:
            api.remove_container(container["id"])
        except docker.errors.NotFound:
            return None  # gone already
        except docker.errors.APIError as e:
            if e.status_code == 409:  # started again since we listed it: it stays
                return None
            raise
        return container

    with engine.engine_errors("remove stopped containers"), ThreadPoolExecutor(max_workers=16) as pool:
        return [c for c in pool.map(remove, containers) if c is not None]


def _prune(call, what: str, *, filters: dict | None, wait: float = 30.0) -> dict:
    """One prune call; the engine runs one prune at a time host-wide, so wait our turn."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with engine.engine_errors(what):
                return call(filters=filters)
        except DockyardError as e:
            if "prune operation is already running" not in str(e) or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"
