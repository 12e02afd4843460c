"""Build order from FROM lines: build arguments in FROM, cycles and order on long chains."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conftest import DEMO_PROJECT
from dockyard import config
from dockyard.errors import DockyardError
from dockyard.graph import build_order, find_cycle, from_refs


def dockerfile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "Dockerfile"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("text, refs", [
    ("ARG BASE=demo/base\nFROM ${BASE}\n", ["demo/base"]),
    ("ARG BASE=demo/base\nFROM $BASE\n", ["demo/base"]),
    ('ARG BASE="demo/base"\nFROM ${BASE}:1\n', ["demo/base:1"]),
    ("ARG REG=localhost:5000 NAME=base\nARG BASE=${REG}/demo/${NAME}\nFROM ${BASE} AS build\nFROM build\n",
     ["localhost:5000/demo/base"]),
    ("FROM ${BASE:-demo/base}\n", ["demo/base"]),
    ("ARG TAG\nFROM demo/base${TAG:+:}${TAG}\n", ["demo/base"]),
    ("FROM ${UNDECLARED}\nFROM demo/x\n", ["demo/x"]),
    ("FROM demo/x\nARG LATE=demo/y\nFROM ${LATE}\n", ["demo/x"]),  # only ARGs before the first FROM count
])
def test_from_substitutes_global_build_arguments(tmp_path, text, refs):
    assert from_refs(dockerfile(tmp_path, text)) == refs


def test_build_args_override_the_arg_default(tmp_path):
    path = dockerfile(tmp_path, "ARG BASE=demo/base\nARG TAG=1\nFROM ${BASE}:${TAG}\n")
    assert from_refs(path, {"BASE": "demo/other"}) == ["demo/other:1"]
    assert from_refs(path, {"UNUSED": "x"}) == ["demo/base:1"]


def test_build_args_for_an_undeclared_arg_are_not_used(tmp_path):
    # As in docker build: a FROM can only use an ARG declared before it.
    assert from_refs(dockerfile(tmp_path, "FROM ${BASE:-demo/base}\n"), {"BASE": "demo/other"}) == ["demo/base"]


PROJECT = DEMO_PROJECT + """
[images.other]
tag = "demo/other"
dir = "other"

[images.app]
tag = "demo/app"
dir = "app"
"""


def load_project(tmp_path: Path, dockerfiles: dict[str, str], toml: str = PROJECT) -> config.ProjectSpec:
    for directory, text in dockerfiles.items():
        (tmp_path / directory).mkdir(exist_ok=True)
        (tmp_path / directory / "Dockerfile").write_text(text)
    (tmp_path / "containers.toml").write_text(toml)
    config.load.cache_clear()
    return config.load(tmp_path / "containers.toml")


def test_a_parent_named_through_an_arg_is_a_dependency(tmp_path):
    project = load_project(tmp_path, {"base": "FROM scratch\n", "other": "FROM scratch\n",
                                      "app": "ARG BASE=demo/base\nFROM ${BASE}\n"})
    assert project.image("app").parents == ("base",)
    assert build_order(project.images, ["app"]) == ["base", "app"]


def test_build_args_in_containers_toml_choose_the_parent(tmp_path):
    toml = PROJECT + 'build_args = { BASE = "demo/other" }\n'
    project = load_project(tmp_path, {"base": "FROM scratch\n", "other": "FROM scratch\n",
                                      "app": "ARG BASE=demo/base\nFROM ${BASE}\n"}, toml)
    assert project.image("app").parents == ("other",)


def test_a_cycle_through_an_arg_is_found(tmp_path):
    with pytest.raises(DockyardError, match="dependency cycle"):
        load_project(tmp_path, {"base": "ARG P=demo/app\nFROM $P\n", "other": "FROM scratch\n",
                                "app": "ARG BASE=demo/base\nFROM ${BASE}\n"})


def test_an_unreadable_dockerfile_names_the_key(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_bytes(b"FROM \xff\n")
    with pytest.raises(DockyardError, match=r"containers.toml: images\.app\.dockerfile: .*cannot read"):
        load_project(tmp_path, {"base": "FROM scratch\n", "other": "FROM scratch\n"})


def chain(length: int) -> dict[str, config.ImageSpec]:
    keys = [f"i{n}" for n in range(length)]
    return {key: config.ImageSpec(key=key, tag=key, dir=Path("."), parents=(keys[n - 1],) if n else ())
            for n, key in enumerate(keys)}


def test_a_long_chain_neither_overflows_nor_loses_order():
    images = chain(5000)
    assert build_order(images) == list(images)
    assert build_order(images, ["i4999"])[-1] == "i4999"
    assert find_cycle(images) is None


def test_a_cycle_at_the_end_of_a_long_chain():
    images = chain(5000)
    images["i0"] = config.ImageSpec(key="i0", tag="i0", dir=Path("."), parents=("i4999",))
    cycle = find_cycle(images)
    assert cycle[0] == cycle[-1] and len(cycle) == 5001


def test_build_order_visits_parents_in_file_order():
    images = {key: config.ImageSpec(key=key, tag=key, dir=Path("."), parents=parents)
              for key, parents in {"a": (), "b": (), "c": ("b", "a"), "d": ("c", "a")}.items()}
    assert build_order(images, ["d"]) == ["b", "a", "c", "d"]
    assert find_cycle(images) is None
