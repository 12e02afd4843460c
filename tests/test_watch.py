"""`inv up --watch` and `inv IMAGE.run --watch`: edit a file, see it served.

The engine-free tests pin the `[images.NAME.watch]` table, what a burst of changes asks for,
and the debounce. The integration tests run the real `inv up --watch` (with --json: one line
per turn) in a copy of the example and look at the page on 127.0.0.1, as a person would; one
watch process serves several checks in a row, to keep the suite quick.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
from pathlib import Path

import pytest
from doc_blocks import REPO, all_blocks
from conftest import DEMO_APP, assert_clean_failure, get, load_error, make_project, remove_project_objects, write_project

from test_browser import page  # noqa: F401 - the fixture: headless Chromium that reaches 127.0.0.1 only

from dockyard import Project, config, containers
from dockyard.tasks.services import turn_line
from dockyard import interrupts
from dockyard.watch import DEFAULT_DEBOUNCE, Ended, Target, Watch, Watcher, writable_directories

SYNCED = """
[images.app.watch]
sync = { "page.html" = "/www/page.html", "cgi" = "/www/cgi-bin" }
"""


# -- the [images.NAME.watch] table (engine-free) -----------------------------------------

def synced_project(tmp_path: Path, watch: str = SYNCED, dockerignore: str | None = None) -> Path:
    (tmp_path / "app").mkdir(parents=True, exist_ok=True)
    (tmp_path / "app" / "page.html").write_text("<p>one</p>\n")
    (tmp_path / "app" / "cgi").mkdir(exist_ok=True)
    (tmp_path / "app" / "cgi" / "hello").write_text("#!/bin/sh\necho hello\n")
    if dockerignore is not None:
        (tmp_path / "app" / ".dockerignore").write_text(dockerignore)
    return write_project(tmp_path, DEMO_APP + watch)


def test_sync_maps_files_and_directories_of_the_image_into_its_container(tmp_path):
    spec = config.load(synced_project(tmp_path)).images["app"]
    assert spec.watch.sync == (("page.html", "/www/page.html"), ("cgi", "/www/cgi-bin"))
    # Writable while a watch runs: a file's directory, a directory itself; /www covers /www/cgi-bin.
    assert writable_directories(spec) == ("/www",)
    assert config.load(synced_project(tmp_path / "x", '[images.app.watch]\nsync = { cgi = "/srv/cgi" }\n')) \
        .images["app"].watch.sync == (("cgi", "/srv/cgi"),)


@pytest.mark.parametrize("sync, words", [
    ('{ "missing.html" = "/www/missing.html" }', "does not exist"),
    ('{ "../outside" = "/www/x" }', "must be a file or directory inside the image's directory"),
    ('{ "Dockerfile" = "/www/Dockerfile" }', "the Dockerfile cannot be synced"),
    ('{ "page.html" = "www/page.html" }', "must be an absolute path in the container"),
    ('{ "page.html" = "/page.html" }', "in a directory other than /"),
    ('{ "cgi" = "/" }', "in a directory other than /"),
    ('{ "page.html" = "/www/a", "cgi/hello" = "/www/a" }', "'/www/a' is also the target of 'page.html'"),
])
def test_a_bad_sync_is_one_line_naming_its_key(tmp_path, sync, words):
    synced_project(tmp_path)
    message = load_error(tmp_path, DEMO_APP + f"[images.app.watch]\nsync = {sync}\n")
    assert "images.app.watch.sync." in message and words in message and "\n" not in message, message


def test_a_file_the_build_context_leaves_out_cannot_be_synced(tmp_path):
    synced_project(tmp_path, dockerignore="*.html\n")
    message = load_error(tmp_path, DEMO_APP + SYNCED)
    assert "images.app.watch.sync.\"page.html\"" in message or "page.html" in message
    assert "left out of the build context by .dockerignore" in message


def test_a_base_image_has_nothing_to_sync(tmp_path):
    synced_project(tmp_path)
    (tmp_path / "base" / "page.html").write_text("x")
    message = load_error(tmp_path, DEMO_APP + '[images.base.watch]\nsync = { "page.html" = "/www/page.html" }\n')
    assert "images.base.watch.sync" in message and "nothing to sync" in message


def test_a_watch_container_differs_from_ups_and_ups_hash_is_as_before(tmp_path):
    project = config.load(synced_project(tmp_path))
    spec = project.images["app"]
    plain = containers.settings_hash(project, spec, containers.RunOverrides(), ports=[], interactive=False)
    watched = containers.settings_hash(project, spec, Target().overrides_for(spec), ports=[], interactive=False)
    assert plain != watched  # each replaces the other: only a watch's has writable directories
    # A container `up` made before watches existed keeps its hash: nothing is replaced by an upgrade.
    assert containers.settings_hash(project, spec, containers.RunOverrides(writable=()), ports=[],
                                    interactive=False) == plain


# -- what a burst of changes asks for (engine-free) --------------------------------------

def planned(tmp_path: Path, *names: str, kind: int = 2):
    """The plan a watch of the demo app (as `app.run --watch` would) makes of these changes."""
    path = synced_project(tmp_path, SYNCED.replace("[images.app.watch]", "[images.app.run]\nports = [\"8000:80\"]\n"
                                                                         "[images.app.watch]"))
    watch = Watch(Project(path), Target(image="app"))
    return watch._plan({(kind, str(tmp_path / name)) for name in names})


def test_a_synced_file_is_synced_and_anything_else_rebuilds(tmp_path):
    plan = planned(tmp_path, "app/page.html")
    assert not plan.rebuild and [(s.key, p.name, t) for s, p, t in plan.syncs] == [("app", "page.html", "/www/page.html")]
    plan = planned(tmp_path / "b", "app/cgi/hello")
    assert [t for _, _, t in plan.syncs] == ["/www/cgi-bin/hello"]
    for name in ("app/Dockerfile", "base/rootfs.sh"):  # a parent's file too
        plan = planned(tmp_path / name.replace("/", "-"), name)
        assert plan.rebuild and plan.changed == [name] and not plan.reload
    plan = planned(tmp_path / "c", "app/page.html", "app/Dockerfile")
    assert plan.rebuild  # a sync cannot carry the Dockerfile: both are rebuilt
    plan = planned(tmp_path / "d", "containers.toml")
    assert plan.reload and plan.rebuild


def test_a_save_by_rename_is_a_sync_not_a_rebuild(tmp_path):
    """An editor that writes a temporary file and renames it over the one edited: the
    temporary file, made and gone within the burst, is no change of the build context."""
    plan = planned(tmp_path, "app/page.html")
    assert plan.syncs and not plan.rebuild
    path = tmp_path / "app" / "page.html"
    watch = Watch(Project(tmp_path / "containers.toml"), Target(image="app"))
    renamed = {(1, str(tmp_path / "app" / ".page.html.tmp")), (2, str(tmp_path / "app" / ".page.html.tmp")),
               (3, str(tmp_path / "app" / ".page.html.tmp")), (3, str(path)), (1, str(path))}
    plan = watch._plan(renamed)
    assert plan.changed == ["app/page.html"] and [t for _, _, t in plan.syncs] == ["/www/page.html"]
    assert not plan.rebuild


def test_a_deleted_synced_file_rebuilds_and_an_ignored_one_is_no_turn(tmp_path):
    (tmp_path / "gone").mkdir()
    plan = planned(tmp_path / "gone", "app/new.html")  # does not exist: as a delete leaves it
    assert plan.rebuild and not plan.syncs
    (tmp_path / "ignored").mkdir()
    (tmp_path / "ignored" / "app").mkdir()
    (tmp_path / "ignored" / "app" / ".dockerignore").write_text("*.swp\n")
    (tmp_path / "ignored" / "app" / "page.html").write_text("x")
    (tmp_path / "ignored" / "app" / "cgi").mkdir()
    (tmp_path / "ignored" / "app" / "cgi" / "hello").write_text("x")
    path = write_project(tmp_path / "ignored", DEMO_APP + "[images.app.run]\nports = [\"8000:80\"]\n" + SYNCED)
    watch = Watch(Project(path), Target(image="app"))
    assert watch._plan({(2, str(tmp_path / "ignored" / "app" / "page.html.swp"))}) is None
    assert watch._plan({(2, str(tmp_path / "elsewhere.txt"))}) is None


def test_twenty_saves_in_a_second_are_one_burst_and_a_change_during_a_turn_is_kept(tmp_path):
    (tmp_path / "page.html").write_text("<p>first</p>\n")
    watcher = Watcher([tmp_path], DEFAULT_DEBOUNCE)
    try:
        page = tmp_path / "page.html"
        for i in range(20):
            page.write_text(f"<p>save {i}</p>\n")
            time.sleep(0.05)
        first = watcher.bursts.get(timeout=5)
        assert {Path(name).name for _, name in first} == {"page.html"}
        time.sleep(0.5)
        assert watcher.bursts.empty(), "the saves were split into more than one turn"
        # A change made while a turn runs (nobody reads the bursts) is there for the next one.
        (tmp_path / "other.html").write_text("<p>during the turn</p>\n")
        time.sleep(0.5)
        assert {Path(name).name for _, name in watcher.bursts.get(timeout=5)} == {"other.html"}
    finally:
        watcher.close()


def test_containers_toml_gone_for_a_while_is_seen_again_when_it_comes_back(tmp_path):
    """Moved away for a turn (which fails: no such file), then back: the watch made after that
    turn sees it come back and its later edits, as it does an editor's save by rename."""
    path = synced_project(tmp_path)
    watch = Watch(Project(path), Target(image="app"))
    assert tmp_path in watch.watched_directories() and path not in watch.watched_paths()
    saved = path.read_text()
    path.rename(tmp_path / "moved.toml")
    watcher = Watcher(watch.watched_paths(), DEFAULT_DEBOUNCE, watch.watched_directories())  # made while it is gone
    try:
        (tmp_path / "moved.toml").rename(path)
        assert path in {Path(name) for _, name in watcher.bursts.get(timeout=5)}
        path.write_text(saved + "# edited\n")
        plan = watch._plan(watcher.bursts.get(timeout=5))
        assert plan is not None and plan.reload and plan.changed == ["containers.toml"], plan
    finally:
        watcher.close()


