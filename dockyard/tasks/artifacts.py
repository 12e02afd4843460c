"""Tasks that move an image's work around and tidy up: commit, export, import, save, load, rm, clean.

Archives stream in chunks with a progress bar on a terminal, land atomically, and each
task prints one line a human reads at a glance, or ``--json`` for release scripts.
"""

from __future__ import annotations

import json
import sys
import time

from invoke import task

from ..config import normalize_ref
from ..errors import DockyardError
from .image import spec_of


def archive_help(default: str) -> dict[str, str]:
    """Help for the flags every archive-writing task shares."""
    return {
        "output": f"The tar file to write ('.gz' compresses; '-' is stdout). Default: {default}.",
        "force": "Replace the file if it exists.",
        "json": "Print the result as JSON.",
        "no-progress": "No progress bar.",
    }


def report(result, line: str, as_json: bool) -> None:
    print(json.dumps(result.to_json(), indent=2) if as_json else line)


def size_text(size: int) -> str:
    from ..cleanup import human_size

    return human_size(size)


@task(iterable=["change"], help={
    "tag": "The new image's tag (default: the image's repository, tagged with the time).",
    "message": "A commit message.",
    "author": "The author, e.g. 'Jane <jane@example.com>'.",
    "change": "A Dockerfile instruction to apply, e.g. 'CMD [\"sh\"]' (repeatable).",
    "json": "Print the result as JSON.",
})
def commit(c, tag=None, message=None, author=None, change=None, json_=False):
    """Save this image's container (running or stopped) as a new image."""
    from .. import engine
    from ..artifacts import commit_container
    from ..containers import owned
    from ..labels import KEY, OWNER

    project, spec = spec_of(c)
    owned(project, spec)  # refuses a container of that name that is not ours
    target = normalize_ref(tag.rstrip(":")) if tag else f"{spec.repository}:{time.strftime('%Y%m%d-%H%M%S')}"
    repository, _, version = target.rpartition(":")
    # The container carries its image's build key and our ownership label; a commit is
    # neither that build nor a container, so both are cleared on the new image.
    result = commit_container(engine.client(), spec.run.name, repository=repository, tag=version,
                              message=message, author=author, changes=list(change or []),
                              labels={KEY: "", OWNER: ""})
    report(result, f"committed {spec.run.name} as {result.tags[0]} ({result.ids[0][7:19]}, "
                   f"{size_text(result.size_bytes)})", json_)


@task(help=archive_help("CONTAINER-NAME.tar"))
def export(c, output=None, force=False, json_=False, no_progress=False):
    """Write this image's container's filesystem to a tar file, streamed."""
    from .. import engine
    from ..artifacts import export_container
    from ..containers import owned

    project, spec = spec_of(c)
    container = owned(project, spec)
    target = output or f"{spec.run.name}.tar"
    result = export_container(engine.client(), container["Id"], target, force=force, progress=not no_progress)
    if target != "-":
        report(result, f"exported {spec.run.name} to {target} ({size_text(result.size_bytes)}, "
                       f"{result.seconds:.1f}s)", json_)


@task(name="import", positional=["source"], iterable=["change"], help={
    "source": "The tar file to import ('.gz' too; '-' is stdin).",
    "tag": "The tag to give it (default: this image's tag).",
    "change": "A Dockerfile instruction to apply, e.g. 'CMD [\"sh\"]' (repeatable).",
    "message": "A commit message for the imported image.",
    "json": "Print the result as JSON.",
    "no-progress": "No progress bar.",
})
def import_(c, source, tag=None, change=None, message=None, json_=False, no_progress=False):
    """Make an image from a filesystem tar (like `docker import`), streamed from disk."""
    from .. import engine
    from ..artifacts import import_image
    from ..labels import IMAGE, PROJECT

    project, spec = spec_of(c)
    result = import_image(engine.client(), source, tag=tag or spec.ref, changes=list(change or []),
                          message=message, progress=not no_progress,
                          labels={PROJECT: project.name, IMAGE: spec.key})
    report(result, f"imported {source} as {result.tags[0]} ({result.ids[0][7:19]})", json_)


