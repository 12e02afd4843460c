"""Tasks that move an image's work around and tidy up: commit, export, import, save, load, rm, clean.

Archives stream in chunks with a progress bar on a terminal, land atomically, and each
task prints one line a human reads at a glance, or ``--json`` for release scripts.
"""

from __future__ import annotations

import sys

from ..errors import DockyardError
from .core import choose, counted, print_json, task_options


def archive_help(default: str) -> dict[str, str]:
    """Help for the flags every archive-writing task shares."""
    return {
        "output": f"The tar file to write ('.gz' compresses; '-' is stdout). Default: {default}.",
        "force": "Replace the file if it exists.",
        "json": "Print the result as JSON.",
        "no-progress": "No progress bar (setting: dockyard.progress).",
    }


def progress_wanted(c, no_progress: bool) -> bool:
    enabled, _ = choose(c, None, "progress")
    return not no_progress and bool(enabled)


def human_size(size: int) -> str:
    from ..cleanup import human_size

    return human_size(size)


def short_id(object_id: str) -> str:
    from ..engine import short_id

    return short_id(object_id)


def report(result: dict, line: str, as_json: bool) -> None:
    print_json(result) if as_json else print(line)


def written(result: dict, what: str) -> str:
    return f"{what} to {result['path']} ({human_size(result['size_bytes'])}, {result['seconds']:.1f}s)"


@task_options(iterable=["change"], help={
    "tag": "The new image's tag (default: the image's repository, tagged with the time).",
    "message": "A commit message.",
    "author": "The author, e.g. 'Jane <jane@example.com>'.",
    "change": "A Dockerfile instruction to apply, e.g. 'CMD [\"sh\"]' (repeatable).",
    "json": "Print the result as JSON.",
})
def commit(c, target, tag=None, message=None, author=None, change=None, json_=False):
    """Save this image's container (running or stopped) as a new image."""
    project = target.project(c)
    result = project.commit(target.key, tag=tag, message=message, author=author, changes=change or [])
    name = project.image(target.key).run.name
    report(result, f"committed {name} as {result['tags'][0]} ({short_id(result['ids'][0])}, "
                   f"{human_size(result['size_bytes'])})", json_)


@task_options(help=archive_help("CONTAINER-NAME.tar"))
def export(c, target, output=None, force=False, json_=False, no_progress=False):
    """Write this image's container's filesystem to a tar file, streamed."""
    project = target.project(c)
    result = project.export(target.key, output, force=force, progress=progress_wanted(c, no_progress))
    if result["path"] != "-":
        report(result, written(result, f"exported {project.image(target.key).run.name}"), json_)


@task_options(name="import", positional=["source"], iterable=["change"], help={
    "source": "The tar file to import ('.gz' too; '-' is stdin).",
    "tag": "The tag to give it (default: this image's tag).",
    "change": "A Dockerfile instruction to apply, e.g. 'CMD [\"sh\"]' (repeatable).",
    "message": "A commit message for the imported image.",
    "json": "Print the result as JSON.",
    "no-progress": "No progress bar (setting: dockyard.progress).",
})
def import_(c, target, source, tag=None, change=None, message=None, json_=False, no_progress=False):
    """Make an image from a filesystem tar (like `docker import`), streamed from disk."""
    result = target.project(c).import_(target.key, source, tag=tag, changes=change or [], message=message,
                                       progress=progress_wanted(c, no_progress))
    report(result, f"imported {source} as {result['tags'][0]} ({short_id(result['ids'][0])})", json_)


@task_options(help=archive_help("IMAGE.tar"))
def save(c, target, output=None, force=False, json_=False, no_progress=False):
    """Write this image, its layers and tags to a tar file (like `docker save`), streamed."""
    project = target.project(c)
    result = project.save([target.key], output, force=force, progress=progress_wanted(c, no_progress))
    if result["path"] != "-":
        report(result, written(result, f"saved {project.image(target.key).ref}"), json_)


