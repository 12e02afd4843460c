"""`up`, `down` and `logs` over a project's services (``dockyard.services`` says which).

``up`` is reentrant as builds are: every container carries the hash of the settings it was
created with (label ``dockyard.settings``, made by ``containers.creation``), so a running
container whose image id and hash are those `up` would use now is left alone; one whose image
or settings changed is replaced, a stopped one is started again, and each is reported. Each
service starts only once the services its ``after`` names answer their readiness checks, and
services that do not wait for each other start together. A step (``run.completes``) is waited
for until it exits, and what comes after it starts only if it exited 0; one that already did,
with the image and settings `up` would use now, is not run again.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable

from . import containers, engine, interrupts, resources
from .config import ImageSpec, ProjectSpec
from .errors import DockyardError
from .labels import OWNER, SETTINGS, labels_of


def up(project: ProjectSpec, order: list[str], *, ready_timeout: float | None = None,
       report: Callable[[dict], None] = lambda outcome: None,
       overrides: Callable[[ImageSpec], containers.RunOverrides] = lambda spec: containers.RunOverrides(),
       keep_until_ready: bool = False) -> list[dict]:
    """Bring the services in ``order`` (dependencies first) to running and ready. Each starts
    as soon as the services its ``after`` names are ready, so services with no `after` path
    between them start together and their readiness waits overlap. One dict per service, in
    ``order``: image, name, id, action (created, replaced, started, unchanged), reason, and
    exit_code (a step's: 0; None for a service);
    ``report`` sees each once it and every service before it in ``order`` are ready, so the
    lines come in the same order however the waits end. ``overrides``: what each service's
    container is made with beyond its settings (a watch's, or `run`'s flags).
    ``keep_until_ready``: a container replaced is removed only once the new one is ready; if
    the new one fails (or the wait is abandoned), the old one is put back, running (a watch).

    When one fails, nothing more is started, the others stop waiting (what was started is
    left running, as `run` leaves a container that did not answer) and its error is raised."""
    needs = {key: [name for name in project.images[key].run.after if name in order] for key in order}
    abandon = threading.Event()
    ready: dict[str, dict] = {}
    in_flight: dict[Future, str] = {}
    failure: BaseException | None = None
    reported = 0

    def start_and_wait(spec: ImageSpec) -> dict | None:
        if abandon.is_set():
            return None
        # The turn lasts until the service is ready: another `run` or `up` of it waits for that.
        with containers.turn_to_replace(project, spec, interrupted=abandon.is_set):
            outcome = _bring_up(project, spec, overrides(spec),
                                ready_first=abandon if keep_until_ready and not spec.run.completes else None,
                                ready_timeout=ready_timeout)
            if spec.run.completes:
                done = containers.wait_completed(spec, outcome["id"], abandon)
                return outcome | {"exit_code": 0} if done else None
            ports = containers.published_ports(spec, overrides(spec))
            if not containers.wait_ready(spec, outcome["id"], ports, timeout=ready_timeout,
                                         abandon=abandon, settled=outcome["action"] == "unchanged"):
                return None
        return outcome

    def under_way() -> str:
        return ", ".join(project.images[key].run.name for key in order if key in in_flight.values()) \
            or "the services"

    def interrupted() -> None:  # at once, not when the replaces under way have ended
        if not abandon.is_set():
            print(f"dockyard: interrupted; finishing what is under way for {under_way()}", file=sys.stderr,
                  flush=True)
        abandon.set()

    # One thread per service at most: each waits for its own container. Each starts in its
    # own copy of this context, which carries the engine chosen for the project.
    # Signals are deferred (``interrupts.Deferred``): the threads are told to stop waiting at
    # once, and a replace under way in one is finished (or rolled back) before we go, whatever
    # signals come: a thread left behind at exit would be cut off half-way.
    with ThreadPoolExecutor(max_workers=len(order)) as pool, \
            interrupts.Deferred(on_signal=interrupted) as signals:
        try:
            waiting = list(order)
            while True:
                signals.check()
                for key in [k for k in waiting if failure is None and all(n in ready for n in needs[k])]:
                    waiting.remove(key)
                    future = pool.submit(contextvars.copy_context().run, start_and_wait, project.images[key])
                    in_flight[future] = key
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: order.index(in_flight[f])):
                    key = in_flight.pop(future)
                    try:
                        outcome = future.result()
                    except BaseException as e:  # noqa: BLE001 - raised below, once the others stopped
                        failure = failure or e
                        abandon.set()
                        continue
                    if outcome is not None:
                        ready[key] = outcome
                while reported < len(order) and order[reported] in ready:
                    report(ready[order[reported]])
                    reported += 1
        except KeyboardInterrupt as interrupt:
            names = under_way()
            abandon.set()
            wait(in_flight)
            raise DockyardError(f"interrupted while waiting for {names}; the services "
                                "started so far are left running (`inv down` stops them)",
                                code=interrupts.exit_code(interrupt)) from None
        finally:
            abandon.set()  # the threads stop waiting; the pool's exit waits for them
    if failure is not None:
        for key in order[reported:]:  # what did get ready, still in order
            if key in ready:
                report(ready[key])
        raise failure
    return [ready[key] for key in order]


def _bring_up(project: ProjectSpec, spec: ImageSpec, overrides: containers.RunOverrides, *,
              ready_first: threading.Event | None = None, ready_timeout: float | None = None) -> dict:
    """Within the service's turn (``containers.turn_to_replace``). ``ready_first``: a replaced
    container goes only once the new one is ready; the event abandons that wait, which puts
    the old one back."""
    outcome = {"image": spec.key, "name": spec.run.name, "id": None, "action": "created", "reason": None,
               "exit_code": None}
    ports = containers.published_ports(spec, overrides)  # as `run` publishes them
    old = containers.owned(project, spec, required=False)
    if old is not None:
        image = engine.inspect_image(spec.ref)
        wanted = containers.settings_hash(project, spec, overrides, ports=ports, interactive=False)
        state = old["State"]
        if image is None or old["Image"] != image["Id"]:
            outcome.update(action="replaced", reason="image changed")
        elif labels_of(old).get(SETTINGS) != wanted:
            outcome.update(action="replaced", reason="settings changed")
        elif spec.run.completes:  # a step runs again only when its last run did not succeed
            if state["Running"] or state["Status"] == "exited" and state["ExitCode"] == 0:
                outcome.update(id=old["Id"], action="unchanged")  # done, or still at it: waited for
                return outcome
            ended = f"exited {state['ExitCode']}" if state["Status"] == "exited" else f"was {state['Status']}"
            outcome.update(action="replaced", reason=f"its last run {ended}")
        elif not state["Running"]:
            containers.start_again(spec, old["Id"])
            outcome.update(id=old["Id"], action="started", reason=f"was {state['Status']}")
            return outcome
        else:
            outcome.update(id=old["Id"], action="unchanged")
            return outcome
    ready = None
    if ready_first is not None and old is not None:
        def ready(container_id: str) -> None:
            if not containers.wait_ready(spec, container_id, ports, timeout=ready_timeout, abandon=ready_first):
                raise KeyboardInterrupt()  # abandoned: an interrupt, or another service failed
    outcome["id"] = containers.replace_and_start(project, spec, overrides, ports, ready=ready)
    return outcome


def down(project: ProjectSpec, *, volumes: bool, timeout: int = 10) -> dict:
    """Stop and remove every container of the project (any image), then its network, and
    with ``volumes`` its managed volumes. Nothing of anyone else's is removed.

    Every container stops at once; the network is removed as soon as the last one has
    stopped (a stopped container holds no endpoint), while the containers are removed."""
    listing = engine.query("/containers/json", all=True, filters={"label": f"{OWNER}={project.name}"})
    ours = engine.request("GET", listing, "list containers") or []

    def stop(container: dict) -> None:
        if container["State"] == "running":
            engine.request("POST", engine.query(f"/containers/{container['Id']}/stop", t=timeout),
                           f"stop {_name(container)}", ok=(204, 304), missing=True, longer_by=timeout)

    def remove(container: dict) -> str:
        # v: with its anonymous volumes (a watch's writable directories), which nothing else reaches
        engine.request("DELETE", engine.query(f"/containers/{container['Id']}", force=True, v=True),
                       f"remove {_name(container)}", missing=True)
        return _name(container)

    with ThreadPoolExecutor(max_workers=8) as pool:
        def submit(function: Callable, *args) -> Future:
            # In its own copy of this context: it carries the engine chosen for the project.
            return pool.submit(contextvars.copy_context().run, function, *args)

        inspected = submit(resources.inspect_network, resources.network_name(project))
        stops = [(container, submit(stop, container)) for container in ours]
        stopped, failures = [], []
        for container, future in stops:
            try:
                future.result()
                stopped.append(container)
            except DockyardError as e:  # that one stays as it is; the others still go
                failures.append(e)
        network = submit(resources.remove_network, project, inspected.result()) if not failures else None
        removed = [future.result() for future in [submit(remove, container) for container in stopped]]
        if failures:
            raise failures[0]
        result = {"containers": sorted(removed), "network": network.result(), "volumes": []}
    if result["network"].startswith("kept"):  # something is attached: ask again, to say what
        result["network"] = resources.remove_network(project)
    if volumes:
        for row in resources.project_volumes(project.name):
            result["volumes"].append({"name": row["name"], "status": resources.remove_volume(row["name"])})
    return result


def _name(container: dict) -> str:
    """A container's name from the engine's list."""
    return container["Names"][0].lstrip("/")


def follow_logs(project: ProjectSpec, keys: list[str], *, follow: bool, tail: str | int) -> None:
    """Every service's output, each line prefixed by its container's name, as it comes."""
    found = [(project.images[key], containers.owned(project, project.images[key], required=False)) for key in keys]
    found = [(spec, container) for spec, container in found if container is not None]
    if not found:
        raise DockyardError("no service of this project has a container; start them with `inv up`")
    width = max(len(spec.run.name) for spec, _ in found)
    lock = threading.Lock()
    out = sys.stdout.buffer

    def copy(spec: ImageSpec, container: dict) -> None:
        prefix = f"{spec.run.name:<{width}} | ".encode()
        pending = b""
        try:
            for _, chunk in engine.logs(container["Id"], f"logs of {spec.run.name}", follow=follow, tail=tail,
                                        tty=bool(container["Config"].get("Tty"))):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                with lock:
                    out.write(b"".join(prefix + line + b"\n" for line in lines))
                    out.flush()
        except Exception:  # noqa: BLE001 - the container went away, or the engine: this stream ends
            pass
        if pending:
            with lock:
                out.write(prefix + pending + b"\n")
                out.flush()

    # Each thread in a copy of this context: the engine chosen here is the one it reads from.
    threads = [threading.Thread(target=contextvars.copy_context().run, args=(copy, spec, c), daemon=True)
               for spec, c in found]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except KeyboardInterrupt:
        pass
