"""Export, save, import, load and commit images with flat memory use.

docker-py's conveniences do not fit big archives: ``images.load`` is documented
to take bytes, ``import_image(src=path)`` treats a missing file as a URL to
fetch, ``load_image`` reports a broken tar as HTTP 200 plus an ``error`` line,
and ``get_image`` gives up if the daemon's first byte takes longer than the
client's timeout (60 s by default; a big save takes that long). So this module talks
to the endpoints itself (through ``engine.download``/``upload``): downloads go
chunk by chunk to an output of ``archive_writing``, uploads stream an archive that
``archive_reading`` has checked, and every failure becomes one DockyardError that names
the file or object.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import engine
from .archive_reading import SavedImages, Upload, guarded_body, open_upload
from .archive_writing import Writer, check_target, open_output
from .errors import DockyardError
from .graph import normalize_ref
from .labels import label_instruction
from .progress import meter

# Largest piece read at once. The daemon sends 32 KiB HTTP chunks, which
# are passed on as they come (cheapest in CPU, measured).
CHUNK_SIZE = 1 << 20


@dataclass
class ArtifactResult:
    """What an export/save/import/load/commit produced, for printing or --json."""

    kind: str  # "export" | "save" | "import" | "load" | "commit"
    path: str | None  # the archive written or read; "-" for stdout/stdin
    ids: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    size_bytes: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- downloads: export and save ---------------------------------------------


def export_container(
    container: str,
    target: str | Path,
    *,
    force: bool = False,
    progress: bool = True,
) -> ArtifactResult:
    """Write a container's filesystem as a tar (gzip if ``target`` ends in .gz; '-' = stdout)."""
    started = time.monotonic()
    destination = check_target(target, force)
    info = engine.get_json(engine.query(f"/containers/{container}/json"),
                           f"cannot export container {container} to {target}")
    container_id, name = info["Id"], info["Name"].lstrip("/")
    with open_output(destination, force) as out:
        answer = engine.download(f"/containers/{container_id}/export", f"cannot export container {name} to {target}")
        _pump(answer, out.writer, total=None, desc=f"export {name}", progress=progress)
    return ArtifactResult("export", str(target), [container_id], [], out.size,
                          time.monotonic() - started)


def save_image(
    image: str | Sequence[str],
    target: str | Path,
    *,
    force: bool = False,
    progress: bool = True,
) -> ArtifactResult:
    """Write image(s) with layers, config and tags in ``docker save`` format."""
    started = time.monotonic()
    names = [image] if isinstance(image, str) else list(image)
    if not names:
        raise DockyardError("save: name at least one image")
    destination = check_target(target, force)
    what = f"cannot save {', '.join(names)} to {target}"
    with open_output(destination, force) as out:
        inspected = {name: engine.get_json(engine.query(f"/images/{name}/json"), what) for name in names}
        # Sizes of the distinct images: a fair estimate of the archive for the bar.
        sizes = {info["Id"]: info.get("Size") or 0 for info in inspected.values()}
        answer = engine.download(engine.query("/images/get", names=names), what)
        _pump(answer, out.writer, total=sum(sizes.values()) or None,
              desc=f"save {names[0]}" + (" ..." if len(names) > 1 else ""), progress=progress)
    tags = [tag for name, info in inspected.items() for tag in _saved_tags(name, info)]
    return ArtifactResult("save", str(target), list(sizes), tags, out.size,
                          time.monotonic() - started)


def _saved_tags(name: str, info: dict[str, Any]) -> list[str]:
    """Tags the archive carries for ``name``: an ID carries none, a bare repo all of its."""
    repo_tags: list[str] = info.get("RepoTags") or []
    if name in repo_tags:
        return [name]
    return [tag for tag in repo_tags if tag.rsplit(":", 1)[0] == name]


def _pump(answer: engine.Answer, out: Writer, *, total: int | None, desc: str,
          progress: bool) -> int:
    """Copy the answer's body to ``out`` chunk by chunk; return the bytes received."""
    received = 0
    with answer, meter(total, desc, progress) as bar:
        for chunk in answer.pieces(CHUNK_SIZE):
            out.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    return received


