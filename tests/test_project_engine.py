"""A Project owns its engine: two Projects in one process (a release script's), on two
engines, each build, run and list on their own, however their calls interleave. The second
engine is the tests' own (``own_engine``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dockyard import Project, engine, engine_choice

from conftest import make_project, own_engine, remove_project_objects, write_project
from test_engine_selection import ONE_IMAGE



def objects(api, name: str) -> list[str]:
    """What an engine holds of the project: its containers' names and its images' tags."""
    containers = [c["Names"][0] for c in api.containers(all=True, filters={"label": f"dockyard.owner={name}"})]
    images = [tag for image in api.images() for tag in image.get("RepoTags") or [] if tag.startswith(f"{name}/")]
    return sorted(containers + images)




def test_each_project_says_its_own_engine_whichever_was_loaded_last(nothing_chosen, tmp_path, monkeypatch):
    paths = []
    for name, toml in (("a", 'engine = "unix:///a.sock"'), ("b", 'engine = "unix:///b.sock"'), ("c", "")):
        (tmp_path / name).mkdir()
        paths.append(write_project(tmp_path / name, ONE_IMAGE.format(project_engine=toml, image_engine=""),
                                   {"app": "FROM scratch\n"}))
    a, b, c = (Project(path) for path in paths)  # c, which names no engine, loaded last
    assert [p.engine()["address"] for p in (a, b, c, a)] == \
        ["unix:///a.sock", "unix:///b.sock", "unix:///var/run/docker.sock", "unix:///a.sock"]
    assert a.engine()["source"] == f"project.engine in {paths[0]}"
    with a.on_engine_of("app"):
        assert engine.where() == f"unix:///a.sock, chosen by project.engine in {paths[0]}"
    assert engine_choice.chosen().source == "default"  # a's methods leave no choice behind
    monkeypatch.setenv("DOCKER_HOST", "unix:///env.sock")  # the environment still comes first
    assert a.engine()["address"] == b.engine()["address"] == "unix:///env.sock"


@pytest.mark.integration
def test_two_projects_in_one_process_each_build_run_and_list_on_their_own_engine(nothing_chosen, tmp_path,
                                                                                  docker_client):
    here, there = make_project(tmp_path / "here"), make_project(tmp_path / "there")
    with own_engine() as second:
        toml = there.config.read_text().replace("[project]\n", f'[project]\nengine = "{second.host}"\n', 1)
        there.config.write_text(toml)
        try:
            mine, theirs = Project(here.config), Project(there.config)  # theirs loaded last
            mine.build(["my-app"], quiet=True)
            theirs.build(["my-app"], quiet=True)
            assert mine.run("my-app", build=False)["exit_code"] == 0
            assert theirs.run("my-app", build=False)["exit_code"] == 0
            [mine_row], [their_row] = mine.status(["my-app"]), theirs.status(["my-app"])
            assert (mine_row["engine"], mine_row["state"]) == ("unix:///var/run/docker.sock", "exited")
            assert (their_row["engine"], their_row["state"]) == (second.host, "exited")
            assert mine.engine()["address"] == "unix:///var/run/docker.sock"

            made = ["/{}-my-app", "{}/busybox:latest", "{}/my-app:latest"]
            assert objects(docker_client.api, here.name) == sorted(m.format(here.name) for m in made)
            assert objects(docker_client.api, there.name) == []
            with second.client() as api:
                assert objects(api, there.name) == sorted(m.format(there.name) for m in made)
                assert objects(api, here.name) == []
        finally:
            remove_project_objects(docker_client, here.name)
            if second.running():
                with second.client() as api:
                    remove_project_objects(SimpleNamespace(api=api), there.name)
