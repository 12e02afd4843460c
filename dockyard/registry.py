"""Images to a registry and back: ``push`` tags the image with the registry's name and pushes
that tag; ``pull`` pulls it and tags it back as the image's own tag.

An image keeps its labels through a registry (they are in its config, whose digest is its
id), so a pulled image still carries the ``dockyard.key`` it was built with and `build` finds
it up to date. Credentials come from the Docker config file (docker-py reads it for each
push and pull); nothing here prints them.
"""

from __future__ import annotations

import time
from typing import TextIO

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
    import docker

    repository, tag = remote_name(spec, registry)
    remote = f"{repository}:{tag}"
    started = time.monotonic()
    with engine.engine_errors(f"tag {spec.ref} as {remote}"):
        try:
            engine.client().api.tag(spec.ref, repository, tag, force=True)
        except docker.errors.NotFound:
            raise DockyardError(f"image {spec.ref} does not exist; build it with `inv {spec.key}.build`") from None
    progress = LayerProgress(spec.key, tag, output)
    digest = None
    with engine.engine_errors(f"push of {remote} to the registry {registry} failed"):
        for message in engine.client().api.push(repository, tag=tag, stream=True, decode=True):
            _raise_on_error(message, f"push of {remote} to the registry {registry} failed")
            digest = (message.get("aux") or {}).get("Digest") or digest
            progress.message(message)
    return {"image": spec.key, "status": "pushed", "tag": spec.ref, "remote": remote, "registry": registry,
            "digest": digest, "layers_pushed": progress.count("Pushed"), "layers_existing": progress.count("Layer already exists", "Mounted from"),
            "seconds": round(time.monotonic() - started, 3)}


def pull(spec: ImageSpec, registry: str, output: TextIO | None = None) -> dict:
    """Pull REGISTRY/REPOSITORY:TAG and tag it as the image's own tag."""
    repository, tag = remote_name(spec, registry)
    remote = f"{repository}:{tag}"
    started = time.monotonic()
    progress = LayerProgress(spec.key, tag, output)
    digest = None
    with engine.engine_errors(f"pull of {remote} from the registry {registry} failed"):
        api = engine.client().api
        for message in api.pull(repository, tag=tag, stream=True, decode=True):
            _raise_on_error(message, f"pull of {remote} from the registry {registry} failed")
            status = message.get("status") or ""
            if status.startswith("Digest: "):
                digest = status.removeprefix("Digest: ")
            progress.message(message)
        own_repository, _, own_tag = spec.ref.rpartition(":")
        api.tag(remote, own_repository, own_tag, force=True)
        image_id = api.inspect_image(spec.ref)["Id"]
    return {"image": spec.key, "status": "pulled", "tag": spec.ref, "remote": remote, "registry": registry,
            "digest": digest, "image_id": image_id, "layers_pulled": progress.count("Pull complete"),
            "layers_existing": progress.count("Already exists"), "seconds": round(time.monotonic() - started, 3)}


def _raise_on_error(message: dict, what: str) -> None:
    """The engine reports a failed push or pull inside the stream, after a 200."""
    error = message.get("error") or (message.get("errorDetail") or {}).get("message")
    if error:
        text = " ".join(str(error).split())
        raise DockyardError(f"{what}: {text if len(text) <= 300 else text[:300] + '...'}")
