"""Remove stopped containers and dangling images: this project's only, unless told --all.

The tutorial warns that `docker ps -a` cannot tell who started what on a shared host;
dockyard can, by its labels, so its cleanup never touches other people's work.
"""

from __future__ import annotations

import time
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
        for status in STOPPED:
            filters = {"status": status, "label": scope.container_labels()}
            for c in api.containers(all=True, filters=filters):
                found.containers.append({"id": c["Id"], "name": c["Names"][0].lstrip("/")})
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
    pruned = _prune(api.prune_containers, "remove stopped containers",
                    filters={"label": scope.container_labels()} if scope.project else None)
    removed_ids = set(pruned.get("ContainersDeleted") or [])
    containers = [c for c in before.containers if c["id"] in removed_ids]
    images = _prune(api.prune_images, "remove dangling images",
                    filters={"dangling": True, "label": scope.image_labels()} if scope.project
                    else {"dangling": True})
    deleted = {d.get("Deleted") for d in images.get("ImagesDeleted") or [] if d.get("Deleted")}
    image_rows = [i for i in before.images if i["id"] in deleted]
    space = (pruned.get("SpaceReclaimed") or 0) + (images.get("SpaceReclaimed") or 0)
    return CleanResult(containers, image_rows, space, False)


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