@task(help=archive_help("IMAGE.tar"))
def save(c, output=None, force=False, json_=False, no_progress=False):
    """Write this image, its layers and tags to a tar file (like `docker save`), streamed."""
    from .. import engine
    from ..artifacts import save_image

    project, spec = spec_of(c)
    target = output or f"{spec.key}.tar"
    result = save_image(engine.client(), spec.ref, target, force=force, progress=not no_progress)
    if target != "-":
        report(result, f"saved {spec.ref} to {target} ({size_text(result.size_bytes)}, {result.seconds:.1f}s)", json_)


@task(positional=["source"], help={
    "source": "A tar file written by `save` or `docker save` ('.gz' too; '-' is stdin).",
    "json": "Print the result as JSON.",
    "no-progress": "No progress bar.",
})
def load(c, source, json_=False, no_progress=False):
    """Load images from a saved tar file; they keep their tags."""
    from .. import engine
    from ..artifacts import load_image

    result = load_image(engine.client(), source, progress=not no_progress)
    report(result, f"loaded {', '.join(result.tags) or ', '.join(i[7:19] for i in result.ids)} from {source}",
           json_)


@task(help={"force": "Remove it even if it is running."})
def rm(c, force=False):
    """Remove this image's container (ours only); a running one needs --force."""
    from .. import engine
    from ..containers import owned

    project, spec = spec_of(c)
    container = owned(project, spec, required=False)
    if container is None:
        print(f"no container named {spec.run.name}")
        return
    if container["State"]["Running"] and not force:
        raise DockyardError(f"{spec.run.name} is running; stop it first (`inv {spec.key}.stop`) or use --force")
    with engine.engine_errors(f"remove {spec.run.name}"):
        engine.client().api.remove_container(container["Id"], force=force)
    print(f"removed {spec.run.name}")


CLEAN_HELP = {
    "dry-run": "Only list what would be removed.",
    "all": "Every stopped container and dangling image on the host, not only this project's "
           "(asks first).",
    "yes": "Do not ask for confirmation with --all.",
    "json": "Print what was removed as JSON.",
}


def run_clean(project_name: str, image: str | None, *, dry_run: bool, all_: bool, yes: bool, as_json: bool) -> None:
    """Shared by `inv clean` and `inv IMAGE.clean`."""
    from ..cleanup import Scope, clean, human_size, plan

    scope = Scope(None) if all_ else Scope(project_name, image)
    if all_ and not dry_run and not yes:
        found = plan(scope)
        question = (f"Remove every stopped container ({len(found.containers)}) and dangling image "
                    f"({len(found.images)}) on this host, not only project {project_name}'s? [y/N] ")
        if not sys.stdin.isatty():
            raise DockyardError("--all removes other people's containers and images too; "
                                "confirm with --yes when not at a terminal")
        if input(question).strip().lower() not in ("y", "yes"):
            raise DockyardError("nothing removed")
    result = clean(scope, dry_run=dry_run)
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
        return
    verb = "would remove" if dry_run else "removed"
    for container in result.containers:
        print(f"{verb} container {container['name']} ({container['id'][:12]})")
    for image in result.images:
        print(f"{verb} image {image['id'][7:19]} ({human_size(image['size'])})")
    space = "" if dry_run else f", {human_size(result.space_reclaimed)} reclaimed"
    print(f"{verb} {len(result.containers)} stopped containers and {len(result.images)} dangling images{space}")


@task(name="clean", help=CLEAN_HELP)
def clean_image(c, dry_run=False, all_=False, yes=False, json_=False):
    """Remove this image's stopped containers and dangling images."""
    project, spec = spec_of(c)
    run_clean(project.name, spec.key, dry_run=dry_run, all_=all_, yes=yes, as_json=json_)


TASKS = [commit, export, import_, save, load, rm, clean_image]
