"""Swarm services of a project's images: deploy, scale, undeploy, and what their tasks are doing.

A service is made from the same run settings `run` uses (environment, command, user,
workdir, volumes, restart, init, capabilities, read-only root, limits, logs) and the
image's ``[deploy]`` table (replicas, publish mode, rolling update, placement, registry).
It is named like the image's container and carries the project's ``dockyard.owner``
label, its image key and the hash of its settings (``dockyard.settings``). containers.toml is
the desired state: a `deploy` whose image or settings changed rolls the service over with its
update config and waits until every task answers; one whose replica count differs from the
service's (``[deploy] replicas``, or ``--replicas`` for that deploy) scales it; one that
changes nothing says "unchanged".

The image is pinned by its id (one node: the engine has it) or by its registry digest
(several nodes: each pulls it), so a rebuild is a change even under the same tag.

Services of one project share an attachable overlay network, ``PROJECT_swarm``, where each
answers by its image key. Their endpoints use DNS round-robin whenever Docker allows it
(any service without ingress-published ports): it needs no IPVS in the kernel, which the
virtual IPs and the ingress routing mesh do.
"""

from __future__ import annotations

import hashlib
import json
import time
from urllib.parse import urlsplit

from . import containers, engine, resources
from .config import ImageSpec, PortMapping, ProjectSpec, size_bytes, swarm_ports_warning
from .engine import ports as engine_ports
from .errors import DockyardError
from .labels import IMAGE, OWNER, SETTINGS, resource_is_ours, resource_labels, resource_owner
from .registry import auth_header

SERVICE_LABEL = "com.docker.swarm.service.id"  # the engine's label on a task's container
CAPABILITIES_API = (1, 41)  # ContainerSpec's CapabilityAdd/CapabilityDrop
DEFAULT_TIMEOUT = 60.0
POLL_LIMIT = 0.1  # seconds: the longest wait_ready waits between two looks at the tasks
# How `restart` reads as a swarm restart condition. "no" (run's default) is Docker's service
# default "any": under "none" the engine never refills a slot that a scale-down emptied.
RESTART_CONDITIONS = {"no": "any", "always": "any", "unless-stopped": "any", "on-failure": "on-failure"}
# The engine's UpdateStatus.State, as a message says it.
UPDATE_STATES = {"updating": "under way", "paused": "paused", "completed": "done",
                 "rollback_started": "being rolled back", "rollback_paused": "paused while being rolled back",
                 "rollback_completed": "rolled back"}


def service_name(spec: ImageSpec) -> str:
    return spec.run.name


def network_name(project: ProjectSpec) -> str:
    return f"{project.name}_swarm"


# -- the engine: a manager, new enough, and how many nodes -----------------------------


def manager() -> dict:
    """The engine's `docker info` Swarm section; one line when it is not a manager."""
    swarm = engine.info("ask the engine about its swarm").get("Swarm") or {}
    if swarm.get("LocalNodeState") == "active" and not swarm.get("ControlAvailable"):
        # A worker: `swarm init` would fail there, as the node is in a swarm already.
        managers = ", ".join(sorted(m["Addr"] for m in swarm.get("RemoteManagers") or [] if m.get("Addr"))) \
            or "none known"
        raise DockyardError(f"the Docker engine at {engine.where()} is a worker in a swarm, not a manager, and only "
                            f"a manager deploys, scales and removes services: point dockyard at the engine of a "
                            f"manager (DOCKER_HOST, DOCKYARD_ENGINE or the engine setting; the swarm's managers: "
                            f"{managers}, their swarm addresses), or promote this node from a manager with "
                            f"`docker node promote {swarm.get('NodeID') or 'NODE'}`")
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        raise DockyardError(f"the Docker engine at {engine.where()} is not a swarm manager; run `docker swarm init` "
                            "there (or join it to a swarm as a manager), or choose a manager engine")
    return swarm


def check_api(spec: ImageSpec) -> None:
    version = engine.api_version()
    if (spec.run.cap_add or spec.run.cap_drop) and version < CAPABILITIES_API:
        raise DockyardError(f"the Docker engine at {engine.where()} speaks API {'.'.join(map(str, version))}; swarm "
                            f"services take cap_add/cap_drop from API 1.41 (Docker 20.10) on: upgrade the engine, or "
                            f"set images.{spec.key}.run.cap_drop = [] and cap_add = [] to deploy with Docker's defaults")
    if spec.run.privileged:
        raise DockyardError(f"images.{spec.key}.run.privileged: a swarm service cannot be privileged; "
                            f"drop it, or run the image with `inv {spec.key}.run`")


