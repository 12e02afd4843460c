"""Remove stopped containers and dangling images: this project's only, unless told --all.

The tutorial warns that `docker ps -a` cannot tell who started what on a shared host;
dockyard can, by its labels, so its cleanup never touches other people's work.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import engine
from .labels import IMAGE, OWNER, PROJECT, image_is_ours

STOPPED = ("created", "exited", "dead")
WORKERS = engine.POOL_SIZE  # one connection each


@dataclass
class Scope:
    """Which objects a clean covers: a project (and maybe one image of it), or the whole host."""

    project: str | None
    image: str | None = None
    volumes: bool = False  # the project's named volumes too, those no other container uses

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


@dataclass
class CleanResult:
    containers: list[dict]
    images: list[dict]
    space_reclaimed: int
    dry_run: bool
    volumes: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"containers": self.containers, "images": self.images, "volumes": self.volumes,
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
        for listed in api.images(filters={"dangling": True, "label": scope.image_labels()}):
            image = engine.inspect_image(listed["Id"])
            if image is None or (scope.project and not image_is_ours(image, scope.project, engine.inspect_image)):
                continue  # gone, or someone's image built FROM ours (it inherited our labels)
            found.images.append({"id": image["Id"], "size": _own_size(image)})
    if scope.volumes and scope.project:
        from .resources import project_volumes

        going = {c["name"] for c in found.containers}
        found.volumes = [{"name": v["name"], "volume": v["volume"]} for v in project_volumes(scope.project)
                         if set(v["used_by"]) <= going]  # kept while any container not removed here uses it
    return found


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
                           found.volumes)
    containers = _remove_all(found.containers, "container")
    images = _remove_all(found.images, "image")
    space = sum(c["size"] for c in containers) + sum(i["size"] for i in images)
    return CleanResult(containers, images, space, False, _remove_volumes(found.volumes))


def _remove_volumes(volumes: list[dict]) -> list[dict]:
    """The planned volumes that could be removed; one in use again is left, as the engine says."""
    from .resources import remove_volume

    return [v for v in volumes if remove_volume(v["name"]) == "removed"]


def _remove_all(objects: list[dict], kind: str) -> list[dict]:
    """Remove the listed containers or images, WORKERS at a time as `docker rm` does;
    returns those removed. One that is gone already, or in use again, is left out."""
    import docker

    api = engine.client().api
    remove = api.remove_container if kind == "container" else api.remove_image

    def one(obj: dict) -> dict | None:
        try:
            remove(obj["id"])
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as e:
            if e.status_code == 409:  # started again, or now used by a container or child image
                return None
            raise
        return obj

    with engine.engine_errors(f"remove {kind}s"), ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return [obj for obj in pool.map(one, objects) if obj is not None]


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"
