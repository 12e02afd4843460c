"""Top-level tasks that span every image: ``inv build``, ``inv status``, ``inv config``, ..."""

from __future__ import annotations

import contextlib
import sys

from ..engine_choice import chosen
from ..errors import DockyardError
from ..graph import build_order
from ..masking import MASK, masked
from ..resolved import field_lines, resolved_config, setting_line
from .artifacts import (CLEAN_HELP, LOAD_HELP, archive_help, load, progress_wanted, report, run_clean,
                        written)
from .core import choose, counted, engine_line, number_setting, print_json, setting, task_options, warn
from .services import format_volumes
from .image import BUILD_HELP
from .swarm import deploy_rows


@task_options(help={
    **BUILD_HELP,
    "only": "Comma-separated image names to build (with their prerequisites); default: all.",
    "jobs": "How many independent images to build at once (setting: dockyard.jobs; 1).",
})
def build(c, target, only=None, jobs=None, force=False, no_cache=False, pull=False, quiet=False, json_=False):
    """Build every image (or --only some) in dependency order; up-to-date ones are skipped."""
    project = target.project(c)
    names = None
    if only is not None:
        names = [n.strip() for n in only.split(",") if n.strip()]
        if not names:
            raise DockyardError("--only: name at least one image, e.g. --only httpd,my-app")
    quiet, _ = choose(c, quiet, "quiet")
    outcomes = project.build(names, jobs=number_setting(c, jobs, "jobs", 1, 64) or 1, force=force,
                             no_cache=no_cache, pull=pull, quiet=bool(quiet),
                             output=sys.stderr if json_ else None, check=False)
    print_json(outcomes) if json_ else print(summary_table(outcomes))
    failed = [o["image"] for o in outcomes if o["status"] in ("failed", "skipped")]
    if failed:
        raise DockyardError(f"build failed for {', '.join(failed)}")


def summary_table(outcomes: list[dict]) -> str:
    width = max(len(o["image"]) for o in outcomes)
    lines = [f"  {o['image']:<{width}}  {o['status']:<10}  {o['seconds']:6.1f}s  {o['detail']}".rstrip()
             for o in outcomes]
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o["status"]] = counts.get(o["status"], 0) + 1
    order = ("built", "up to date", "failed", "skipped")
    head = ", ".join(f"{counts[s]} {s}" for s in order if s in counts)
    return "\n".join([f"build summary: {head}"] + lines)


@task_options(help={"json": "Print the rows as JSON."})
def status(c, target, json_=False):
    """The container of every image: state, ports, uptime, image, up to date or not; volumes."""
    from ..status import format_rows

    project = target.project(c)
    rows = project.status()
    warn(project.spec, deployed=[row["image"] for row in rows if row["service"]])
    if json_:
        print_json(rows)
        return
    print(engine_line(project.engine()))
    for line in image_engine_lines(project):
        print(line)
    print(format_rows(rows))
    if any(row["service"] for row in rows):  # Swarm services of ours: each task's node, state, address
        print("\n" + deploy_rows([row["service"] for row in rows if row["service"]]))
    volumes = project.volumes()
    if volumes:
        print("\n" + format_volumes(volumes))


@task_options(help={"json": "Print the resolved configuration as JSON."})
def config(c, target, json_=False):
    """Validate containers.toml and print the resolved configuration."""
    api = target.project(c)
    project = api.spec
    warn(project)
    resolved = resolved_config(project)
    resolved["engine"] = engine_in_use(api)
    for key, image in resolved["images"].items():
        image["engine"] = engine_in_use(api, key)
    resolved["registry"] = setting(c, "registry") or project.registry
    resolved = masked(resolved, project.masked_values)  # a secret interpolated anywhere
    if json_:
        print_json(resolved)
        return
    print(f"project {project.name} ({project.path})")
    print(engine_line(resolved["engine"]))
    if resolved["registry"]:
        print(f"registry: {resolved['registry']}")
    if project.secrets:
        print(f"secrets: {', '.join(project.secrets)} (values printed as {MASK})")
    print(f"build order: {' -> '.join(build_order(project.images))}")
    print()
    for name, value in field_lines(project, resolved["project"], "project."):
        print(setting_line(name, value))
    for key, image in resolved["images"].items():
        print(f"\n[{key}]")
        if image["engine"] != resolved["engine"]:  # said only where it differs from the project's
            print(f"  {engine_line(image['engine'])}")
        for name, value in field_lines(project.images[key], image):
            if name != "engine":
                print(f"  {setting_line(name, value)}")


def engine_in_use(project, image: str | None = None) -> dict:
    """The engine (of ``image``: that image's) and what chose it; a chosen context that does
    not exist is said, not raised, so that `config` still shows the rest."""
    try:
        return project.engine(image)
    except DockyardError as e:
        with project.on_engine_of(image) if image is not None else contextlib.nullcontext():
            choice = chosen()
        return {"address": None, "source": choice.source, "context": choice.value, "error": str(e)}


def image_engine_lines(project) -> list[str]:
    """`engine of IMAGE: ...` for each image worked on elsewhere than the project's engine."""
    default = engine_in_use(project)
    found = ((key, engine_in_use(project, key)) for key in project.images)
    return [f"{key} {engine_line(engine)}" for key, engine in found if engine != default]


@task_options(help={**CLEAN_HELP, "volumes": "Also the project's named volumes that no container left uses "
                                             "(never external ones; not with --all)."})
def clean(c, target, dry_run=False, all_=False, yes=False, json_=False, volumes=False):
    """Remove this project's stopped containers and dangling images (--all: the host's)."""
    if all_ and volumes:
        raise DockyardError("--volumes removes this project's volumes only; it does not go with --all")
    run_clean(target.project(c), None, dry_run=dry_run, all_=all_, yes=yes, as_json=json_, volumes=volumes)


@task_options(name="save", help=archive_help("PROJECT.tar"))
def save_all(c, target, output=None, force=False, json_=False, no_progress=False):
    """Write every image of the project that exists into one tar file, for `inv load` elsewhere."""
    result = target.project(c).save(None, output, force=force, progress=progress_wanted(c, no_progress))
    if result["path"] != "-":
        report(result, written(result, f"saved {counted(len(result['tags']), 'image')}"), json_)


@task_options(name="load", positional=["source"], help=LOAD_HELP)
def load_all(c, target, source, json_=False, no_progress=False):
    """Load images from a saved tar file; they keep their tags."""
    load(c, target, source, json_=json_, no_progress=no_progress)


TASKS = [build, status, config, clean, save_all, load_all]