# -- what a service is made of --------------------------------------------------------


def _tmpfs_mount(spec: ImageSpec, index: int, value: str) -> dict:
    """A run.tmpfs entry, ``PATH[:OPTIONS]``, as a service's mount: a swarm's tmpfs takes a size
    in bytes and a mode, nothing else (its TmpfsOptions)."""
    path, _, options = value.partition(":")
    settings: dict = {}
    for option in options.split(",") if options else ():
        name, _, setting = option.partition("=")
        if name == "size" and not setting.endswith("%"):
            settings["SizeBytes"] = size_bytes(setting)
        elif name == "mode":
            settings["Mode"] = int(setting, 8)
        else:
            raise DockyardError(f"images.{spec.key}.run.tmpfs[{index}]: '{option}' cannot be given to a swarm "
                                "service's tmpfs, which takes only size=N[k|m|g] and mode=OCTAL")
    mount = {"Target": path, "Source": None, "Type": "tmpfs", "ReadOnly": False}
    settings = {k: v for k, v in settings.items() if v}  # 0: the engine's default (docker-py left it out)
    if settings:
        mount["TmpfsOptions"] = settings
    return mount


def service_request(project: ProjectSpec, spec: ImageSpec, image: str, replicas: int) -> dict:
    """The parts of a service's spec as `engine.create_service` (and `update_service`) take
    them, in the engine's format, with the hash of everything but the replica count in the
    dockyard.settings label: `deploy` compares the count with the service's own (which
    `scale` changes), and scales it without a rollover."""
    run, deploy = spec.run, spec.deploy
    mounts = []
    for mount in resources.binds(project, spec):
        source, target, mode = (mount.split(":") + ["rw"])[:3]
        kind = "bind" if source.startswith("/") else "volume"
        mounts.append({"Target": target, "Source": source, "Type": kind, "ReadOnly": mode == "ro"})
    mounts += [_tmpfs_mount(spec, i, value) for i, value in enumerate(run.tmpfs)]
    command = list(run.command) if isinstance(run.command, tuple) else run.command
    container = {"Image": image, "Command": None, "Args": command, "Env": [f"{k}={v}" for k, v in run.environment],
                 "Labels": {IMAGE: spec.key}}
    optional = {"User": run.user, "Dir": run.workdir, "Mounts": mounts or None, "ReadOnly": run.read_only or None,
                "Init": run.init or None, "CapabilityAdd": [_capability(c) for c in run.granted_capabilities] or None,
                "CapabilityDrop": [_capability(c) for c in run.cap_drop] or None}
    container.update((k, v) for k, v in optional.items() if v is not None)
    limits = {k: v for k, v in (("NanoCPUs", int(run.cpus * 1e9) if run.cpus else None),
                                ("MemoryBytes", size_bytes(run.memory) if run.memory else None)) if v is not None}
    if run.pids and run.pids > 0:  # -1: no limit, a service's default
        limits["Pids"] = run.pids
    policy, _, count = run.restart.partition(":")
    template: dict = {"ContainerSpec": container,
                      "RestartPolicy": {"Condition": RESTART_CONDITIONS[policy], "Delay": 0,
                                        "MaxAttempts": int(count or 0), "Window": 0}}
    if limits:
        template["Resources"] = {"Limits": limits}
    if deploy.placement:
        template["Placement"] = {"Constraints": list(deploy.placement)}
    if engine.default_log_driver() in containers.ROTATING_LOG_DRIVERS:
        template["LogDriver"] = {"Name": engine.default_log_driver(),
                                 "Options": {"max-size": run.log_max_size, "max-file": str(run.log_max_files)}}
    if run.network == "project":
        template["Networks"] = [{"Target": network_name(project), "Aliases": [spec.key], "DriverOpts": None}]
    ports = engine_ports.endpoint_ports(run.ports, deploy.publish)
    # DNS round-robin needs no IPVS; Docker refuses it only beside ingress-published ports.
    endpoint_spec = {"Ports": ports} if ports else {}
    endpoint_spec["Mode"] = "vip" if ports and deploy.publish == "ingress" else "dnsrr"
    update = deploy.update
    rolling = {"Parallelism": update.parallelism, "Delay": int(update.delay * 1e9),
               "Monitor": int(update.monitor * 1e9), "Order": update.order}
    request = dict(
        task_template=template, name=service_name(spec), endpoint_spec=endpoint_spec,
        update_config={**rolling, "FailureAction": update.failure_action},
        rollback_config={**rolling, "FailureAction": "pause"},
    )
    # The same words and values as when docker-py's types made them: a service deployed by
    # an earlier dockyard is not taken for changed.
    settings = json.dumps(request, sort_keys=True, default=str).encode()
    request["labels"] = {OWNER: project.name, IMAGE: spec.key, SETTINGS: hashlib.sha256(settings).hexdigest()[:32]}
    request["mode"] = Replicated(replicas)
    return request