LOAD_HELP = {
    "source": "A tar file written by `save` or `docker save` ('.gz' too; '-' is stdin).",
    "json": "Print the result as JSON.",
    "no-progress": "No progress bar (setting: dockyard.progress).",
}


@task_options(positional=["source"], help=LOAD_HELP)
def load(c, target, source, json_=False, no_progress=False):
    """Load this image from a saved tar file (only its own tag is set)."""
    result = target.project(c).load(source, target.key, progress=progress_wanted(c, no_progress))
    loaded = ", ".join(result["tags"]) or ", ".join(short_id(i) for i in result["ids"])
    report(result, f"loaded {loaded} from {source}", json_)


@task_options(help={"force": "Remove it even if it is running.", "json": "Print the result as JSON."})
def rm(c, target, force=False, json_=False):
    """Remove this image's container (ours only); a running one needs --force."""
    result = target.project(c).rm(target.key, force=force)
    if json_:
        print_json(result)
    else:
        print(f"removed {result['name']}" if result["removed"] else f"no container named {result['name']}")


CLEAN_HELP = {
    "dry-run": "Only list what would be removed.",
    "all": "Every stopped container and dangling image on the host, not only this project's "
           "(asks first). BuildKit's build cache is no image: `docker builder prune` frees it.",
    "yes": "Do not ask for confirmation with --all.",
    "json": "Print what was removed as JSON.",
}


def run_clean(project, image: str | None, *, dry_run: bool, all_: bool, yes: bool, as_json: bool,
              volumes: bool = False) -> None:
    """Shared by `inv clean` and `inv IMAGE.clean`."""
    if all_ and not dry_run and not yes:
        found = project.clean(image, dry_run=True, everything=True)
        question = (f"Remove every stopped container ({len(found['containers'])}) and dangling image "
                    f"({len(found['images'])}) on this host, not only project {project.name}'s? [y/N] ")
        if not sys.stdin.isatty():
            raise DockyardError("--all removes other people's containers and images too; "
                                "confirm with --yes when not at a terminal")
        if input(question).strip().lower() not in ("y", "yes"):
            raise DockyardError("nothing removed")
    result = project.clean(image, dry_run=dry_run, everything=all_, volumes=volumes)
    if as_json:
        print_json(result)
        return
    verb = "would remove" if dry_run else "removed"
    for container in result["containers"]:
        print(f"{verb} container {container['name']} ({short_id(container['id'])})")
    for image_row in result["images"]:
        print(f"{verb} image {short_id(image_row['id'])} ({human_size(image_row['size'])})")
    for volume in result.get("volumes", []):
        print(f"{verb} volume {volume['name']}")
    for kept in result.get("kept", []):  # dangling, but a swarm service runs it (or rolls back to it)
        print(f"kept image {short_id(kept['id'])}: service {kept['service']} uses it")
    space = "" if dry_run else f", {human_size(result['space_reclaimed'])} reclaimed"
    print(f"{verb} {counted(len(result['containers']), 'stopped container')} and "
          f"{counted(len(result['images']), 'dangling image')}{space}")
    if all_:  # a BuildKit build leaves no dangling layers, but a cache the engine keeps apart
        print("BuildKit's build cache is the engine's, not images: `docker builder prune` frees it")


@task_options(name="clean", help={**CLEAN_HELP, "volumes": "Also the project's named volumes this image mounts "
                                                            "that no container left uses (never external ones)."})
def clean_image(c, target, dry_run=False, all_=False, yes=False, json_=False, volumes=False):
    """Remove this image's stopped containers and dangling images (--volumes: its volumes too)."""
    if all_ and volumes:
        raise DockyardError("--volumes removes this project's volumes only; it does not go with --all")
    run_clean(target.project(c), target.key, dry_run=dry_run, all_=all_, yes=yes, as_json=json_, volumes=volumes)


TASKS = [commit, export, import_, save, load, rm, clean_image]
