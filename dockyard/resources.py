"""What a project's containers share: its network and its named volumes.

The network ``PROJECT_default`` is a user-defined bridge, so the engine's DNS answers there
for every container by its name and by its image key (an alias): the site reaches
``http://api:8081/``. It is created, labelled, the first time a container needs it, and
removed by ``down`` once nothing is attached to it.

``run.aliases`` are more names on the project network; ``run.networks`` are networks made
elsewhere that a named container joins as well: they must exist, and dockyard never creates
or removes them.

A named volume in ``run.volumes`` (``data:/data``) is the project's: the engine volume is
``PROJECT_data``, created with labels before the first container that mounts it, so two
projects that both say ``data`` never share one. A volume declared ``[volumes.NAME]
external = true`` is used by its own name and never created or removed by dockyard.
Ownership is the ``dockyard.owner`` label (``labels``); someone else's object of our name is
refused, never used or removed.
"""

from __future__ import annotations

import sys
import threading

from . import engine
from .config import ImageSpec, ProjectSpec
from .errors import DockyardError
from .labels import VOLUME, OWNER, resource_is_ours, resource_labels, resource_owner


def network_name(project: ProjectSpec) -> str:
    return f"{project.name}_default"


def network_mode(project: ProjectSpec, spec: ImageSpec) -> str:
    """The engine's network mode for the image's named container."""
    return network_name(project) if spec.run.network == "project" else spec.run.network


def named_volumes(spec: ImageSpec) -> list[str]:
    """The volume names (as containers.toml gives them) the image mounts; host paths are
    absolute once loaded, so anything else is a name."""
    return [mount.split(":", 1)[0] for mount in spec.run.volumes if not mount.startswith("/")]


def volume_name(project: ProjectSpec, name: str) -> str:
    """The engine's name of a volume containers.toml calls ``name``."""
    return name if name in project.external_volumes else f"{project.name}_{name}"


def binds(project: ProjectSpec, spec: ImageSpec) -> list[str]:
    """``run.volumes`` as the engine takes them: named volumes under their engine names."""
    mounts = []
    for mount in spec.run.volumes:
        source, _, rest = mount.partition(":")
        mounts.append(mount if mount.startswith("/") else f"{volume_name(project, source)}:{rest}")
    return mounts


def prepare(project: ProjectSpec, spec: ImageSpec, network: str | None) -> None:
    """Make what a container of ``spec`` needs before it is created: the project network
    (when ``network`` is it), the volumes it mounts, and (for a named container, which has a
    ``network``) the networks it joins, which must exist."""
    if network == network_name(project):
        ensure_network(project)
    for name in named_volumes(spec):
        ensure_volume(project, name)
    if network is not None:
        for name in extra_networks(spec, network):
            if inspect_network(name) is None:
                raise DockyardError(f"cannot run {spec.run.name}: the network '{name}' "
                                    f"(images.{spec.key}.run.networks in {project.path.name}) does not exist; "
                                    f"create it (`docker network create {name}`) or leave it out")


def extra_networks(spec: ImageSpec, network: str) -> list[str]:
    """``run.networks``, less the one the container is created on."""
    return [name for name in spec.run.networks if name != network]


def join_networks(spec: ImageSpec, container_id: str, network: str) -> None:
    """Connect a created container to ``run.networks`` (they exist: ``prepare`` checked)."""
    for name in extra_networks(spec, network):
        engine.request("POST", f"/networks/{name}/connect", f"connect {spec.run.name} to the network {name}",
                       body={"Container": container_id}, ok=(200,))


def inspect_network(name: str) -> dict | None:
    return engine.request("GET", engine.query(f"/networks/{name}"), f"inspect network {name}", ok=(200,),
                          missing=True)


_network_lock = threading.Lock()


def ensure_network(project: ProjectSpec) -> str:
    """The project network, created on first use; someone else's network of that name is refused.
    `up` starts services in parallel: within a process, one thread at a time makes it."""
    with _network_lock:
        return _ensure_network(project)


def _ensure_network(project: ProjectSpec) -> str:
    name = network_name(project)
    network = inspect_network(name)
    if network is None:
        try:
            engine.request("POST", "/networks/create", f"create network {name}", ok=(201,),
                           body={"Name": name, "Driver": "bridge", "Labels": resource_labels(project.name),
                                 "CheckDuplicate": True})
            return name
        except engine.Refused as e:
            if e.status != 409:  # another dockyard run made it a moment ago: check it
                raise
        network = inspect_network(name)
    if network is None or not resource_is_ours(network, project.name):
        owner = "nobody" if network is None else resource_owner(network)
        raise DockyardError(f"a network named '{name}' exists and was made by {owner}, not project "
                            f"'{project.name}'; dockyard leaves it alone. Remove it yourself, or rename the project")
    return name


def remove_network(project: ProjectSpec, inspected: dict | None | bool = False) -> str:
    """Remove the project network: 'removed', 'absent', or why it was kept. ``inspected``: its
    inspection of a moment ago (None: absent), which `down` makes while the containers stop;
    then the engine's refusal, not that inspection, says whether anything is still attached."""
    name = network_name(project)
    network = inspect_network(name) if inspected is False else inspected
    if network is None:
        return "absent"
    if not resource_is_ours(network, project.name):
        return f"kept: made by {resource_owner(network)}"
    attached = sorted(c.get("Name", cid[:12]) for cid, c in (network.get("Containers") or {}).items())
    if attached and inspected is False:
        return f"kept: {', '.join(attached)} still attached"
    try:
        engine.request("DELETE", engine.query(f"/networks/{network['Id']}"), f"remove network {name}")
    except engine.Refused as e:
        if e.status == 404:
            return "absent"
        if e.status in (403, 409):  # something attached meanwhile
            return f"kept: {e.explanation}"
        raise
    return "removed"