class Replicated(dict):
    """A replicated service's Mode, as the engine takes it: {"Replicated": {"Replicas": N}}."""

    def __init__(self, replicas: int) -> None:
        super().__init__(Replicated={"Replicas": replicas})

    @property
    def replicas(self) -> int:
        return self["Replicated"]["Replicas"]


def _capability(name: str) -> str:
    return name if name == "ALL" else f"CAP_{name}"


# -- the image the nodes run ----------------------------------------------------------


def image_reference(spec: ImageSpec, nodes: int, registry: str | None, pushed: dict | None) -> str:
    """The image pinned so that a rebuild is a change: its id on one node; on several, its
    digest in the registry (after `--push`, or one the image already carries)."""
    local = engine.inspect_image(spec.ref)
    if local is None:
        raise DockyardError(f"image {spec.ref} does not exist; build it with `inv {spec.key}.build`")
    if pushed is not None and pushed.get("digest"):
        return f"{pushed['remote'].rpartition(':')[0]}@{pushed['digest']}"
    if nodes <= 1:
        return local["Id"]
    if registry:
        from .registry import remote_name

        repository, _ = remote_name(spec, registry)
        for digest in local.get("RepoDigests") or []:
            if digest.startswith(f"{repository}@"):
                return digest
    where = f"the registry {registry}" if registry else "a registry"
    raise DockyardError(f"the swarm has {nodes} nodes and each must pull {spec.ref} from a registry, but this build "
                        f"of it is not in {where}; deploy with --push (and --registry HOST:PORT or "
                        f"images.{spec.key}.deploy.registry), or push it first with `inv {spec.key}.push`")


# -- services of ours -----------------------------------------------------------------


def find(project: ProjectSpec, spec: ImageSpec) -> dict | None:
    """Our service of the image, or None; someone else's of that name is refused."""
    name = service_name(spec)
    service = engine.inspect_service(name, f"inspect service {name}", missing=True)
    if service is None:
        return None
    labels = service["Spec"].get("Labels") or {}
    if labels.get(OWNER) != project.name:
        owner = f"dockyard project '{labels[OWNER]}'" if labels.get(OWNER) else "something other than dockyard"
        raise DockyardError(f"a service named '{name}' exists and was made by {owner}, not project "
                            f"'{project.name}'; dockyard leaves it alone. Remove it yourself, or set "
                            f"images.{spec.key}.run.name in {project.path.name}")
    return service


def ours(project: ProjectSpec) -> list[dict]:
    """Every service of the project (any image), or none on an engine that is no manager."""
    return engine.services({"label": f"{OWNER}={project.name}"})


def ensure_network(project: ProjectSpec) -> str:
    """The project's overlay network: attachable, labelled; someone else's is refused."""
    name = network_name(project)
    network = resources.inspect_network(name)
    if network is None:
        try:
            engine.create_network({"Name": name, "Driver": "overlay", "Attachable": True,
                                   "Labels": resource_labels(project.name), "CheckDuplicate": True},
                                  f"create network {name}")
            return name
        except engine.Refused as e:
            if e.status != 409:
                raise
        network = resources.inspect_network(name)
    if network is None or not resource_is_ours(network, project.name):
        owner = "nobody" if network is None else resource_owner(network)
        raise DockyardError(f"a network named '{name}' exists and was made by {owner}, not project "
                            f"'{project.name}'; dockyard leaves it alone. Remove it yourself, or rename the project")
    return name


