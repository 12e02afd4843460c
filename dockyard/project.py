"""dockyard's Python API: a project loaded from its containers.toml, and what can be done to it.

Release scripts use it directly; the Invoke tasks are thin wrappers over it::

    from dockyard import Project, DockyardError

    project = Project("containers.toml")
    project.build(jobs=4)
    started = project.run("httpd")        # {"id": ..., "url": "http://localhost:8000", ...}
    project.exec("httpd", ["id", "-un"])  # {"exit_code": 0, ...}
    project.stop("httpd")

Every method returns plain data (dicts and lists of str, int, float, bool, None, ready for
``json.dumps``) and raises ``DockyardError`` for anything a user can cause. Build output
goes to the ``output`` stream given to ``build``/``run`` (default: stdout), not to a logger.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import threading
import time
from pathlib import Path
from typing import Callable, ContextManager, Iterable, Iterator, TextIO

from . import config, engine_choice, interrupts
from .config import ImageSpec, normalize_ref, swarm_ports_warning
from .engine_choice import Choice
from .errors import DockyardError
from .labels import IMAGE, KEY, OWNER, PROJECT
from .services import start_order


def _on_its_engine(method: Callable) -> Callable:
    """The method, whose first argument is an image's key, runs on that image's engine."""

    @functools.wraps(method)
    def on_its_engine(self: "Project", image: str, *args, **kwargs):
        with self.on_engine_of(image):
            return method(self, image, *args, **kwargs)

    return on_its_engine


def _on_its_projects_engine(method: Callable) -> Callable:
    """The method works on its own project's engine (its ``[project] engine``, after the
    environment's choices), whichever Project the process loaded since: the choice is set
    for the method's work (and the threads that carry it) and undone when it returns."""

    @functools.wraps(method)
    def on_its_projects_engine(self: "Project", *args, **kwargs):
        with self.on_own_engine():
            return method(self, *args, **kwargs)

    return on_its_projects_engine