def test_a_change_made_during_the_first_turn_is_not_missed(tmp_path):
    (tmp_path / "page.html").write_text("<p>first</p>\n")
    watcher = Watcher([tmp_path], DEFAULT_DEBOUNCE)  # made before the first turn
    try:
        (tmp_path / "page.html").write_text("<p>edited while the services come up</p>\n")
        assert {Path(name).name for _, name in watcher.bursts.get(timeout=5)} == {"page.html"}
    finally:
        watcher.close()


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_waiting_ends_the_watch_at_once(tmp_path, signum, code):
    previous = signal.signal(signal.SIGTERM, interrupts._terminate)  # as the tasks install it
    path = synced_project(tmp_path, SYNCED.replace("[images.app.watch]", "[images.app.run]\nports = [\"8000:80\"]\n"
                                                                         "[images.app.watch]"))
    watch = Watch(Project(path), Target(image="app"))
    watcher = Watcher(watch.watched_paths(), DEFAULT_DEBOUNCE)
    try:
        threading.Timer(0.3, os.kill, (os.getpid(), signum)).start()
        started = time.monotonic()
        with pytest.raises(Ended) as ended:
            next(watch._changes(watcher))
        assert ended.value.signal_code == code
        assert time.monotonic() - started < 1.0
    finally:
        watcher.close()
        signal.signal(signal.SIGTERM, previous)