def deploy(project: ProjectSpec, spec: ImageSpec, image: str, *, replicas: int | None,
           timeout: float | None) -> dict:
    """Create the service, or roll it over to a changed image or settings, or scale it; then
    wait until it converges and every task answers. The result: image, service, id, action
    ('created', 'updated', 'scaled', 'unchanged'), reason, replicas, tasks, and warning (its
    ports are published on every interface of every node) or None."""
    check_api(spec)
    if spec.run.network == "project":
        ensure_network(project)
    for volume in resources.named_volumes(spec):
        resources.ensure_volume(project, volume)
    current = find(project, spec)
    count = replicas if replicas is not None else spec.deploy.replicas
    request = service_request(project, spec, image, count)
    outcome = {"image": spec.key, "service": service_name(spec), "id": None, "action": "created", "reason": None,
               "replicas": count, "warning": swarm_ports_warning(spec)}
    if current is None:
        outcome["id"] = engine.create_service(service_spec(request), _auth(image), f"create service {service_name(spec)}")["ID"]
    else:
        outcome["id"] = current["ID"]
        image_changed = current["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] != image
        settings_changed = (current["Spec"].get("Labels") or {}).get(SETTINGS) != request["labels"][SETTINGS]
        if image_changed or settings_changed:
            outcome.update(action="updated", reason="image changed" if image_changed else "settings changed")
            _update(spec, current, request)
        elif count != _replicas(current):
            outcome.update(action="scaled", reason=f"{_replicas(current)} -> {count} replica{'' if count == 1 else 's'}")
            _update(spec, current, request)
        else:
            outcome["action"] = "unchanged"
    try:
        outcome["tasks"] = wait_ready(spec, outcome["id"], count, timeout, rolling=outcome["action"] == "updated",
                                      before=(current or {}).get("UpdateStatus"))
    except DockyardError as e:
        raise DockyardError(f"{e.text}; {_left(spec, outcome['id'])}", code=e.code) from None
    return outcome


def _left(spec: ImageSpec, service_id: str) -> str:
    """What a deploy that failed while waiting leaves: the service, what it runs, and how to remove it."""
    name = service_name(spec)
    remove = f"`inv {spec.key}.undeploy` removes it"
    try:
        service = engine.inspect_service(service_id, f"inspect service {name}")
        rows = tasks(service_id, service=service)
    except DockyardError:  # the engine went away too: what failed first is what to read
        return f"the service {name} may be left deployed; {remove}"
    update = (service.get("UpdateStatus") or {}).get("State")
    replicas = _replicas(service)
    state = f"{sum(r['state'] == 'running' for r in rows)}/{replicas} task{'' if replicas == 1 else 's'} running" \
        + (f", its update {UPDATE_STATES.get(update, update)}" if update else "")
    return f"the service {name} is left deployed ({state}); {remove}"


def scale(project: ProjectSpec, spec: ImageSpec, replicas: int, timeout: float | None) -> dict:
    """Run ``replicas`` tasks of our deployed service, and wait until they answer."""
    current = find(project, spec)
    if current is None:
        raise DockyardError(f"no service {service_name(spec)} of project {project.name} is deployed; "
                            f"deploy it with `inv {spec.key}.deploy`")
    before = _replicas(current)
    if replicas != before:
        # The current spec as it is, but the count: filling in defaults (docker-py's
        # fetch_current_spec did) the engine takes for a change, and rolls every task over.
        kept = ("Name", "Labels", "TaskTemplate", "UpdateConfig", "RollbackConfig", "EndpointSpec")
        now = {key: current["Spec"][key] for key in kept if current["Spec"].get(key) is not None}
        engine.update_service(current["ID"], current["Version"]["Index"], {**now, "Mode": Replicated(replicas)},
                              _auth(current["Spec"]),
                              f"scale service {service_name(spec)}")
    return {"image": spec.key, "service": service_name(spec), "id": current["ID"], "replicas": replicas,
            "before": before, "tasks": wait_ready(spec, current["ID"], replicas, timeout)}


def _replicas(service: dict) -> int:
    return int(((service["Spec"].get("Mode") or {}).get("Replicated") or {}).get("Replicas", 1))


def _update(spec: ImageSpec, current: dict, request: dict) -> None:
    engine.update_service(current["ID"], current["Version"]["Index"], service_spec(request),
                          _auth(request["task_template"]["ContainerSpec"]["Image"]),
                          f"update service {service_name(spec)}")


def service_spec(request: dict) -> dict:
    """A ``service_request`` as the engine's ServiceSpec (the body of a create or update)."""
    names = {"task_template": "TaskTemplate", "name": "Name", "endpoint_spec": "EndpointSpec", "labels": "Labels",
             "update_config": "UpdateConfig", "rollback_config": "RollbackConfig", "mode": "Mode"}
    return {names[key]: value for key, value in request.items() if value is not None}


def _auth(image: str | dict) -> str:
    """X-Registry-Auth for the registry the service's image (or its spec's) comes from: the
    nodes pull it with these credentials."""
    if isinstance(image, dict):
        image = ((image.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image") or ""
    return auth_header(image.partition("@")[0])


def undeploy(project: ProjectSpec, specs: list[ImageSpec] | None, *, timeout: float = 60) -> dict:
    """Remove our services (of ``specs``, or every one of the project), wait until their task
    containers are gone, then the overlay network once nothing of ours uses it."""
    manager()
    if specs is None:
        found = ours(project)
    else:
        found = [service for service in (find(project, spec) for spec in specs) if service is not None]
    removed = []
    for service in found:
        name = service["Spec"]["Name"]
        engine.request("DELETE", engine.query(f"/services/{service['ID']}"), f"remove service {name}",
                       ok=(200,), missing=True)
        removed.append((name, service["ID"]))
    deadline = time.monotonic() + timeout
    for name, service_id in removed:
        with engine.doing(f"waiting for the tasks of {name} to stop"):
            while _task_containers(service_id) and time.monotonic() < deadline:
                time.sleep(0.2)
    return {"services": sorted(name for name, _ in removed), "network": _remove_network(project, deadline)}


def _task_containers(service_id: str) -> list[dict]:
    return engine.containers({"label": f"{SERVICE_LABEL}={service_id}"}, "list the tasks' containers")


def _remove_network(project: ProjectSpec, deadline: float) -> str:
    """'removed', 'absent', or why it was kept (a service of ours, someone's container)."""
    name = network_name(project)
    network = resources.inspect_network(name)
    if network is None:
        return "absent"
    if not resource_is_ours(network, project.name):
        return f"kept: made by {resource_owner(network)}"
    users = [s["Spec"]["Name"] for s in ours(project)]
    if users:
        return f"kept: {', '.join(sorted(users))} still deployed"
    while True:  # the engine frees a removed task's endpoint a moment after its container
        try:
            engine.request("DELETE", engine.query(f"/networks/{network['Id']}"), f"remove network {name}", ok=(204, 200))
            return "removed"
        except engine.Refused as e:
            if e.status == 404:
                return "absent"
            if e.status not in (403, 409) or time.monotonic() > deadline:
                if e.status in (403, 409):
                    return f"kept: {e.explanation}"
                raise
        time.sleep(0.3)


# -- tasks: where they run, and whether they answer --------------------------------------


def tasks(service_id: str, *, running_only: bool = True, service: dict | None = None,
          nodes: dict[str, dict] | None = None) -> list[dict]:
    """The service's tasks as rows: task (NAME.SLOT), node, state, desired, error, image,
    ports and current: whether the task was made from the service's spec as it is now. A port
    is bound on every interface of its node (host_ip 0.0.0.0: a swarm has no address setting;
    an ingress port is, on every node), and reached at node_address, the node's own address.
    ``service`` (as just inspected) and ``nodes`` (by id, filled in here) spare a poll those
    questions."""
    nodes = {} if nodes is None else nodes
    what = "list the service's tasks"
    service = service or engine.inspect_service(service_id, what)
    filters = {"service": service_id} | ({"desired-state": "running"} if running_only else {})
    found = engine.swarm_tasks(filters, what)
    if any(task.get("NodeID") and task["NodeID"] not in nodes for task in found):
        nodes.update((n["ID"], n) for n in engine.request("GET", "/nodes", what, ok=(200,)) or [])
    name, template = service["Spec"]["Name"], service["Spec"]["TaskTemplate"]
    endpoint = engine_ports.published_of((service.get("Endpoint") or {}).get("Ports"))
    ingress = [p for p in endpoint if p.mode == "ingress"]
    rows = []
    for task in sorted(found, key=lambda t: (t.get("Slot") or 0, t["CreatedAt"])):
        status = task.get("Status") or {}
        node = nodes.get(task.get("NodeID") or "") or {}
        address = (node.get("Status") or {}).get("Addr") or ""
        address = "127.0.0.1" if address in ("", "0.0.0.0") else address
        # A host-mode port may be listed twice: its IPv4 binding first, then its IPv6 one, which
        # the engine may give another port. The first is the one 127.0.0.1 reaches.
        published: dict[tuple[int, str], int] = {}
        for p in engine_ports.published_of((status.get("PortStatus") or {}).get("Ports")) + ingress:
            if p.host_port:
                published.setdefault((p.container_port, p.protocol), p.host_port)
        rows.append({"task": f"{name}.{task.get('Slot', '')}", "id": task["ID"],
                     "node": (node.get("Description") or {}).get("Hostname") or task.get("NodeID") or "",
                     "state": status.get("State", ""), "desired": task.get("DesiredState", ""),
                     "error": status.get("Err") or None,
                     "image": task["Spec"]["ContainerSpec"]["Image"],
                     # made from the service's spec as it is now, not one an update replaces
                     "current": task["Spec"].get("ContainerSpec") == template.get("ContainerSpec"),
                     "ports": [{"host_ip": "0.0.0.0", "host_port": port, "container_port": target, "protocol": proto,
                                "node_address": address}
                               for (target, proto), port in sorted(published.items())]})
    return rows


def wait_ready(spec: ImageSpec, service_id: str, replicas: int, timeout: float | None, *,
               rolling: bool = False, before: dict | None = None) -> list[dict]:
    """Wait until the service's update (if any) is done and ``replicas`` tasks run and answer
    the readiness check on their published ports (``before``: the update status the service
    had before this update, which says nothing about it). On timeout: what the tasks are doing, and
    what to change when nothing answers on an ingress port."""
    ready = spec.run.ready
    seconds = timeout if timeout is not None else max(ready.timeout if ready else 0, DEFAULT_TIMEOUT)
    update = spec.deploy.update
    batches = -(-replicas // update.parallelism) if update.parallelism else 1
    # A rolling update watches each batch before the next: that time is the update's, not the check's.
    deadline = time.monotonic() + seconds + (batches * (update.monitor + update.delay) if rolling else 0)
    name = service_name(spec)
    answered: set[str] = set()
    nodes: dict[str, dict] = {}
    pause, seen = 0.01, None
    while True:
        with engine.doing(f"waiting for the tasks of {name} to run and answer"):
            service = engine.inspect_service(service_id, f"inspect service {name}")
            rows = tasks(service_id, service=service, nodes=nodes)
        update_state = (service.get("UpdateStatus") or {}).get("State")
        # A state left by an earlier deploy (a rollback) is no failure of a scale or of "unchanged".
        if rolling and update_state in ("rollback_completed", "paused", "rollback_paused") \
                and service.get("UpdateStatus") != before:
            raise DockyardError(_update_failed(name, service, update_state))
        # Right after an update request the engine has no update state yet and the old tasks
        # still run: only tasks of the new spec count.
        running = [r for r in rows if r["state"] == "running" and r["current"]]
        for row in running:
            if row["id"] not in answered and _answers(spec, row):
                answered.add(row["id"])
        settled = update_state in (None, "completed", "rollback_completed") and len(rows) == replicas
        if settled and len(running) == replicas and all(r["id"] in answered for r in running):
            return rows
        if time.monotonic() > deadline:
            raise DockyardError(_not_ready(spec, rows, running, answered, replicas, seconds))
        # Look again soon, then less often; soon again after any task moved on, as the next
        # step (running, then answering) tends to follow it closely. A poll is two small
        # requests (a few ms of the engine's time); with up to 0.2 s between polls, a deploy
        # saw its tasks running 0.1 s late on average.
        states = [(r["id"], r["state"]) for r in rows]
        pause = 0.01 if states != seen else min(pause * 2, POLL_LIMIT)
        seen = states
        time.sleep(pause)


def _update_failed(name: str, service: dict, state: str) -> str:
    """One line: how the update ended, and why its newest failed task failed."""
    how = {"rollback_completed": "was rolled back", "paused": "is paused",
           "rollback_paused": "was being rolled back and is paused"}[state]
    found = engine.swarm_tasks({"service": service["ID"]}, "list the service's tasks")
    errors = [t["Status"]["Err"] for t in sorted(found, key=lambda t: t["CreatedAt"]) if t["Status"].get("Err")]
    why = errors[-1] if errors else (service.get("UpdateStatus") or {}).get("Message") or "no task said why"
    return f"the update of {name} failed and {how} ({why}); see `docker service ps {name} --no-trunc`"


def _answers(spec: ImageSpec, row: dict) -> bool:
    ready = spec.run.ready
    if ready is None or not row["ports"]:
        return True
    mappings = [PortMapping(p["node_address"], p["host_port"], p["container_port"], p["protocol"])
                for p in row["ports"]]
    if ready.port is not None:
        return containers._answers(None, ready.port, mappings) is True
    return containers._answers(task_url(spec, mappings), None, []) is True


def task_url(spec: ImageSpec, mappings: list[PortMapping]) -> str:
    """The readiness URL aimed at one task: its node's address and the host port published
    for the container port the configured URL reaches."""
    parts = urlsplit(spec.run.ready.url)
    configured = parts.port or (443 if parts.scheme == "https" else 80)
    target = next((p.container_port for p in spec.run.ports if p.host_port == configured),
                  spec.run.ports[0].container_port if spec.run.ports else configured)
    mapping = next((m for m in mappings if m.container_port == target), mappings[0])
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{parts.scheme}://{mapping.host_ip}:{mapping.host_port}{path}"


def _not_ready(spec: ImageSpec, rows: list[dict], running: list[dict], answered: set[str], replicas: int,
               seconds: float) -> str:
    name = service_name(spec)
    states = "; ".join(f"{r['task']} {r['state']}" + (f" ({r['error']})" if r["error"] else "") for r in rows) \
        or "no task"
    said = (f"{name} did not have {replicas} task{'' if replicas == 1 else 's'} running and answering within "
            f"{seconds:g}s: {states}")
    if running and not answered and spec.run.ports and spec.deploy.publish == "ingress":
        return (f"{said}. Nothing answers on the ingress port: the routing mesh needs IPVS in the kernel, which this "
                f"engine's host may lack; set publish = \"host\" in [images.{spec.key}.deploy] (each task then "
                f"gets its own host port)")
    if any("host-mode port" in (r["error"] or "") for r in rows):
        return f"{said}. A fixed host port allows one task per node: use fewer replicas or more nodes"
    return f"{said}; see `docker service ps {name} --no-trunc` and `docker service logs {name}`"


def status(project: ProjectSpec, spec: ImageSpec, services: list[dict] | None = None) -> dict | None:
    """The image's service, when one of ours exists: service, id, replicas, running, publish
    and published (the publish mode and ports it was deployed with, which a later edit of
    containers.toml does not change), update (the update's state) and tasks (see ``tasks``)."""
    found = ours(project) if services is None else services
    service = next((s for s in found if s["Spec"]["Name"] == service_name(spec)
                    and (s["Spec"].get("Labels") or {}).get(IMAGE) == spec.key), None)
    if service is None:
        return None
    rows = tasks(service["ID"], service=service)
    published = published_ports(service)
    return {"service": service_name(spec), "id": service["ID"], "replicas": _replicas(service),
            "running": sum(r["state"] == "running" for r in rows),
            "publish": published[0]["mode"] if published else None, "published": published,
            "update": (service.get("UpdateStatus") or {}).get("State"), "tasks": rows}


def published_ports(service: dict) -> list[dict]:
    """The ports the service publishes, from its endpoint spec: container_port, host_port (None
    in host mode without a fixed port: each task has its own, see ``tasks``), protocol, mode."""
    ports = engine_ports.published_of((service["Spec"].get("EndpointSpec") or {}).get("Ports"))
    return [{"container_port": p.container_port, "host_port": p.host_port, "protocol": p.protocol, "mode": p.mode}
            for p in ports]


def report_lines(outcome: dict) -> list[str]:
    """Lines for people: the service, what happened, and each task's node, state, address."""
    return [f"  {row['task']} on {row['node']}: {row['state']}"
            + "".join(f" {p['host_ip']}:{p['host_port']}->{p['container_port']}/{p['protocol']}" for p in row["ports"])
            + (f" ({row['error']})" if row["error"] else "")
            for row in outcome.get("tasks") or []]

