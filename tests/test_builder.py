"""The build session's questions to the engine: many images in one listing of the project's,
a few by one inspect each (no engine: the answers are made up here)."""

from __future__ import annotations

import io
from types import SimpleNamespace

from dockyard import builder
from dockyard.builder import BuildOptions, Output, _Session

class FakeEngine:
    """Answers the image requests of a session from a dict, and counts them."""

    def __init__(self, ours: dict[str, str], others: dict[str, str]) -> None:
        self.ours, self.others, self.paths = ours, others, []

    def get_json(self, path: str, what: str, *, missing: bool = False):
        self.paths.append(path)
        if path.startswith("/images/json?"):
            return [{"Id": image_id, "RepoTags": [ref], "Labels": {"dockyard.project": "p"}}
                    for ref, image_id in self.ours.items()] + [{"Id": "sha256:dangling",
                                                                "RepoTags": ["<none>:<none>"], "Labels": None}]
        ref = path.removeprefix("/images/").removesuffix("/json")
        if ref in self.ours:
            return {"Id": self.ours[ref], "Config": {"Labels": {"dockyard.project": "p"}}}
        if ref in self.others:
            return {"Id": self.others[ref], "Config": {"Labels": None}}
        return None


def session_over(fake: FakeEngine, monkeypatch) -> _Session:
    monkeypatch.setattr(builder.engine, "get_json", fake.get_json)
    return _Session(SimpleNamespace(name="p"), BuildOptions(), Output(io.StringIO()))


def test_many_images_are_asked_of_the_engine_in_one_listing(monkeypatch):
    ours = {f"p/i{i:02d}:latest": f"sha256:{i:064x}" for i in range(builder.LIST_FROM + 4)}
    fake = FakeEngine(ours, others={"busybox:latest": "sha256:" + "b" * 64})
    session = session_over(fake, monkeypatch)
    refs = [ref.removesuffix(":latest") for ref in ours] + ["busybox", "p/missing"]
    session.prefetch(refs)
    assert [p.partition("?")[0] for p in fake.paths] == ["/images/json", "/images/busybox:latest/json",
                                                          "/images/p/missing:latest/json"]
    assert "dockyard.project%3Dp" in fake.paths[0]
    # What the listing said is what an inspect of each says.
    listed = dict(session.images)
    fake.paths.clear()
    inspected = {ref: builder._inspect(ref) for ref in listed}
    assert listed == inspected
    assert session.image("p/i03") == {"Id": ours["p/i03:latest"], "Labels": {"dockyard.project": "p"}}
    assert session.image("p/missing") is None


def test_a_few_images_are_inspected_one_each(monkeypatch):
    ours = {f"p/i{i}:latest": f"sha256:{i:064x}" for i in range(4)}
    fake = FakeEngine(ours, others={})
    session = session_over(fake, monkeypatch)
    session.prefetch(list(ours))
    assert sorted(fake.paths) == sorted(f"/images/{ref}/json" for ref in ours)