def test_a_turn_is_one_line_and_a_failure_says_what_keeps_serving():
    line = turn_line({"changed": ["images/busybox-httpd/hello-world.cgi"], "synced": ["httpd:/www/cgi-bin/hello-world"],
                      "built": [], "replaced": [], "restarted": [], "seconds": 0.04, "url": "http://localhost:8000",
                      "error": None})
    assert "\n" not in line
    assert line.endswith("images/busybox-httpd/hello-world.cgi: synced httpd:/www/cgi-bin/hello-world (0.04s) "
                         "http://localhost:8000")
    failed = turn_line({"changed": ["images/busybox-httpd/Dockerfile"], "synced": [], "built": [], "replaced": [],
                        "restarted": [], "seconds": 1.5, "url": "http://localhost:8000",
                        "error": "build of radiasoft/httpd failed at step 'RUN false'"})
    assert failed.splitlines()[0].endswith("images/busybox-httpd/Dockerfile: failed (1.50s)")
    assert failed.splitlines()[1:] == ["  build of radiasoft/httpd failed at step 'RUN false'",
                                       "  what ran before keeps serving; watching for the next change"]


# -- the real loop, on the real engine ---------------------------------------------------

class WatchProcess:
    """`inv ARGS --watch --json` in the project: its turns as they come, its stderr kept."""

    def __init__(self, root: Path, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "invoke", *args, "--watch", "--json"],
                                        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.turns: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, args=(self.process.stdout, self.turns.put), daemon=True).start()
        threading.Thread(target=self._read, args=(self.process.stderr, self.stderr.append), daemon=True).start()

    @staticmethod
    def _read(stream, put) -> None:
        for line in stream:
            put(line)

    def turn(self, timeout: float = 120) -> dict:
        try:
            line = self.turns.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no turn within {timeout}s; stderr:\n{''.join(self.stderr)}") from None
        return json.loads(line)

    def no_turn(self, seconds: float) -> None:
        time.sleep(seconds)
        assert self.turns.empty(), self.turns.get()

    def end(self, signum: int = signal.SIGINT, timeout: float = 60) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout=timeout)
        time.sleep(0.1)  # the reader threads catch up
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.fixture(scope="module")
def example(tmp_path_factory, docker_client):
    """A copy of the example for this module, with its images built once."""
    made = make_project(tmp_path_factory.mktemp("watch") / "project")
    made.inv("build", "--quiet")
    yield made
    remove_project_objects(docker_client, made.name)