# --- uploads: import and load ------------------------------------------------


def import_image(
    source: str | Path,
    *,
    tag: str | None,
    changes: Sequence[str] = (),
    message: str | None = None,
    labels: dict[str, str] | None = None,
    progress: bool = True,
) -> ArtifactResult:
    """Make an image from a filesystem tar (plain or compressed; '-' = stdin), like ``docker import``."""
    started = time.monotonic()
    all_changes = [*changes, *_label_changes(labels)]
    params: dict[str, Any] = {"fromSrc": "-", "changes": all_changes or None,
                              "message": message}
    tags = []
    if tag:
        repository, version = _split_tag(tag)
        params["repo"], params["tag"] = repository, version or "latest"
        tags = [f"{repository}:{version or 'latest'}"]
    with open_upload(source) as upload:
        events = _send_upload("/images/create", params, upload,
                              what=f"cannot import {upload.name}",
                              desc=f"import {upload.name}", progress=progress)
    image_ids = [event["status"] for event in events
                 if str(event.get("status", "")).startswith("sha256:")]
    if not image_ids:
        raise DockyardError(f"cannot import {upload.name}: the engine reported no image ID")
    return ArtifactResult("import", str(source), image_ids[-1:], tags,
                          upload.sent, time.monotonic() - started)


def load_image(source: str | Path, *, progress: bool = True, only: str | None = None,
               allowed: Collection[str] | None = None) -> ArtifactResult:
    """Load images from a ``docker save`` archive (plain or compressed; '-' = stdin), keeping tags.

    ``only``: the archive must hold one image, untagged or tagged ``only``, and it is loaded
    as ``only``. ``allowed``: every tag the archive carries must be one of these. Either way
    an archive that would move another tag is refused before its last chunk is sent, so the
    engine loads nothing."""
    started = time.monotonic()
    with open_upload(source) as upload:
        what = f"cannot load {upload.name}"
        guard = None if only is None and allowed is None else \
            (lambda images: _check_tags(images, what, only, allowed))
        try:
            events = _send_upload("/images/load", {"quiet": "1"}, upload,
                                  what=what, desc=f"load {upload.name}", progress=progress, guard=guard)
        except DockyardError as e:
            if not _lacks_image_metadata(str(e)):
                raise
            raise DockyardError(_not_of_images(what)) from None
    tags, ids = [], []
    for event in events:
        line = str(event.get("stream", "")).strip()
        if line.startswith("Loaded image ID: "):
            ids.append(line.removeprefix("Loaded image ID: "))
        elif line.startswith("Loaded image: "):
            tags.append(line.removeprefix("Loaded image: "))
    if not tags and not ids:
        raise DockyardError(f"{what}: the engine loaded no image; is it a `docker save` archive?")
    if only is not None and not tags:  # untagged in the archive: it becomes this image
        repository, version = _split_tag(only)
        engine.tag_image(ids[-1], repository, version or "latest", what)
        tags = [only]
    ids += [engine.get_json(engine.query(f"/images/{tag}/json"), what)["Id"] for tag in tags]
    return ArtifactResult("load", str(source), list(dict.fromkeys(ids)), tags,
                          upload.sent, time.monotonic() - started)


def _not_of_images(what: str) -> str:
    return (f"{what}: it is a tar archive but not of images (no manifest.json or repositories "
            "file inside, as `save` writes); a container's filesystem from `export` goes in "
            "with `import`")


