"""What a no-op build asks of the engine: one inspect per image it needs, and nothing else
(no engine: the answers are made up here, with the keys the images would carry)."""

from __future__ import annotations

import io
import threading

import pytest

from dockyard import builder
from dockyard.builder import BuildOptions, Output, _Session, base_key, image_key
from dockyard.config import load
from dockyard.errors import DockyardError
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


def test_a_build_stream_the_engine_ends_without_an_image_says_the_engine_went_away_during_the_build(tmp_path):
    """An engine killed mid-build can end BuildKit's stream with no error and no image id: what
    follows finds no engine, and says so as the end of that build (no engine here at all; in a
    process of its own, since docker-py leaves a socket open when it finds none)."""
    import subprocess
    import sys

    root = make_project(tmp_path / "project").root
    script = """
from dockyard import builder, engine
from dockyard.builder import BuildOptions, Output, _Session
from dockyard.config import load
from dockyard.errors import DockyardError
project = load("containers.toml")
spec = project.images["httpd"]
engine.build_stream = lambda context, params, started: iter([])
try:
    builder._stream_build(_Session(project, BuildOptions(), Output()), spec, None, {}, with_buildkit=True)
except DockyardError as e:
    print(e)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("build "), done.stdout + done.stderr
    assert "/httpd:latest: the Docker engine at " in done.stdout, done.stdout


def offline_example(tmp_path, monkeypatch):
    """The example project's spec, its builds asking no engine about images first."""
    monkeypatch.setattr(_Session, "prefetch", lambda self, refs: None)  # no engine here
    return load(make_project(tmp_path / "project").root / "containers.toml")


def ctrl_c_once(building: threading.Event):
    """A stand-in for the build's wait: Ctrl-C as soon as an image is being built."""
    def wait(schedule):
        building.wait(30)
        raise KeyboardInterrupt
    return wait


def test_an_interrupted_build_leaves_no_worker_waiting_for_an_image(tmp_path, monkeypatch):
    """Ctrl-C during a build with --jobs 2, while one worker builds busybox and the other waits
    for it (every other image of the example needs it): the waiting worker ends too, so a
    process that lives on (a release script that catches the error) keeps no idle thread."""
    project = offline_example(tmp_path, monkeypatch)
    building, release = threading.Event(), threading.Event()
    workers, builders = [], []
    work = builder._work

    def counted_work(session, schedule):
        workers.append(threading.current_thread())
        work(session, schedule)

    def build_one(session, spec):
        builders.append(threading.current_thread())
        building.set()
        release.wait(30)
        return builder.Outcome(spec.key, builder.UP_TO_DATE)

    monkeypatch.setattr(builder, "_work", counted_work)
    monkeypatch.setattr(builder, "_build_one", build_one)
    monkeypatch.setattr(builder._Schedule, "wait", ctrl_c_once(building))
    try:
        with pytest.raises(DockyardError, match="interrupted: the build of busybox was abandoned"):
            builder.build(project, None, BuildOptions(jobs=2), Output(io.StringIO()))
        idle = [thread for thread in workers if thread not in builders]
        for thread in idle:
            thread.join(5)
        assert len(workers) == 2 and len(idle) == 1
        assert not idle[0].is_alive()
    finally:
        release.set()


def test_an_interrupted_build_names_the_build_it_abandoned_even_when_its_worker_ended_first(tmp_path, monkeypatch):
    """Ctrl-C cuts the build's connection, which ends it at once: its worker may report it
    done before the message is made, which must still name it (it said "the build of  was
    abandoned")."""
    project = offline_example(tmp_path, monkeypatch)
    building, release, worker_ended = threading.Event(), threading.Event(), threading.Event()
    work = builder._work

    def work_then_end(session, schedule):
        work(session, schedule)
        worker_ended.set()

    def build_one(session, spec):
        session.in_flight.append(spec.key)  # the connection the interrupt cuts
        building.set()
        release.wait(30)
        return builder.Outcome(spec.key, builder.FAILED, detail="the engine ended the build")

    def cut(response):  # the engine ends the build, and the worker reports it, before we go on
        release.set()
        assert worker_ended.wait(30)

    monkeypatch.setattr(builder, "_work", work_then_end)
    monkeypatch.setattr(builder, "_build_one", build_one)
    monkeypatch.setattr(builder.engine, "cut", cut)
    monkeypatch.setattr(builder._Schedule, "wait", ctrl_c_once(building))
    try:
        with pytest.raises(DockyardError, match="^interrupted: the build of busybox was abandoned$"):
            builder.build(project, None, BuildOptions(jobs=1), Output(io.StringIO()))
    finally:
        release.set()