def page_text(project, path: str = "/cgi-bin/hello-world") -> str:
    return get(f"http://127.0.0.1:{project.port}{path}")[1]


def serves(project, text: str, path: str = "/cgi-bin/hello-world", within: float = 30) -> float:
    """Seconds until the page has ``text``."""
    started = time.monotonic()
    while True:
        try:
            if text in page_text(project, path):
                return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if time.monotonic() - started > within:
            raise AssertionError(f"{path} did not show {text!r} within {within}s")
        time.sleep(0.02)


def container_ids(client, project) -> dict[str, str]:
    """Our containers of the project by name: passing names included (an interrupted replace)."""
    return {c["Names"][0].lstrip("/"): c["Id"]
            for c in client.api.containers(all=True, filters={"label": f"dockyard.owner={project.name}"})}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


@pytest.mark.integration
def test_up_watch_syncs_rebuilds_replaces_and_keeps_what_works(example, docker_client):
    httpd_dir = example.root / "images" / "busybox-httpd"
    watch = WatchProcess(example.root, "up")
    try:
        first = watch.turn()
        assert first["changed"] == [] and first["error"] is None, first
        assert first["url"] == f"http://localhost:{example.port}"
        serves(example, "Hello, World!")
        ids = container_ids(docker_client, example)
        assert set(ids) == {example.container("httpd"), example.container("api")}
        httpd = docker_client.api.inspect_container(ids[example.container("httpd")])
        # Least privilege stays: the root filesystem is read-only; /www is a volume only the engine writes.
        assert httpd["HostConfig"]["ReadonlyRootfs"] is True
        assert [(m["Type"], m["Destination"]) for m in httpd["Mounts"] if m["Destination"] == "/www"] == \
            [("volume", "/www")]
        exec_id = docker_client.api.exec_create(httpd["Id"], ["sh", "-c", "echo x > /www/index.html"],
                                                user="www-data")
        docker_client.api.exec_start(exec_id)
        assert docker_client.api.exec_inspect(exec_id)["ExitCode"] != 0  # www-data cannot write there

        # A CGI edit is copied into the running container: no build, the same container.
        edit(httpd_dir / "hello-world.cgi", "<title>Hello</title>", "<title>Hello, synced</title>")
        turn = watch.turn()
        assert turn["changed"] == ["images/busybox-httpd/hello-world.cgi"] and turn["error"] is None, turn
        assert turn["synced"] == ["httpd:/www/cgi-bin/hello-world"] and turn["built"] == turn["replaced"] == []
        assert "<title>Hello, synced</title>" in page_text(example)
        assert container_ids(docker_client, example) == ids
        listed = docker_client.api.exec_create(httpd["Id"], ["stat", "-c", "%U:%G %a", "/www/cgi-bin/hello-world"])
        assert docker_client.api.exec_start(listed).decode().strip() == "root:www-data 550"  # as provisioned

        # Twenty saves in one second: one turn, which serves the last.
        index = (httpd_dir / "index.html").read_text()
        for i in range(20):
            (httpd_dir / "index.html").write_text(index.replace("Hello, World!<", f"save {i}<"))
            time.sleep(0.05)
        turn = watch.turn()
        assert turn["synced"] == ["httpd:/www/index.html"], turn
        watch.no_turn(1.0)
        assert "save 19<" in page_text(example, "/")

        # The provision script: httpd is rebuilt and replaced, alone.
        edit(httpd_dir / "provision-httpd.sh", "set -eu\n", "set -eu\necho provisioned again\n")
        turn = watch.turn()
        assert turn["built"] == ["httpd"] and turn["replaced"] == ["httpd replaced (image changed)"], turn
        new_ids = container_ids(docker_client, example)
        assert new_ids[example.container("api")] == ids[example.container("api")]
        assert new_ids[example.container("httpd")] != ids[example.container("httpd")]
        assert set(new_ids) == set(ids)  # no container left under a passing name
        assert "<title>Hello, synced</title>" in page_text(example)  # the rebuild carries the synced edit
        # The old container went with its volume: nothing of a watch is left behind.
        assert all(v["Name"] not in {m.get("Name") for m in httpd["Mounts"]}
                   for v in docker_client.api.volumes().get("Volumes") or [])
        ids = new_ids

        # images/my-app/: my-app, then httpd (FROM my-app), is rebuilt; httpd is replaced.
        edit(example.root / "images" / "my-app" / "hello-world", "Hello, World!", "Hello, watched World!")
        turn = watch.turn()
        assert turn["built"] == ["my-app", "httpd"] and turn["replaced"] == ["httpd replaced (image changed)"], turn
        assert "Hello, watched World!" in page_text(example)

        # A Dockerfile that fails: the old container keeps serving, the next good edit recovers.
        ids = container_ids(docker_client, example)
        dockerfile = httpd_dir / "Dockerfile"
        good = dockerfile.read_text()
        dockerfile.write_text(good.replace("RUN sh /cfg2/provision-httpd.sh", "RUN sh /cfg2/provision-httpd.sh && false"))
        turn = watch.turn()
        assert turn["error"] and "build of" in turn["error"] and "failed" in turn["error"], turn
        assert turn["replaced"] == [] and container_ids(docker_client, example) == ids
        assert "Hello, watched World!" in page_text(example)
        dockerfile.write_text(good.replace("ADD . /cfg2", "ADD . /cfg2\nLABEL fixed=yes"))
        turn = watch.turn()
        assert turn["error"] is None and turn["replaced"] == ["httpd replaced (image changed)"], turn
        assert "Hello, watched World!" in page_text(example)

        # A container that does not answer (a settings change in containers.toml): the old one
        # is put back and keeps serving; putting the file back is a turn with nothing to do.
        ids = container_ids(docker_client, example)
        toml = example.config.read_text()
        example.config.write_text(toml.replace(f'HTTPD_PORT = "{example.port}"', 'HTTPD_PORT = "9"', 1)
                                  .replace("timeout = 30", "timeout = 3", 1))
        turn = watch.turn()
        assert turn["error"] and "did not answer" in turn["error"], turn
        assert container_ids(docker_client, example) == ids
        assert "Hello, watched World!" in page_text(example)
        example.config.write_text(toml)
        turn = watch.turn()
        assert turn["error"] is None and turn["replaced"] == [] and turn["built"] == [], turn
        assert container_ids(docker_client, example) == ids

        code = watch.end()
        assert code == 0, "".join(watch.stderr)
        said = "".join(watch.stderr)
        assert "watch ended (SIGINT); what it started keeps running: inv down stops it" in said, said
        assert "Traceback" not in said
        assert container_ids(docker_client, example) == ids  # the services are left running
        assert "Hello, watched World!" in page_text(example)
    finally:
        watch.kill()