def _check_tags(images: SavedImages, what: str, only: str | None,
                allowed: Collection[str] | None) -> None:
    """Refuse an archive that would set a tag that is not ``only`` (or not ``allowed``)."""
    count, tags = images.image_count(), images.tags()
    if count == 0:
        raise DockyardError(_not_of_images(what))
    anyway = f"to load it with every tag it carries, use plain `docker load -i {images.name}`" \
        if images.name != "stdin" else "to load it with every tag it carries, use plain `docker load`"
    carried = ", ".join(tags) if tags else "no tags"
    if only is not None and count > 1:
        raise DockyardError(f"{what} as {only}: it holds {count} images ({carried}), and this "
                            f"load takes one image, tagged as its own; {anyway}")
    wanted = {normalize_ref(tag) for tag in ([only] if only is not None else allowed or ())}
    foreign = [tag for tag in tags if normalize_ref(tag) not in wanted]
    if foreign:
        whose = f"this image's ({only})" if only is not None else "one of this project's images'"
        raise DockyardError(f"{what}{'' if only is None else ' as ' + only}: it carries the tag"
                            f"{'s' if len(foreign) > 1 else ''} {', '.join(foreign)}, not "
                            f"{whose}, and loading it would set {'them' if len(foreign) > 1 else 'it'}; "
                            f"{anyway}")


def _lacks_image_metadata(message: str) -> bool:
    """The engine's words for a load of a tar without image metadata: it unpacks the tar
    into a ``docker-import-*`` directory and finds no ``manifest.json``, ``repositories``
    or ``ID/json`` there."""
    return "no such file" in message and any(
        sign in message for sign in ("/docker-import-", "/repositories", "manifest.json"))


def _send_upload(
    endpoint: str,
    params: dict[str, Any],
    upload: Upload,
    *,
    what: str,
    desc: str,
    progress: bool,
    guard: Callable[[SavedImages], None] | None = None,
) -> list[dict[str, Any]]:
    """POST the archive as the request body and return the engine's JSON messages; with a
    ``guard``, the archive's metadata must pass it before the last chunk goes."""
    with meter(upload.size, desc, progress) as bar:
        body = upload.body(bar) if guard is None else guarded_body(upload, bar, guard)
        with engine.upload(engine.query(endpoint, **params), what, body, "application/x-tar") as answer:
            return _read_messages(answer, what)


def _read_messages(answer: engine.Answer, what: str) -> list[dict[str, Any]]:
    """The engine's JSON messages; an ``error`` one (sent with HTTP 200) is a failure."""
    messages = []
    for message in answer.messages():
        if "error" in message or "errorDetail" in message:
            detail = (message.get("errorDetail") or {}).get("message") or message.get("error")
            raise DockyardError(f"{what}: {detail}")
        messages.append(message)
    return messages


# --- commit ------------------------------------------------------------------


def commit_container(
    container: str,
    *,
    repository: str,
    tag: str,
    message: str | None = None,
    author: str | None = None,
    changes: Sequence[str] = (),
    labels: dict[str, str] | None = None,
) -> ArtifactResult:
    """Make an image ``repository:tag`` from a container's current filesystem."""
    started = time.monotonic()
    all_changes = [*changes, *_label_changes(labels)]
    what = f"cannot commit container {container} as {repository}:{tag}"
    # No read timeout: committing a big container takes minutes.
    image_id = engine.request("POST", engine.query(
        "/commit", container=container, repo=repository, tag=tag, comment=message, author=author,
        changes=all_changes or None, pause=True), what, ok=(200, 201), longer_by=None)["Id"]
    size = engine.get_json(engine.query(f"/images/{image_id}/json"), what).get("Size") or 0
    return ArtifactResult("commit", None, [image_id], [f"{repository}:{tag}"], size,
                          time.monotonic() - started)


# --- shared ------------------------------------------------------------------


def _label_changes(labels: dict[str, str] | None) -> list[str]:
    """Our labels as one ``LABEL`` change, quoted so spaces, quotes and $ survive."""
    for key, value in (labels or {}).items():
        if "\n" in key or "\n" in value:
            raise DockyardError(f"label {key!r}: newlines are not allowed in labels")
    return [label_instruction(labels)] if labels else []


def _split_tag(reference: str) -> tuple[str, str | None]:
    """(repository, tag or digest, or None), as docker-py's ``parse_repository_tag``: a
    colon in the last part only (host:port/name has none after it)."""
    repository, at, digest = reference.rpartition("@")
    if at:
        return repository, digest
    repository, colon, tag = reference.rpartition(":")
    if colon and "/" not in tag:
        return repository, tag
    return reference, None
