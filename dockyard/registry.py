"""Images to a registry and back: ``push`` tags the image with the registry's name and pushes
that tag; ``pull`` pulls it and tags it back as the image's own tag.

An image keeps its labels through a registry (they are in its config, whose digest is its
id), so a pulled image still carries the ``dockyard.key`` it was built with and `build` finds
it up to date. Credentials come from the Docker config file, read for each push and pull (a credential
helper through docker-py's ``docker.auth``); nothing here prints them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Iterator, TextIO
from urllib.parse import quote, urlencode

from . import engine
from .config import ImageSpec, registry_address
from .errors import DockyardError


def registry_of(*choices: tuple[str | None, str]) -> str:
    """The first registry given, as HOST[:PORT]: each choice is (value, where it came from)."""
    for value, source in choices:
        if value:
            try:
                return registry_address(value)
            except ValueError as e:
                raise DockyardError(f"{source}: {e}") from None
    raise DockyardError("no registry given: use --registry HOST:PORT, the setting dockyard.registry "
                        "or `registry = \"HOST:PORT\"` in containers.toml's [project]")


def remote_name(spec: ImageSpec, registry: str) -> tuple[str, str]:
    """(repository, tag) of the image in ``registry``: a registry host in the tag is replaced."""
    repository, _, tag = spec.ref.rpartition(":")
    first, slash, rest = repository.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        repository = rest
    return f"{registry}/{repository}", tag


class LayerProgress:
    """One line per layer whenever its status changes ("Pushing", "Pushed", ...): short in a
    log, and the byte counts the engine repeats many times a second are left out."""

    def __init__(self, key: str, tag: str, stream: TextIO | None) -> None:
        self.key, self.tag, self.stream = key, tag, stream
        self.seen: dict[str, str] = {}

    def message(self, message: dict) -> None:
        layer, status = message.get("id"), message.get("status")
        if not layer or not status or layer == self.tag or self.seen.get(layer) == status:
            return  # not a layer's: "Pulling from ..." names the tag
        self.seen[layer] = status
        if self.stream is not None:
            print(f"{self.key}: {layer}: {status}", file=self.stream, flush=True)

    def count(self, *statuses: str) -> int:
        """Layers whose last status begins with one of these."""
        return sum(status.startswith(statuses) for status in self.seen.values())


def push(spec: ImageSpec, registry: str, output: TextIO | None = None) -> dict:
    """Tag the image as REGISTRY/REPOSITORY:TAG and push that tag."""
    repository, tag = remote_name(spec, registry)
    remote = f"{repository}:{tag}"
    started = time.monotonic()
    progress = LayerProgress(spec.key, tag, output)
    what = f"push of {remote} to the registry {registry} failed"
    digest = None
    had = engine.inspect_image(remote)  # a tag the user has already: a failed push leaves it as it was
    try:
        for message in _engine_stream(
                [("POST", f"/images/{quote(spec.ref, safe='')}/tag", {"repo": repository, "tag": tag, "force": "1"},
                  f"tag {spec.ref} as {remote}", f"image {spec.ref} does not exist; build it with `inv {spec.key}.build`"),
                 ("POST", f"/images/{quote(repository, safe='')}/push", {"tag": tag}, what, None)], registry):
            _raise_on_error(message, what)
            digest = (message.get("aux") or {}).get("Digest") or digest
            progress.message(message)
    except BaseException:
        _undo_tag(spec, remote, had)
        raise
    return {"image": spec.key, "status": "pushed", "tag": spec.ref, "remote": remote, "registry": registry,
            "digest": digest, "layers_pushed": progress.count("Pushed"),
            "layers_existing": progress.count("Layer already exists", "Mounted from"),
            "seconds": round(time.monotonic() - started, 3)}


def _undo_tag(spec: ImageSpec, remote: str, had: dict | None) -> None:
    """After a failed push: the registry tag it made is removed (the tag only: the image keeps
    its own, so nothing is deleted), and one the user had points where it pointed before."""
    with contextlib.suppress(DockyardError):  # the engine gone too: the push's own error says so
        now = engine.inspect_image(remote)
        if now is None or (had is not None and had["Id"] == now["Id"]):
            return
        if had is not None:
            repository, _, tag = remote.rpartition(":")
            engine.request("POST", engine.query(f"/images/{had['Id']}/tag", repo=repository, tag=tag, force=True),
                           f"tag {engine.short_id(had['Id'])} as {remote} again", ok=(200, 201))
            return
        own = engine.inspect_image(spec.ref)
        if own is not None and own["Id"] == now["Id"]:  # the image has its own tag: this one is only a name
            engine.request("DELETE", engine.query(f"/images/{remote}", noprune=True), f"untag {remote}")


def pull(spec: ImageSpec, registry: str, output: TextIO | None = None) -> dict:
    """Pull REGISTRY/REPOSITORY:TAG and tag it as the image's own tag."""
    repository, tag = remote_name(spec, registry)
    remote = f"{repository}:{tag}"
    own_repository, _, own_tag = spec.ref.rpartition(":")
    started = time.monotonic()
    progress = LayerProgress(spec.key, tag, output)
    what = f"pull of {remote} from the registry {registry} failed"
    digest = None
    for message in _engine_stream(
            [("POST", "/images/create", {"fromImage": repository, "tag": tag}, what, None),
             ("POST", f"/images/{quote(remote, safe='')}/tag", {"repo": own_repository, "tag": own_tag, "force": "1"},
              f"tag {remote} as {spec.ref}", None)], registry):
        _raise_on_error(message, what)
        status = message.get("status") or ""
        if status.startswith("Digest: "):
            digest = status.removeprefix("Digest: ")
        progress.message(message)
    image = engine.get_json(f"/images/{quote(spec.ref, safe='')}/json", f"inspect image {spec.ref}")
    return {"image": spec.key, "status": "pulled", "tag": spec.ref, "remote": remote, "registry": registry,
            "digest": digest, "image_id": image["Id"], "layers_pulled": progress.count("Pull complete"),
            "layers_existing": progress.count("Already exists"), "seconds": round(time.monotonic() - started, 3)}