@pytest.mark.integration
@pytest.mark.parametrize("change, delay", [("provision", 0.0), ("provision", 0.5), ("provision", 1.0),
                                           ("settings", 0.1), ("settings", 0.3), ("settings", 0.6),
                                           ("settings", 1.2)])
def test_an_interrupt_during_a_turn_leaves_the_old_container_or_the_new_never_both_or_none(
        example, docker_client, change, delay):
    """Ctrl-C (or SIGTERM) at several moments of a turn: while it builds (a provision script
    edit), while it replaces httpd and waits for the new one to answer (a settings edit in
    containers.toml, which builds nothing). The watch ends, and httpd is one container,
    running and answering."""
    watch = WatchProcess(example.root, "up")
    try:
        assert watch.turn()["error"] is None
        before = container_ids(docker_client, example)
        token = f"{change}-{delay}-{time.monotonic_ns()}"
        if change == "provision":
            edit(example.root / "images" / "busybox-httpd" / "provision-httpd.sh", "set -eu\n",
                 f"set -eu\necho {token}\n")
        else:
            example.config.write_text(re.sub(r'environment = \{ (TURN = "[^"]*", )?HTTPD_PORT',
                                             f'environment = {{ TURN = "{token}", HTTPD_PORT', example.config.read_text()))
        time.sleep(0.15 + delay)  # the debounce, then into the turn
        code = watch.end(signal.SIGTERM if delay == 1.0 else signal.SIGINT)
        said = "".join(watch.stderr)
        assert "watch ended" in said and "Traceback" not in said, said
        assert code == 0, said
        after = container_ids(docker_client, example)
        assert set(after) == set(before), after  # the old or the new, under its own name
        assert after[example.container("api")] == before[example.container("api")]
        state = docker_client.api.inspect_container(after[example.container("httpd")])["State"]
        assert state["Running"], state
        serves(example, "</html>", within=10)
    finally:
        watch.kill()