class Project:
    """The project described by one containers.toml (validated when loaded)."""

    def __init__(self, path: str | Path = config.DEFAULT_FILE, *, builder: str | None = None) -> None:
        """``builder``: "buildkit", "classic" or "auto" (BuildKit where the engine offers it);
        None: DOCKYARD_BUILDER, else auto."""
        self.builder = builder
        self.spec = config.load(path)
        # A project that names an engine is used there (after the environment's choices, see
        # ``engine_choice``) by each of its methods; an image that names its own is worked on
        # there (``on_engine_of``). Outside its methods, the engine layer called directly sees
        # the project loaded last.
        engine_choice.use_project(self.spec.engine, self.spec.path)

    def __repr__(self) -> str:
        return f"Project({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def path(self) -> Path:
        return self.spec.path

    def engine(self, image: str | None = None) -> dict:
        """The engine in use (for ``image``: that image's): its address, what chose it (a
        setting, a variable, this containers.toml, the Docker CLI's context or the default)
        and the context's name."""
        from . import engine

        with self.on_engine_of(image) if image is not None else contextlib.nullcontext():
            choice = engine_choice.chosen()
            return {"address": engine.endpoint(), "source": choice.source,
                    "context": None if choice.is_address else choice.value}

    def on_own_engine(self) -> ContextManager:
        """Within: this project's engine (a setting or the environment still comes first, see
        ``engine_choice``), whichever Project was loaded since."""
        return engine_choice.project_layer(self.spec.engine, self.spec.path)

    @contextlib.contextmanager
    def on_engine_of(self, image: str) -> Iterator[None]:
        """Within: the image's own engine, if it names one, else this project's (a setting or
        the environment still comes first, see ``engine_choice``)."""
        from . import engine

        spec = self.image(image)
        with self.on_own_engine(), \
                engine.using(Choice(spec.engine, f"images.{spec.key}.engine in {self.path}") if spec.engine else None):
            yield

    def _on(self, image: str, function: Callable, *args, **kwargs):
        """``function(*args, **kwargs)`` on the image's engine."""
        with self.on_engine_of(image):
            return function(*args, **kwargs)

    def _one_engine(self, keys: list[str], what: str) -> ContextManager:
        """Within: the one engine of these images (a project's services share a network, which
        cannot span engines)."""
        groups = self._by_engine(keys)
        if len(groups) > 1:
            where = "; ".join(f"{', '.join(k)} on {e}" for e, k in groups.items())
            raise DockyardError(f"{what}: the services are on different engines ({where}); a project's "
                                "services share one network, on one engine: give them the same engine")
        return self.on_engine_of(keys[0]) if keys else contextlib.nullcontext()

    def _by_engine(self, keys: Iterable[str]) -> dict[str, list[str]]:
        """The keys grouped by the engine their work goes to, in order: an image's own engine,
        unless a setting or the environment sends everything to one (see ``engine_choice``);
        an image that names the project's engine is on the project's engine."""
        groups: dict[str, list[str]] = {}
        for key in keys:
            with self.on_engine_of(key):
                groups.setdefault(engine_choice.chosen().value, []).append(key)
        return groups

    @property
    def images(self) -> list[str]:
        """The image keys, in containers.toml's order."""
        return list(self.spec.images)

    def image(self, key: str) -> ImageSpec:
        if key not in self.spec.images:
            raise DockyardError(f"no image named '{key}' in {self.path}; known: {', '.join(self.spec.images)}")
        return self.spec.images[key]

    # -- building -----------------------------------------------------------------------

    def build(self, images: Iterable[str] | None = None, *, jobs: int = 1, force: bool = False,
              no_cache: bool = False, pull: bool = False, quiet: bool = False,
              output: TextIO | None = None, check: bool = True) -> list[dict]:
        """Build the images (default: all) and their prerequisites, parents first, skipping
        what is up to date. One dict per image: image, status ('built', 'up to date',
        'failed', 'skipped'), seconds, image_id, detail. With ``check`` a failure raises."""
        from .builder import BuildOptions, Output, build, failures

        names = None if images is None else [self.image(key).key for key in images]
        options = BuildOptions(force=force, no_cache=no_cache, pull=pull, jobs=jobs, quiet=quiet,
                               builder=self.builder)
        # An image is built on its parents' engine (config checks it), so each engine's
        # images are built together, there (the keys asked for, or all: their prerequisites
        # come along, and only the keys are targets of --force, as with one engine).
        outcomes = []
        for keys in self._by_engine(names if names is not None else self.images).values():
            with self.on_engine_of(keys[0]):
                outcomes += build(self.spec, keys, options, Output(stream=output))
        failed = failures(outcomes)
        if check and failed:
            raise DockyardError(f"build failed for {', '.join(o.key for o in failed)}: {failed[0].detail}")
        return [{"image": o.key, "status": o.status, "seconds": round(o.seconds, 3),
                 "image_id": o.image_id, "detail": o.detail} for o in outcomes]

    # -- containers ---------------------------------------------------------------------

    @_on_its_engine
    def run(self, image: str, *, port: int | None = None, env: dict[str, str] | None = None,
            args: Iterable[str] = (), build: bool = True, quiet_build: bool = False,
            attach: bool | None = None, ready_timeout: float | None = None,
            output: TextIO | None = None, stdin: bool = False) -> dict:
        """Start the image's container (building first unless ``build`` is false), replacing
        our previous one, and wait for its readiness check. ``args`` replace the configured
        command. ``attach`` follows it in the foreground until it exits (Ctrl-C stops it);
        by default an image with no ports and no readiness check runs attached, like
        `docker run`. Returns id, name, ports and url, plus exit_code when attached, or when a
        one-shot image run in the background has exited already (a non-zero exit raises). ``stdin``:
        an attached run reads our standard input (as `docker run -i`)."""
        from . import containers, engine

        spec = self.image(image)
        if attach is None:
            attach = not spec.run.ports and spec.run.ready is None
        overrides = containers.RunOverrides(port=port, env=tuple((env or {}).items()), args=tuple(args),
                                            stdin=bool(attach and stdin))
        ports = containers.published_ports(spec, overrides)
        if build:
            self.build([spec.key], quiet=quiet_build, output=output or sys.stderr)
        elif engine.inspect_image(spec.ref) is None:
            raise DockyardError(f"image {spec.ref} does not exist; build it with `inv {spec.key}.build`")
        outcome: dict = {}

        def attached(container_id: str) -> None:
            # Attached before it starts, so not a byte of its output (or our input) is lost.
            outcome["exit_code"] = (
                containers.interactive(container_id, stop_on_interrupt=True) if overrides.stdin
                else containers.start_attached(container_id))

        # The turn lasts until the container is ready: another run of the image waits for that.
        with containers.turn_to_replace(self.spec, spec):
            container_id = containers.replace_and_start(self.spec, spec, overrides, ports,
                                                        starter=attached if attach else None)
            result = {"image": spec.key, "name": spec.run.name, "id": container_id,
                      "ports": [_port_json(p) for p in ports],
                      "url": containers.browser_url(ports), **outcome}
            if attach:
                return result
            if not spec.run.ports and spec.run.ready is None:
                # A one-shot image in the background, as `docker run -d`: started, and it may
                # have finished already (exit code 0); it has nothing to answer on.
                code = containers.exit_code(spec, container_id)
                return result if code is None else result | {"exit_code": code}
            try:
                containers.wait_ready(spec, container_id, ports, timeout=ready_timeout)
            except KeyboardInterrupt as interrupt:
                raise DockyardError(f"interrupted while waiting for {spec.run.name}; it is left running "
                                    f"(`inv {spec.key}.logs`, `inv {spec.key}.stop`)",
                                    code=interrupts.exit_code(interrupt)) from None
        return result

    @_on_its_engine
    def stop(self, image: str, *, timeout: int = 10) -> dict:
        """Stop the container (ours only); a stopped or absent one is fine."""
        from . import containers

        spec = self.image(image)
        container = containers.owned(self.spec, spec, required=False)
        result = {"image": spec.key, "name": spec.run.name, "stopped": False,
                  "state": "absent" if container is None else container["State"]["Status"]}
        if container is not None and container["State"]["Running"]:
            containers.stop(spec, container["Id"], timeout)
            result.update(stopped=True, state="exited")
        return result

    @_on_its_engine
    def start(self, image: str, *, attach: bool = False) -> dict:
        """Start the stopped container again with its original command; ``attach`` follows
        its output (and passes our input) until it exits, like `docker start -a -i`."""
        from . import containers

        spec = self.image(image)
        container = containers.owned(self.spec, spec)
        result = {"image": spec.key, "name": spec.run.name, "id": container["Id"], "started": False}
        if container["State"]["Running"]:
            return result
        if not attach:
            containers.start_again(spec, container["Id"])
        elif container["Config"].get("Tty") or container["Config"].get("OpenStdin"):
            result["exit_code"] = containers.interactive(container["Id"], stop_on_interrupt=True)
        else:
            result["exit_code"] = containers.start_attached(container["Id"])
        result["started"] = True
        return result

    @_on_its_engine
    def restart(self, image: str, *, timeout: int = 10, ready_timeout: float | None = None) -> dict:
        """Restart the container and wait for its readiness check again."""
        from . import containers

        spec = self.image(image)
        container = containers.owned(self.spec, spec)
        containers.restart(spec, container["Id"], timeout)
        containers.wait_ready(spec, container["Id"], containers.ports_of(spec, container), timeout=ready_timeout)
        return {"image": spec.key, "name": spec.run.name, "id": container["Id"]}

    @_on_its_engine
    def logs(self, image: str, *, follow: bool = False, tail: int | None = None) -> None:
        """Copy the container's output to stdout; ``follow`` until it stops or Ctrl-C."""
        from . import containers

        spec = self.image(image)
        container = containers.owned(self.spec, spec)
        try:
            containers.stream_logs(container["Id"], follow=follow, tail="all" if tail is None else tail)
        except KeyboardInterrupt:
            pass

    @_on_its_engine
    def exec(self, image: str, command: str | list[str], *, user: str | None = None,
             capture: bool = False, stdin: bool = False) -> dict:
        """Run a command in the running container: a string goes through `sh -c`, a list is
        run as it is. Output goes to our stdout/stderr, or into the result with ``capture``;
        ``stdin`` passes our standard input to it (not with ``capture``). The exit code is
        in the result, not raised."""
        from . import containers

        spec = self.image(image)
        container = containers.owned(self.spec, spec)
        if not container["State"]["Running"]:
            raise DockyardError(f"{spec.run.name} is not running; start it with `inv {spec.key}.run`")
        argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
        code, out, err = containers.exec_in(spec, container["Id"], argv, user=user, capture=capture,
                                            stdin=stdin and not capture)
        result = {"image": spec.key, "name": spec.run.name, "command": argv, "exit_code": code}
        if capture:
            result.update(stdout=out.decode("utf-8", "replace"), stderr=err.decode("utf-8", "replace"))
        return result

    @_on_its_engine
    def shell(self, image: str, *, command: str | list[str] = "sh", user: str | None = None,
              build: bool = True) -> int:
        """An interactive shell in a fresh container of the image, with its run settings
        (environment, user, workdir, volumes); removed on exit. Returns the exit code."""
        from . import containers

        spec = self.image(image)
        if build:
            self.build([spec.key], quiet=True, output=sys.stderr)
        container_id = containers.create_throwaway(self.spec, spec, command, user)
        try:
            return containers.interactive(container_id)
        finally:
            containers.remove_throwaway(container_id)

    @_on_its_engine
    def rm(self, image: str, *, force: bool = False) -> dict:
        """Remove the container (ours only); a running one needs ``force``."""
        from . import containers

        spec = self.image(image)
        container = containers.owned(self.spec, spec, required=False)
        if container is None:
            return {"image": spec.key, "name": spec.run.name, "removed": False}
        if container["State"]["Running"] and not force:
            raise DockyardError(f"{spec.run.name} is running; stop it first (`inv {spec.key}.stop`) or use --force")
        containers.remove(spec, container["Id"], force=force)
        return {"image": spec.key, "name": spec.run.name, "removed": True}

    def status(self, images: Iterable[str] | None = None) -> list[dict]:
        """One row per image: its container's state, ports, exit code, start time, restarts,
        the image id, and whether the image is up to date with its directory; ``service``: its
        Swarm service's tasks when one of ours is deployed (see ``deploy_status``); ``volumes``:
        the named volumes it mounts, as ``volumes()`` gives them, on its engine."""
        from .resources import volume_rows
        from .status import image_status

        keys = self.images if images is None else list(images)
        services = {row["image"]: row for row in self.deploy_status(keys)}  # Swarm: see `deploy`
        rows = []
        for key in keys:
            with self.on_engine_of(key):
                spec = self.image(key)
                rows.append(image_status(self.spec, spec)
                            | {"engine": self.engine()["address"], "service": services.get(key),
                               "volumes": volume_rows(self.spec, [spec])})
        return rows

    # -- services -----------------------------------------------------------------------

    @property
    def services(self) -> list[str]:
        """The images `up` starts, in start order (see ``dockyard.services``)."""
        return start_order(self.spec.images)

    def up(self, only: Iterable[str] | None = None, *, build: bool = True, quiet_build: bool = False,
           ready_timeout: float | None = None, output: TextIO | None = None,
           report: Callable[[dict], None] | None = None) -> list[dict]:
        """Build what is out of date, then start every service (or ``only`` those and what
        they need), each after the services its ``after`` names answer. Running containers
        whose image and settings are unchanged are left alone; a step (``run.completes``) runs to
        its end first, unless it completed with them already. One dict per service: image, name,
        id, action ('created', 'replaced', 'started', 'unchanged'), reason and exit_code (a
        step's 0; None for the others)."""
        from .up import up

        order = start_order(self.spec.images, None if only is None else [self.image(k).key for k in only])
        if not order:
            raise DockyardError(f"{self.path.name} has no services: give an image ports, a ready check "
                                "or run.service = true")
        with self._one_engine(order, "up"):
            if build:
                self.build(order, quiet=quiet_build, output=output or sys.stderr)
            return up(self.spec, order, ready_timeout=ready_timeout, report=report or (lambda outcome: None))

    def watch(self, only: Iterable[str] | None = None, *, image: str | None = None, port: int | None = None,
              env: dict[str, str] | None = None, args: Iterable[str] = (), debounce: float | None = None,
              ready_timeout: float | None = None, quiet_build: bool = True, output: TextIO | None = None,
              report: Callable[[dict], None] | None = None, stop: threading.Event | None = None) -> dict:
        """Bring the services up (or ``only`` those and what they need; or the one ``image``
        as `run` starts it, with ``port``, ``env`` and ``args``), then watch what they are made
        from and, after each burst of changes (quiet for ``debounce`` seconds), sync, rebuild
        or replace what changed (``dockyard.watch``). ``report`` gets one dict per turn:
        changed, synced, built, replaced, restarted, seconds, url and error (a failed turn;
        the old containers keep serving). Until SIGINT, SIGTERM or ``stop`` is set; the
        services are left running. Returns how it ended: {'ended_by': 'stop' | 'SIGINT' |
        'SIGTERM' | 'SIGHUP', 'detail': what an interrupted step said, or None}."""
        from . import containers, engine, watch as watching

        if image is not None:
            spec = self.image(image)
            if not spec.run.ports and spec.run.ready is None and not spec.run.service:
                raise DockyardError(f"--watch keeps a server running: {spec.key} publishes no port and has no "
                                    f"readiness check (it runs and exits: `inv {spec.key}.run` runs it)")
        overrides = containers.RunOverrides(port=port, env=tuple((env or {}).items()), args=tuple(args))
        target = watching.Target(only=None if only is None else tuple(self.image(k).key for k in only),
                                 image=None if image is None else self.image(image).key, overrides=overrides)
        keys = target.keys(self.spec)
        for key in keys:
            containers.published_ports(self.image(key), target.overrides_for(self.image(key)))  # --port's checks
        watcher = watching.Watch(self, target, debounce=watching.DEFAULT_DEBOUNCE if debounce is None else debounce,
                                 ready_timeout=ready_timeout, quiet_build=quiet_build, output=output,
                                 report=report or (lambda turn: None), stop=stop)
        with self._one_engine(keys, "watch"):
            # An engine that is not there ends the watch now, as it ends `up`: a watch waits
            # out a failed turn only when there is an engine to try again with.
            for key in keys:
                with self.on_engine_of(key):
                    engine.api_version()
            try:
                watcher.run()
            except watching.Ended as ended:
                names = {None: "stop", 130: "SIGINT", 143: "SIGTERM", 129: "SIGHUP"}
                return {"ended_by": names.get(ended.signal_code, "SIGINT"), "detail": ended.said}
        raise AssertionError("a watch ends only by Ended")  # pragma: no cover

    def reload(self) -> None:
        """Read containers.toml again (a watch, after it changed); the old settings stay when
        the new ones are not valid (the error is raised)."""
        config.load.cache_clear()
        self.spec = config.load(self.spec.path)

    def down(self, *, volumes: bool = False, timeout: int = 10) -> dict:
        """Stop and remove the project's containers and its network; its managed volumes too
        with ``volumes`` (not one that any other container still uses)."""
        from .up import down

        with self._one_engine(self.services, "down"):
            return down(self.spec, volumes=volumes, timeout=timeout)

    def service_logs(self, only: Iterable[str] | None = None, *, follow: bool = True,
                     tail: int | None = None) -> None:
        """Every service's output (or ``only`` some), each line prefixed by its container's name."""
        from .up import follow_logs

        keys = start_order(self.spec.images, None if only is None else [self.image(k).key for k in only])
        with self._one_engine(keys, "logs"):
            follow_logs(self.spec, keys, follow=follow, tail="all" if tail is None else tail)

    def volumes(self) -> list[dict]:
        """The named volumes the images mount: volume (as configured), name (the engine's),
        external, state ('present', 'absent') and used_by (container names)."""
        from .resources import volume_rows

        return volume_rows(self.spec)

    # -- registry -----------------------------------------------------------------------

    def push(self, images: Iterable[str] | None = None, *, registry: str | None = None,
             output: TextIO | None = None) -> list[dict]:
        """Push the images (default: every one that is built) to ``registry`` (HOST[:PORT];
        default: containers.toml's [project] registry) as REGISTRY/REPOSITORY:TAG. Layer
        progress goes to ``output``. One dict per image: image, tag, remote, registry,
        digest, layers_pushed, layers_existing, seconds; or status 'not built' (default set)."""
        from . import engine, registry as registries

        address = registries.registry_of((registry, "registry"), (self.spec.registry, f"{self.path}: project.registry"))
        if images is not None:
            return [self._on(key, registries.push, self.image(key), address, output) for key in images]
        results = []
        for key in self.images:
            spec = self.image(key)
            if self._on(key, engine.inspect_image, spec.ref) is None:
                results.append({"image": key, "tag": spec.ref, "status": "not built"})
            else:
                results.append(self._on(key, registries.push, spec, address, output))
        if all(r["status"] == "not built" for r in results):
            raise DockyardError(f"no image of {self.path.name} is built; build them with `inv build`")
        return results

    def pull(self, images: Iterable[str] | None = None, *, registry: str | None = None,
             output: TextIO | None = None) -> list[dict]:
        """Pull the images (default: all) from ``registry`` and tag each as its own tag, with
        its labels, so `build` finds it up to date and `run --no-build` runs it. One dict per
        image: image, tag, remote, registry, digest, image_id, layers_pulled, layers_existing,
        seconds."""
        from . import registry as registries

        address = registries.registry_of((registry, "registry"), (self.spec.registry, f"{self.path}: project.registry"))
        keys = self.images if images is None else list(images)
        return [self._on(key, registries.pull, self.image(key), address, output) for key in keys]

    # -- swarm --------------------------------------------------------------------------

    def deploy(self, images: Iterable[str] | None = None, *, replicas: int | None = None, push: bool = False,
               registry: str | None = None, build: bool = True, quiet_build: bool = False,
               ready_timeout: float | None = None, output: TextIO | None = None,
               report: Callable[[dict], None] | None = None,
               warn: Callable[[str], None] | None = None) -> list[dict]:
        """Run the images (default: every service, in `after` order, as `up` would, but the
        steps, which a Swarm service would run again and again) as Swarm services on the
        engine, a swarm manager: build first, then create each service, or roll it over when
        its image or settings changed, or scale it to [deploy] replicas, and wait until every
        task answers before the next. ``replicas`` replaces [deploy] replicas for this deploy;
        ``push`` pushes the image to ``registry`` (default: [deploy] registry, then [project]
        registry) and deploys its digest, which a swarm of several nodes needs. One dict per
        service: image, service, id, action ('created', 'updated', 'scaled', 'unchanged'),
        reason, replicas, tasks. ``warn`` is told, before anything is deployed, of each service
        whose ports a swarm publishes on every interface."""
        if images is None:
            keys = [key for key in start_order(self.spec.images) if not self.image(key).run.completes]
        else:
            keys = [self.image(key).key for key in images]
        if not keys:
            raise DockyardError(f"{self.path.name} has no services: give an image ports, a ready check "
                                "or run.service = true")
        with self._one_engine(keys, "deploy"):
            return self._deploy(keys, replicas=replicas, push=push, registry=registry, build=build,
                                quiet_build=quiet_build, ready_timeout=ready_timeout, output=output, report=report,
                                warn=warn)

    def _deploy(self, keys: list[str], *, replicas, push, registry, build, quiet_build, ready_timeout,
                output, report, warn) -> list[dict]:
        from . import registry as registries, swarm

        nodes = int(swarm.manager().get("Nodes") or 1)
        # Said before anything is deployed: a deploy that fails or is interrupted while it waits
        # leaves its ports published all the same.
        for warning in filter(None, (swarm_ports_warning(self.image(key)) for key in keys)):
            if warn is not None:
                warn(warning)
        if build:
            self.build(keys, quiet=quiet_build, output=output or sys.stderr)
        outcomes = []
        for key in keys:
            spec = self.image(key)
            address = None
            choices = ((registry, "registry"), (spec.deploy.registry, f"{self.path}: images.{key}.deploy.registry"),
                       (self.spec.registry, f"{self.path}: project.registry"))
            if push or nodes > 1:
                address = registries.registry_of(*choices) if push else next((v for v, _ in choices if v), None)
            pushed = registries.push(spec, address, output or sys.stderr) if push else None
            image = swarm.image_reference(spec, nodes, address, pushed)
            try:
                outcome = swarm.deploy(self.spec, spec, image, replicas=replicas, timeout=ready_timeout)
            except KeyboardInterrupt as interrupt:
                raise DockyardError(f"interrupted while waiting for {swarm.service_name(spec)}; the service is left "
                                    f"deployed (`inv {key}.undeploy` removes it)",
                                    code=interrupts.exit_code(interrupt)) from None
            if report is not None:
                report(outcome)
            outcomes.append(outcome)
        return outcomes

    @_on_its_engine
    def scale(self, image: str, replicas: int, *, ready_timeout: float | None = None) -> dict:
        """Run ``replicas`` tasks of the image's deployed service; wait until they answer."""
        from . import swarm

        swarm.manager()
        return swarm.scale(self.spec, self.image(image), replicas, ready_timeout)

    def undeploy(self, images: Iterable[str] | None = None) -> dict:
        """Remove the project's services (or the images'), then its overlay network once no
        service of ours uses it: {'services': [...], 'network': 'removed' | 'absent' | 'kept: ...'}."""
        from . import swarm

        specs = None if images is None else [self.image(key) for key in images]
        with self._one_engine([s.key for s in specs] if specs else self.images, "undeploy"):
            return swarm.undeploy(self.spec, specs)

    def deployed(self) -> list[str]:
        """The names of the project's Swarm services on the engine (none where it is no manager):
        `down` leaves them, and says so."""
        from . import swarm

        return sorted(service["Spec"]["Name"] for service in swarm.ours(self.spec))

    def deploy_status(self, images: Iterable[str] | None = None) -> list[dict]:
        """The deployed services of the images (default: all): service, id, replicas, running,
        publish and published (as deployed: the service's endpoint, not containers.toml), update
        and tasks (node, state, error, ports). Empty where none is deployed. Each engine is
        asked for its services once, whatever the number of images on it."""
        from . import swarm

        keys = self.images if images is None else [self.image(key).key for key in images]
        rows: dict[str, dict] = {}
        for group in self._by_engine(keys).values():
            with self.on_engine_of(group[0]):
                found = swarm.ours(self.spec)
                for key in group if found else []:
                    row = swarm.status(self.spec, self.spec.images[key], found)
                    if row is not None:
                        rows[key] = row | {"image": key}
        return [rows[key] for key in keys if key in rows]

    # -- artifacts ----------------------------------------------------------------------

    @_on_its_engine
    def export(self, image: str, output: str | Path | None = None, *, force: bool = False,
               progress: bool = False) -> dict:
        """The container's filesystem to a tar ('.gz' compresses, '-' is stdout)."""
        from .artifacts import export_container
        from .containers import owned

        spec = self.image(image)
        container = owned(self.spec, spec)
        target = output or f"{spec.run.name}.tar"
        return export_container(container["Id"], target, force=force, progress=progress).to_json()

    def save(self, images: Iterable[str] | None = None, output: str | Path | None = None, *,
             force: bool = False, progress: bool = False) -> dict:
        """Images with their layers and tags to one tar (default: every image that exists)."""
        from . import engine
        from .artifacts import save_image

        if images is None:
            refs = [spec.ref for spec in self.spec.images.values() if engine.inspect_image(spec.ref)]
            if not refs:
                raise DockyardError(f"no image of project {self.name} exists yet; build them with `inv build`")
            default = f"{self.name}.tar"
        else:
            keys = list(images)
            refs = [self.image(key).ref for key in keys]
            default = f"{keys[0]}.tar" if len(keys) == 1 else f"{self.name}.tar"
            groups = self._by_engine(keys)  # one archive comes from one engine: the images'
            if len(groups) > 1:
                where = "; ".join(f"{', '.join(k)} on {e}" for e, k in groups.items())
                raise DockyardError(f"save: the images are on different engines ({where}); save them one "
                                    "engine at a time")
            with self.on_engine_of(keys[0]) if keys else contextlib.nullcontext():
                return save_image(refs, output or default, force=force, progress=progress).to_json()
        return save_image(refs, output or default, force=force, progress=progress).to_json()

    def load(self, source: str | Path, image: str | None = None, *, progress: bool = False) -> dict:
        """Images from a `save` or `docker save` tar; they keep their tags and build keys.
        Only this project's tags are set: with ``image``, the archive must hold that one image
        (untagged or under its tag), loaded as it; without, every tag in it must be one of the
        project's images'. Any other archive is refused and the engine loads nothing."""
        from .artifacts import load_image

        if image is not None:
            with self.on_engine_of(image):
                return load_image(source, progress=progress, only=self.image(image).ref).to_json()
        allowed = [spec.ref for spec in self.spec.images.values()]
        return load_image(source, progress=progress, allowed=allowed).to_json()

    @_on_its_engine
    def import_(self, image: str, source: str | Path, *, tag: str | None = None,
                changes: Iterable[str] = (), message: str | None = None, progress: bool = False) -> dict:
        """A filesystem tar as an image (default tag: the image's own), like `docker import`."""
        from .artifacts import import_image

        spec = self.image(image)
        return import_image(source, tag=tag or spec.ref, changes=list(changes), message=message,
                            progress=progress, labels={PROJECT: self.name, IMAGE: spec.key}).to_json()

    @_on_its_engine
    def commit(self, image: str, *, tag: str | None = None, message: str | None = None,
               author: str | None = None, changes: Iterable[str] = ()) -> dict:
        """The container's current state as a new image (default tag: the repository with
        the time)."""
        from .artifacts import commit_container
        from .containers import owned

        spec = self.image(image)
        owned(self.spec, spec)  # refuses a container of that name that is not ours
        target = normalize_ref(tag.rstrip(":")) if tag else f"{spec.repository}:{time.strftime('%Y%m%d-%H%M%S')}"
        repository, _, version = target.rpartition(":")
        # The container carries its image's build key and our ownership label; a commit is
        # neither that build nor a container, so both are cleared on the new image.
        return commit_container(spec.run.name, repository=repository, tag=version, message=message,
                                author=author, changes=list(changes), labels={KEY: "", OWNER: ""}).to_json()

    def clean(self, image: str | None = None, *, dry_run: bool = False, everything: bool = False,
              volumes: bool = False) -> dict:
        """Remove the project's (or one image's) stopped containers and dangling images;
        ``everything`` widens it to the whole host, as `docker container prune` would.
        ``volumes``: the project's named volumes too (one image's: those it mounts), unless a
        container left running uses one. External volumes are never removed."""
        from .cleanup import Scope, clean
        from .resources import named_volumes, volume_name

        if everything:
            scope = Scope(None)
        elif image is None:
            scope = Scope(self.name, None, volumes=volumes)
        else:
            spec = self.image(image)
            mounted = tuple(volume_name(self.spec, name) for name in named_volumes(spec))
            scope = Scope(self.name, spec.key, volumes=volumes, volume_names=mounted)
        with self.on_engine_of(image) if image is not None else contextlib.nullcontext():
            return clean(scope, dry_run=dry_run).to_json()


def _port_json(port) -> dict:
    return {"host_ip": port.host_ip, "host_port": port.host_port,
            "container_port": port.container_port, "protocol": port.protocol}


# Every public method works on its own project's engine: two Projects in one process (a
# release script's) each talk to their own, however their calls interleave.
for _name, _method in list(vars(Project).items()):
    if inspect.isfunction(_method) and not _name.startswith("_") and _name not in ("image", "on_own_engine",
                                                                                   "on_engine_of"):
        setattr(Project, _name, _on_its_projects_engine(_method))
