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


def nested_args(levels: int) -> str:
    """ARGs that each refer to the one before ten times: 95 characters, then ten-fold a line."""
    lines = ["ARG A0=" + "x" * 95] + [f"ARG A{i}=" + "${A%d}" % (i - 1) * 10 for i in range(1, levels + 1)]
    return "\n".join(lines) + "\nFROM busybox\n"


def test_an_arg_that_would_expand_beyond_64_kib_names_the_dockerfile_and_line(tmp_path):
    path = dockerfile(tmp_path, "# the A3 line is the fifth\n" + nested_args(4))  # A3: 95,000 characters
    with pytest.raises(DockyardError) as caught:
        from_refs(path)
    assert str(caught.value) == f"{path}: line 5: ARG A3 would expand to more than 64 KiB"


def test_args_under_the_bound_still_expand(tmp_path):
    path = dockerfile(tmp_path, nested_args(2).replace("FROM busybox", "FROM demo/${A2}:1"))  # A2: 9,500 characters
    assert from_refs(path) == ["demo/" + "x" * 9500 + ":1"]


def test_a_from_reference_that_would_expand_beyond_64_kib_names_its_line(tmp_path):
    path = dockerfile(tmp_path, "ARG A=" + "x" * 40_000 + "\nFROM \\\n  ${A}${A}\n")
    with pytest.raises(DockyardError) as caught:
        from_refs(path)
    assert str(caught.value) == f"{path}: line 2: FROM's image would expand to more than 64 KiB"


def test_global_args_beyond_one_mib_together_are_refused(tmp_path):
    lines = ["ARG A=" + "x" * 60_000] + [f"ARG B{i}=${{A}}" for i in range(20)]
    path = dockerfile(tmp_path, "\n".join(lines) + "\nFROM busybox\n")
    with pytest.raises(DockyardError) as caught:
        from_refs(path)
    assert str(caught.value) == f"{path}: line 18: the ARGs before the first FROM would expand to more than 1 MiB together"


def test_nine_levels_of_nested_args_fail_at_once_and_inv_list_says_so_in_one_line(tmp_path):
    """570 bytes that expand to 9.5 GB: MemoryError (or the machine's memory) without a bound,
    on every command, since the FROM chain is read when containers.toml is loaded."""
    from conftest import DEMO_APP, assert_clean_failure, confined, write_project

    write_project(tmp_path, DEMO_APP, {"app": nested_args(9)})
    (tmp_path / "tasks.py").write_text("from pathlib import Path\nfrom dockyard import namespace\n\n"
                                       "ns = namespace(Path(__file__).with_name('containers.toml'))\n")
    for argv in (["--list"], ["-h", "app.build"], ["config"]):
        result = confined(["-m", "invoke", *argv], tmp_path, timeout=30)
        assert_clean_failure(result, f"images.app.dockerfile: {tmp_path / 'app' / 'Dockerfile'}: line 4: ARG A3 "
                                     "would expand to more than 64 KiB")
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_from_lines_beyond_one_mib_of_images_together_are_refused(tmp_path):
    path = dockerfile(tmp_path, "ARG A=" + "x" * 60_000 + "\n" + "FROM ${A}\n" * 20)
    with pytest.raises(DockyardError) as caught:
        from_refs(path)
    assert str(caught.value) == f"{path}: line 19: the FROM lines' images would expand to more than 1 MiB together"