@pytest.mark.integration
def test_ctrl_c_while_watching_ends_at_once_and_run_watch_says_how_to_stop(example, docker_client):
    watch = WatchProcess(example.root, "httpd.run")
    try:
        turn = watch.turn()
        assert turn["error"] is None and turn["url"] == f"http://localhost:{example.port}"
        time.sleep(0.3)
        started = time.monotonic()
        assert watch.end(signal.SIGTERM) == 0
        assert time.monotonic() - started < 3
        said = "".join(watch.stderr)
        assert f"watch ended (SIGTERM); what it started keeps running: inv httpd.stop stops it" in said, said
        serves(example, "</html>", within=5)
    finally:
        watch.kill()


def test_a_one_shot_image_cannot_be_watched_and_flags_that_contradict_are_one_line(tmp_path):
    copy = make_project(tmp_path / "project")
    assert_clean_failure(copy.inv("my-app.run", "--watch", check=False), "publishes no port")
    assert_clean_failure(copy.inv("up", "--watch", "--no-build", check=False), "--no-build")
    assert_clean_failure(copy.inv("httpd.run", "--watch", "--attach", check=False), "--attach")
    assert_clean_failure(copy.inv("up", "--debounce", "50", check=False), "--debounce is for --watch")
    assert_clean_failure(copy.inv("httpd.run", "--debounce", "50", check=False), "--debounce is for --watch")


