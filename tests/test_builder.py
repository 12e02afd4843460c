"""What a no-op build asks of the engine: one inspect per image it needs, and nothing else
(no engine: the answers are made up here, with the keys the images would carry)."""

from __future__ import annotations

import io

from dockyard import builder
from dockyard.builder import BuildOptions, Output, _Session, base_key, image_key
from dockyard.config import load
from dockyard.graph import build_order, normalize_ref
from dockyard.labels import IMAGE, KEY, PROJECT

from conftest import make_project


class FakeEngine:
    """Answers image inspects from a dict of normalized ref -> (id, labels), and counts them."""

    def __init__(self) -> None:
        self.images: dict[str, tuple[str, dict[str, str]]] = {}
        self.paths: list[str] = []

    def get_json(self, path: str, what: str, *, missing: bool = False):
        self.paths.append(path)
        ref = path.removeprefix("/images/").removesuffix("/json")
        if ref not in self.images:
            return None
        image_id, labels = self.images[ref]
        return {"Id": image_id, "Config": {"Labels": labels}}


def test_a_no_op_build_makes_one_inspect_per_image_and_nothing_else(tmp_path, monkeypatch):
    project = load(make_project(tmp_path / "project").root / "containers.toml")
    fake = FakeEngine()
    monkeypatch.setattr(builder.engine, "get_json", fake.get_json)
    # Every image as the engine would have it after a build: tagged, carrying its key.
    for number, key in enumerate(build_order(project.images, None)):
        spec = project.images[key]
        session = _Session(project, BuildOptions(), Output(io.StringIO()))
        build_key = base_key(spec) if spec.base is not None else image_key(session, spec)[0]
        fake.images[normalize_ref(spec.ref)] = (f"sha256:{number:064x}", {
            **dict(spec.labels), PROJECT: project.name, IMAGE: key, KEY: build_key})
    fake.paths.clear()
    outcomes = builder.build(project, None, BuildOptions(quiet=True), Output(io.StringIO()))
    assert [outcome.status for outcome in outcomes] == [builder.UP_TO_DATE] * len(project.images)
    assert sorted(fake.paths) == sorted(f"/images/{ref}/json" for ref in fake.images)
