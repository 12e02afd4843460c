"""Top-level tasks that span every image: ``inv build``, ``inv status``, ``inv config``."""

from __future__ import annotations

import json

from invoke import task

from ..config import load as load_config
from ..errors import DockyardError
from .artifacts import CLEAN_HELP, archive_help, load, report, run_clean, size_text
from .image import BUILD_HELP, parse_number


def project_of(c):
    return load_config(c.config.dockyard.config)


@task(help={
    **BUILD_HELP,
    "only": "Comma-separated image names to build (with their prerequisites); default: all.",
    "jobs": "How many independent images to build at once (default 1).",
})
def build(c, only=None, jobs=None, force=False, no_cache=False, pull=False, quiet=False):
    """Build every image (or --only some) in dependency order; up-to-date ones are skipped."""
    from ..builder import BuildOptions, build as build_images, failures, summary

    project = project_of(c)
    names = None
    if only is not None:
        names = [n.strip() for n in only.split(",") if n.strip()]
        if not names:
            raise DockyardError("--only: name at least one image, e.g. --only httpd,my-app")
    jobs = parse_number("jobs", jobs, 1, 64) or 1
    options = BuildOptions(force=force, no_cache=no_cache, pull=pull, jobs=jobs, quiet=quiet)
    outcomes = build_images(project, names, options)
    print(summary(outcomes))
    failed = failures(outcomes)
    if failed:
        raise DockyardError(f"build failed for {', '.join(o.key for o in failed)}")


@task(help={"json": "Print the rows as JSON."})
def status(c, json_=False):
    """The container of every image: state, ports, uptime, image, up to date or not."""
    from ..status import format_rows, image_status

    project = project_of(c)
    rows = [image_status(project, spec) for spec in project.images.values()]
    print(json.dumps(rows, indent=2) if json_ else format_rows(rows))


@task(help={"json": "Print the resolved configuration as JSON."})
def config(c, json_=False):
    """Validate containers.toml and print the resolved configuration."""
    from ..graph import build_order

    project = project_of(c)
    resolved = resolved_config(project)
    if json_:
        print(json.dumps(resolved, indent=2))
        return
    print(f"project {project.name} ({project.path})")
    print(f"build order: {' -> '.join(build_order(project.images))}")
    for key, image in resolved["images"].items():
        print(f"\n[{key}]")
        for name, value in image.items():
            if name == "run":
                for run_key, run_value in value.items():
                    print(f"  run.{run_key} = {json.dumps(run_value)}")
            else:
                print(f"  {name} = {json.dumps(value)}")


def resolved_config(project) -> dict:
    images = {}
    for key, spec in project.images.items():
        run = spec.run
        image = {
            "tag": spec.ref, "dir": str(spec.dir), "parents": list(spec.parents),
            "build_args": dict(spec.build_args), "labels": dict(spec.labels),
        }
        if spec.base:
            image["base"] = {"pull": spec.base.pull, "rootfs": str(spec.base.rootfs) if spec.base.rootfs else None,
                             "changes": list(spec.base.changes)}
        else:
            image["dockerfile"] = spec.dockerfile
        image["run"] = {
            "name": run.name, "ports": [str(p) for p in run.ports], "environment": dict(run.environment),
            "command": list(run.command) if isinstance(run.command, tuple) else run.command,
            "user": run.user, "volumes": list(run.volumes), "workdir": run.workdir, "restart": run.restart, "init": run.init,
            "ready": None if run.ready is None else {"url": run.ready.url, "port": run.ready.port,
                                                     "timeout": run.ready.timeout},
        }
        images[key] = image
    return {"project": {"name": project.name, "path": str(project.path)}, "images": images}


@task(help=CLEAN_HELP)
def clean(c, dry_run=False, all_=False, yes=False, json_=False):
    """Remove this project's stopped containers and dangling images (--all: the host's)."""
    run_clean(project_of(c).name, None, dry_run=dry_run, all_=all_, yes=yes, as_json=json_)


@task(name="save", help=archive_help("PROJECT.tar"))
def save_all(c, output=None, force=False, json_=False, no_progress=False):
    """Write every image of the project that exists into one tar file, for `inv load` elsewhere."""
    from .. import engine
    from ..artifacts import save_image
    from ..builder import inspect_image

    project = project_of(c)
    refs = [spec.ref for spec in project.images.values() if inspect_image(spec.ref)]
    if not refs:
        raise DockyardError(f"no image of project {project.name} exists yet; build them with `inv build`")
    target = output or f"{project.name}.tar"
    result = save_image(engine.client(), refs, target, force=force, progress=not no_progress)
    if target != "-":
        report(result, f"saved {len(refs)} images to {target} ({size_text(result.size_bytes)}, "
                       f"{result.seconds:.1f}s)", json_)


TASKS = [build, status, config, clean, save_all, load]