@pytest.mark.parametrize("task", ["up", "httpd.run"])
def test_a_watch_with_no_engine_ends_at_once_as_up_does(tmp_path, task):
    """No engine answers (this test's DOCKER_HOST is a socket that is not there): the watch
    fails as `inv up` does, instead of waiting for a change with nothing to serve it."""
    copy = make_project(tmp_path / "project")
    result = copy.inv(task, "--watch", check=False, timeout=60)
    assert_clean_failure(result, "cannot reach the Docker engine")
    assert "watching" not in result.stderr and "keep running" not in result.stderr, result.stderr


@pytest.mark.integration
def test_a_browser_sees_the_page_change_after_an_edit(example, page):
    """Chromium on the tutorial's page while the README's watch command runs: an edit of the
    file it names, a reload, the new page."""
    [block] = [block for block in all_blocks([REPO / "README.md"]) if block.kind == "watch"]
    command, _, comment = block.text.strip().partition("#")
    words = command.split()
    assert words[0] == "inv" and words[-1] == "--watch", block.text
    cgi = example.root / re.search(r"edit (\S+):", comment)[1]
    watch = WatchProcess(example.root, *words[1:-1])  # WatchProcess adds --watch (and --json)
    try:
        assert watch.turn()["error"] is None
        page.goto(f"http://127.0.0.1:{example.port}/cgi-bin/hello-world")
        before = page.title()
        cgi.write_text(re.sub(r"<title>[^<]*</title>", "<title>Seen in a browser</title>", cgi.read_text()))
        turn = watch.turn()
        assert turn["synced"] == ["httpd:/www/cgi-bin/hello-world"], turn
        page.reload()
        assert (before, page.title()) == (before, "Seen in a browser") and before != "Seen in a browser"
        assert page.inner_text("h4").startswith("Hello, ")  # the rest of the page is as it was
        assert watch.end() == 0
    finally:
        watch.kill()


@pytest.mark.integration
def test_an_edit_under_a_host_path_a_service_mounts_restarts_it(example, docker_client, tmp_path):
    """The container sees the file already (a bind mount); a server reads its configuration
    when it starts, so the watch restarts the service: the same container, started again."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "greeting").write_text("hello\n")
    toml = example.config.read_text()
    example.config.write_text(toml.replace('cap_add = ["SETUID", "SETGID"]\nafter = ["api"]',
                                           f'cap_add = ["SETUID", "SETGID"]\nafter = ["api"]\n'
                                           f'volumes = ["{conf}:/conf:ro"]', 1))
    watch = WatchProcess(example.root, "httpd.run")
    try:
        assert watch.turn()["error"] is None
        httpd = docker_client.api.inspect_container(example.container("httpd"))
        (conf / "greeting").write_text("hello again\n")
        turn = watch.turn()
        assert turn["changed"] == [str(conf / "greeting")] and turn["restarted"] == ["httpd"], turn
        assert turn["built"] == turn["replaced"] == turn["synced"] == [] and turn["error"] is None
        again = docker_client.api.inspect_container(example.container("httpd"))
        assert again["Id"] == httpd["Id"] and again["State"]["StartedAt"] != httpd["State"]["StartedAt"]
        serves(example, "</html>", within=10)
        assert watch.end() == 0
    finally:
        watch.kill()
        example.config.write_text(toml)


@pytest.mark.integration
def test_a_watchs_volume_goes_with_its_container_whatever_removes_it(example, docker_client):
    """The writable directory of a watch's container is an anonymous volume: `stop` and
    `clean` (or `rm`, `down`, a replace) leave none behind."""
    watch = WatchProcess(example.root, "httpd.run")
    try:
        assert watch.turn()["error"] is None
        assert watch.end() == 0
    finally:
        watch.kill()
    httpd = docker_client.api.inspect_container(example.container("httpd"))
    volume = next(m["Name"] for m in httpd["Mounts"] if m["Destination"] == "/www")
    example.inv("httpd.stop")
    example.inv("clean", "--yes")
    assert example.container("httpd") not in container_ids(docker_client, example)
    assert volume not in {v["Name"] for v in docker_client.api.volumes().get("Volumes") or []}
