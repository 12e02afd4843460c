"""`inv config` shows every field of every spec, in its text and its JSON: engine-free."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import REPO, write_project
from doc_blocks import block
from invoke import Program

from dockyard import config, namespace, resolved
from dockyard.config import ImageSpec, ProjectSpec
from dockyard.masking import MASK

SECRET = "s3cret-value"
# Every key containers.toml has, each away from its default, so that a field the output
# leaves out cannot hide behind a default it happens to share.
EVERYTHING = """
[project]
name = "full"
engine = "unix:///project.sock"
registry = "registry.example.com:5000"
secrets = ["DB_PASSWORD"]

[volumes.shared]
external = true

[images.base]
tag = "full/base:1"
dir = "base"
engine = "unix:///other.sock"
labels = { team = "ops" }
base = { pull = "busybox:1.36", rootfs = "rootfs.sh", changes = ['CMD ["sh"]'] }

[images.app]
tag = "full/app"
dir = "app"
dockerfile = "Dockerfile"
engine = "unix:///other.sock"
build_args = { DB_PASSWORD = "${DB_PASSWORD}", MODE = "full" }

[images.app.run]
name = "the-app"
ports = ["127.0.0.2:8001:8000/tcp"]
environment = { DB_PASSWORD = "${DB_PASSWORD}", GREETING = "hi" }
env_file = "app.env"
command = ["sh", "-c", "httpd -f"]
user = "www-data"
volumes = ["shared:/data", "cache:/cache:ro"]
workdir = "/srv"
restart = "on-failure:3"
ready = { url = "http://127.0.0.2:8001/", timeout = 12 }
init = false
no_new_privileges = false
cap_drop = ["NET_RAW"]
cap_add = ["SETUID"]
privileged = true
read_only = false
tmpfs = ["/tmp"]
memory = "256m"
pids = 100
cpus = 0.5
logs = { max_size = "1m", max_files = 2 }
service = true
after = ["step"]
network = "project"
aliases = ["web"]
networks = ["outside"]

[images.app.deploy]
replicas = 2
publish = "host"
update = { parallelism = 2, delay = 1.5, order = "stop-first", failure_action = "pause", monitor = 9 }
placement = ["node.role==manager"]
registry = "pull.example.com"

[images.app.watch]
sync = { "page.html" = "/www/page.html" }

[images.step]
tag = "full/step"
dir = "step"
engine = "unix:///other.sock"

[images.step.run]
completes = true
"""




@pytest.fixture
def everything(tmp_path, monkeypatch, nothing_chosen):
    monkeypatch.setenv("DB_PASSWORD", SECRET)
    path = write_project(tmp_path, EVERYTHING, {"app": "FROM full/base:1\n", "step": "FROM full/base:1\n"})
    (tmp_path / "app.env").write_text("TOKEN=from-a-file\n")
    (tmp_path / "app" / "page.html").write_text("<p>synced by a watch</p>\n")
    return path


def config_output(path, capsys, *argv: str) -> str:
    Program(namespace=namespace(path), version="0").run(["inv", "config", *argv])
    return capsys.readouterr().out


def sections(text: str) -> dict[str, list[str]]:
    """The text's lines by section: "" for the project's, then each `[IMAGE]`'s, unindented."""
    found: dict[str, list[str]] = {"": []}
    current = ""
    for line in text.splitlines():
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            found[current] = []
        elif line:
            found[current].append(line.removeprefix("  "))
    return found


def test_every_field_of_every_spec_is_in_the_text_and_the_json(everything, capsys):
    project = config.load(everything)
    text = sections(config_output(everything, capsys))
    shown = json.loads(config_output(everything, capsys, "--json"))
    reached: set[type] = set()

    def check(spec, in_json: dict, lines: list[str], prefix: str) -> None:
        """Each field of ``spec`` is a key of ``in_json`` and a `NAME = VALUE` line of the
        text, with the same value; a nested spec's fields are checked the same way."""
        reached.add(type(spec))
        for f in dataclasses.fields(spec):
            if (type(spec), f.name) in resolved.NOT_LISTED:
                continue
            where = f"{type(spec).__name__}.{f.name}"
            assert f.name in in_json, f"{where} is not in --json"
            value = getattr(spec, f.name)
            if dataclasses.is_dataclass(value) and isinstance(in_json[f.name], dict):
                check(value, in_json[f.name], lines, f"{prefix}{f.name}.")
            elif (type(spec), f.name) == (ImageSpec, "engine"):  # the engine in use, and what chose it
                assert in_json[f.name]["address"] == value
                assert f"engine: {value}, chosen by images.{spec.key}.engine in {everything}" in lines, where
            else:
                assert f"{prefix}{f.name} = {json.dumps(in_json[f.name])}" in lines, f"{where} is not in the text"
                for item in value if isinstance(value, tuple) else ():
                    if dataclasses.is_dataclass(item):  # said as one string, e.g. a port mapping
                        reached.add(type(item))
                        said = in_json[f.name][value.index(item)]
                        assert all(str(getattr(item, g.name)) in said for g in dataclasses.fields(item)), said

    check(project, shown["project"], [line for line in text[""] if line.startswith("project.")], "project.")
    assert list(shown["images"]) == list(text)[1:] == list(project.images)  # ImageSpec.key: the sections
    for key, image in project.images.items():
        check(image, shown["images"][key], text[key], "")
    # Every spec dataclass that dockyard.config defines was reached: a new one is checked too.
    specs = {kind for kind in vars(config).values()
             if isinstance(kind, type) and dataclasses.is_dataclass(kind) and kind.__module__ == config.__name__}
    assert reached == specs, specs - reached
    # What is not a line of its own: the images are the sections, and the secret values are masked.
    assert resolved.NOT_LISTED == {(ImageSpec, "key"), (ProjectSpec, "images"), (ProjectSpec, "masked_values")}
    printed = "\n".join("\n".join(lines) for lines in text.values()) + json.dumps(shown)
    assert project.masked_values == {SECRET} and SECRET not in printed and "from-a-file" not in printed
    assert shown["images"]["app"]["build_args"] == {"DB_PASSWORD": MASK, "MODE": "full"}


def test_the_project_table_and_external_volumes_are_shown(everything, capsys):
    text = config_output(everything, capsys)
    assert 'project.external_volumes = ["shared"]\n' in text
    assert 'project.registry = "registry.example.com:5000"\n' in text
    assert "\n[step]\n" in text and "  run.completes = true\n" in text
    assert '  run.after = ["step"]\n' in text and '  run.aliases = ["web"]\n' in text


def test_the_readmes_example_is_what_config_prints(nothing_chosen, capsys):
    command = "$ inv config | head -20\n"
    shown = block("config-output").text  # the manual's (docs/tasks.md), marked runnable
    assert shown.startswith(command)
    example = shown[len(command):]
    printed = config_output(REPO / "containers.toml", capsys).replace(str(REPO), "/srv/app")
    assert "".join(printed.splitlines(keepends=True)[:20]) == example