def ensure_volume(project: ProjectSpec, name: str) -> None:
    """A managed volume exists, labelled ours; an external one must exist already."""
    full = volume_name(project, name)
    volume = inspect_volume(full)
    if name in project.external_volumes:
        if volume is None:
            raise DockyardError(f"the external volume '{full}' does not exist; create it (`docker volume "
                                f"create {full}`) or drop external = true from volumes.{name} in {project.path.name}")
        return
    if volume is None:
        warn_of_unscoped_volume(project, name)
        try:
            volume = engine.request("POST", "/volumes/create", f"create volume {full}", ok=(201,),
                                    body={"Name": full, "Labels": resource_labels(project.name, name)})
        except engine.Refused as e:
            if e.status != 409:
                raise
            volume = inspect_volume(full)
    if volume is None or not resource_is_ours(volume, project.name):
        owner = "nobody" if volume is None else resource_owner(volume)
        raise DockyardError(f"a volume named '{full}' exists and was made by {owner}, not project "
                            f"'{project.name}'; dockyard leaves it alone. Declare it [volumes.{full}] external = true "
                            f"to use it as it is")


_unscoped_warned: set[tuple[str, str]] = set()
_unscoped_lock = threading.Lock()


def warn_of_unscoped_volume(project: ProjectSpec, name: str) -> None:
    """dockyard 0.1 gave a named volume the name containers.toml gives it (``data``); 0.2 made
    it the project's (``PROJECT_data``), which left a 0.1 project's data behind for a new, empty
    volume without a word. Called just before that new volume is made: when the old one is on
    the engine (unlabelled: a volume of a later dockyard project carries its owner), say so
    once, with the two ways to keep its data. Once the new volume exists, nothing is said."""
    with _unscoped_lock:  # `up` prepares its services in threads
        if (project.name, name) in _unscoped_warned:
            return
        _unscoped_warned.add((project.name, name))
    old = inspect_volume(name)
    if old is None or (old.get("Labels") or {}).get(OWNER):
        return
    full = volume_name(project, name)
    print(f"dockyard: warning: the volume '{name}' on the engine is where dockyard 0.1 kept this project's "
          f"'{name}'; since 0.2 the project's volume is '{full}', which is made empty now. To keep using the "
          f"old one, add [volumes.{name}] external = true to {project.path.name}; or copy its data across: "
          f"docker run --rm -v {name}:/from:ro -v {full}:/to busybox cp -a /from/. /to/",
          file=sys.stderr, flush=True)


def inspect_volume(name: str) -> dict | None:
    return engine.request("GET", f"/volumes/{name}", f"inspect volume {name}", ok=(200,), missing=True)


def project_volumes(project_name: str) -> list[dict]:
    """The project's managed volumes on the engine: name (engine's), volume (containers.toml's),
    and the containers (any owner) that use them."""
    listed = (engine.request("GET", engine.query("/volumes", filters={"label": f"{OWNER}={project_name}"}),
                             "list volumes") or {}).get("Volumes") or []
    users = volume_users([v["Name"] for v in listed])
    return [{"name": v["Name"], "volume": (v.get("Labels") or {}).get(VOLUME, v["Name"]),
             "used_by": users[v["Name"]]} for v in sorted(listed, key=lambda v: v["Name"])]


def volume_users(names: list[str]) -> dict[str, list[str]]:
    """The names of the containers (any owner, running or not) that mount each of these volumes."""
    users: dict[str, list[str]] = {name: [] for name in names}
    if users:
        for container in engine.request("GET", engine.query("/containers/json", all=True), "list volumes") or []:
            for mount in container.get("Mounts") or []:
                if mount.get("Type") == "volume" and mount.get("Name") in users:
                    users[mount["Name"]].append(container["Names"][0].lstrip("/"))
    return {name: sorted(found) for name, found in users.items()}


def volume_rows(project: ProjectSpec, images: list[ImageSpec] | None = None) -> list[dict]:
    """Every named volume the project's images (or ``images``) mount: name, volume, external,
    state, used_by; of all images, also ours that no image mounts any more."""
    mounted: dict[str, str] = {}  # engine name -> containers.toml's, in the images' order
    for spec in project.images.values() if images is None else images:
        for name in named_volumes(spec):
            mounted.setdefault(volume_name(project, name), name)
    if not mounted and images is not None:
        return []
    present = {row["name"]: row for row in project_volumes(project.name)}
    # An external volume is not ours: no label finds it, so it is looked at, and its users, by name.
    external = [full for full, name in mounted.items() if name in project.external_volumes]
    external_present = [full for full in external if inspect_volume(full) is not None]
    users = volume_users(external_present)
    rows: dict[str, dict] = {}
    for full, name in mounted.items():
        row = present.pop(full, None)
        if full in external:
            state, used_by = ("present", users[full]) if full in external_present else ("absent", [])
        else:
            state, used_by = ("absent", []) if row is None else ("present", row["used_by"])
        rows[full] = {"volume": name, "name": full, "external": full in external, "state": state,
                      "used_by": used_by}
    if images is None:
        for full, row in present.items():  # ours, but no image mounts it any more
            rows[full] = {"volume": row["volume"], "name": full, "external": False, "state": "present (unused)",
                          "used_by": row["used_by"]}
    return list(rows.values())


def remove_volume(name: str) -> str:
    """'removed', 'absent', or 'kept: ...' when a container (anyone's) still uses it."""
    try:
        engine.request("DELETE", engine.query(f"/volumes/{name}"), f"remove volume {name}")
    except engine.Refused as e:
        if e.status == 404:
            return "absent"
        if e.status == 409:
            return f"kept: in use ({e.explanation})"
        raise
    return "removed"