# A request: method, path, query, what a failure says, and what a 404 says (None: the engine's words).
Request = tuple[str, str, dict, str, "str | None"]


def _engine_stream(requests: list[Request], registry: str) -> Iterator[dict]:
    """The engine's JSON messages for these requests, in turn, on the engine's one client
    (on the local socket a push needs no docker-py, a quarter of a second, unless the config
    file's credentials need a helper program)."""
    auth = _plain_auth(registry) or engine.helper_auth(registry)
    for method, path, query, what, not_found in requests:
        try:
            yield from engine.messages(method, f"{path}?{urlencode(query)}", what, {"X-Registry-Auth": auth})
        except engine.Refused as e:
            if e.status == 404 and not_found:
                raise DockyardError(not_found) from None
            raise DockyardError(f"{what}: {' '.join(e.explanation.split())}") from None


def auth_header(repository: str) -> str:
    """X-Registry-Auth for a pull of ``repository`` (Docker Hub's when it names no registry
    host): from the config file's "auths", or its credential helper."""
    first, slash, _ = repository.partition("/")
    registry = first if slash and ("." in first or ":" in first or first == "localhost") else "index.docker.io/v1/"
    return _plain_auth(registry) or engine.helper_auth(registry)


def _plain_auth(registry: str) -> str | None:
    """X-Registry-Auth for ``registry`` from the Docker config file's "auths", as the docker
    CLI sends it ({} when it has none); None when a credential helper (credsStore,
    credHelpers) holds them: ``engine.helper_auth`` asks it. Never printed."""
    path = Path(os.environ.get("DOCKER_CONFIG") or "~/.docker").expanduser() / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        config = {}
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or config.get("credsStore") or (config.get("credHelpers") or {}).get(registry):
        return None
    auths = config.get("auths") or {}
    entry = next((auths[k] for k in (registry, f"http://{registry}", f"https://{registry}") if k in auths), None)
    credentials: dict = {}
    if isinstance(entry, dict) and entry.get("auth"):
        try:
            username, _, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        credentials = {"username": username, "password": password, "serveraddress": registry}
    elif isinstance(entry, dict) and entry.get("identitytoken"):
        credentials = {"identitytoken": entry["identitytoken"], "serveraddress": registry}
    return base64.urlsafe_b64encode(json.dumps(credentials).encode()).decode()


def _raise_on_error(message: dict, what: str) -> None:
    """The engine reports a failed push or pull inside the stream, after a 200."""
    error = message.get("error") or (message.get("errorDetail") or {}).get("message")
    if error:
        text = " ".join(str(error).split())
        raise DockyardError(f"{what}: {text if len(text) <= 300 else text[:300] + '...'}")
