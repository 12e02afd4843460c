"""commit, export, import, save, load, rm and clean, through the real `inv` and engine."""

from __future__ import annotations

import json
import stat
import subprocess
import tarfile

import pytest

from conftest import assert_clean_failure, get, statuses

pytestmark = pytest.mark.integration


def writable_root(project) -> None:
    """httpd's root filesystem made writable (read-only is the default): changes to export or commit."""
    project.config.write_text(project.config.read_text().replace('after = ["api"]', 'after = ["api"]\nread_only = false'))


def test_export_then_import_then_run_gives_the_same_files(project, docker_client, tmp_path):
    writable_root(project)
    project.inv("httpd.run", "--quiet-build")
    project.inv("httpd.exec", "echo exported-marker > /tmp/marker")
    archive = tmp_path / "httpd.tar.gz"
    exported = json.loads(project.inv("httpd.export", "-o", str(archive), "--json").stdout)
    assert exported["kind"] == "export" and exported["size_bytes"] == archive.stat().st_size > 0
    imported = project.inv("httpd.import", str(archive), "--tag", f"{project.name}/imported:1",
                           "--change", 'CMD ["cat", "/tmp/marker"]')
    assert f"as {project.name}/imported:1" in imported.stdout
    output = docker_client.containers.run(f"{project.name}/imported:1", remove=True)
    assert output == b"exported-marker\n"
    assert docker_client.images.get(f"{project.name}/imported:1").labels["dockyard.project"] == project.name


def test_export_over_a_private_file_keeps_it_private_as_docker_export_does(project, tmp_path):
    project.inv("busybox.run", "--quiet-build", "--", "sh", "-c", "exit 0")  # exported stopped, as docker can
    ours, theirs = tmp_path / "ours.tar", tmp_path / "theirs.tar"
    for path in (ours, theirs):
        path.write_text("an old private archive")
        path.chmod(0o600)
    project.inv("busybox.export", "-o", str(ours), "--force")
    subprocess.run(["docker", "export", "-o", str(theirs), project.container("busybox")], check=True)
    assert tarfile.is_tarfile(ours) and stat.S_IMODE(ours.stat().st_mode) == 0o600
    assert stat.S_IMODE(ours.stat().st_mode) == stat.S_IMODE(theirs.stat().st_mode)


def test_save_remove_load_serves_the_same_page(project, docker_client, tmp_path):
    project.inv("httpd.run", "--quiet-build")
    before = get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")[1]
    image_id = docker_client.images.get(project.tags["httpd"]).id
    archive = tmp_path / "httpd.tar"
    saved = project.inv("httpd.save", "-o", str(archive))
    assert saved.stdout.startswith(f"saved {project.tags['httpd']} to {archive}")
    project.inv("httpd.rm", "--force")
    docker_client.images.remove(project.tags["httpd"], force=True)
    loaded = json.loads(project.inv("httpd.load", str(archive), "--json").stdout)
    assert loaded["tags"] == [project.tags["httpd"]]
    assert docker_client.images.get(project.tags["httpd"]).id == image_id
    project.inv("httpd.run", "--no-build")
    after = get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")[1]
    assert before.split("My uname")[0] == after.split("My uname")[0]  # hostnames differ
    assert "up to date" in project.inv("httpd.status").stdout


def test_project_save_and_load_carry_every_image(project, docker_client, tmp_path):
    project.inv("build", "--quiet")
    archive = tmp_path / "project.tar"
    assert "saved 4 images" in project.inv("save", "-o", str(archive)).stdout
    for tag in reversed(list(project.tags.values())):
        docker_client.images.remove(tag)
    project.inv("load", str(archive))
    # Loaded images keep their tags and build keys: nothing needs building again.
    assert set(statuses(project.inv("build").stdout).values()) == {"up to date"}


def test_commit_keeps_a_change_made_in_the_container(project, docker_client):
    writable_root(project)
    project.inv("httpd.run", "--quiet-build")
    project.inv("httpd.exec", "echo committed-change > /cfg/change")
    result = json.loads(project.inv(
        "httpd.commit", "--tag", f"{project.name}/committed:v1", "--message", "a fix", "--author", "Ops <ops@x>",
        "--change", 'CMD ["cat", "/cfg/change"]', "--json").stdout)
    assert result["tags"] == [f"{project.name}/committed:v1"]
    image = docker_client.images.get(f"{project.name}/committed:v1")
    assert image.id == result["ids"][0]
    assert image.attrs["Comment"] == "a fix" and image.attrs["Author"] == "Ops <ops@x>"
    # Not the build dockyard made, and not a container: those labels are cleared.
    assert image.labels["dockyard.key"] == "" and image.labels["dockyard.owner"] == ""
    assert docker_client.containers.run(image.id, remove=True) == b"committed-change\n"
    default = project.inv("httpd.commit").stdout
    assert f"as {project.name}/httpd:20" in default  # a timestamped tag of the repository


def test_rm_refuses_a_running_container_without_force(project, docker_client):
    project.inv("httpd.run", "--quiet-build")
    assert_clean_failure(project.inv("httpd.rm", check=False), "is running", "--force")
    assert docker_client.containers.get(project.container("httpd")).status == "running"
    assert project.inv("httpd.rm", "--force").stdout.strip() == f"removed {project.container('httpd')}"
    assert project.inv("httpd.rm").stdout.strip() == f"no container named {project.container('httpd')}"


def test_clean_removes_only_this_projects_stopped_containers_and_dangling_images(project, docker_client):
    project.inv("my-app.run", "--quiet-build")  # a one-shot: leaves a stopped container of ours
    project.inv("httpd.run", "--quiet-build")
    old_image = docker_client.images.get(project.tags["httpd"]).id
    index = project.root / "images" / "busybox-httpd" / "index.html"
    index.write_text("<p>new</p>\n")
    project.inv("httpd.build")  # the old image is still used by the running container: kept
    assert old_image in {i["Id"] for i in docker_client.api.images(all=True)}
    project.inv("httpd.rm", "--force")  # now the old image is dangling and ours
    foreign = docker_client.containers.create(project.tags["busybox"], "true", name=f"{project.name}-foreign")
    other = docker_client.containers.create(project.tags["busybox"], "true", labels={"dockyard.owner": "someone"})
    try:
        dry = project.inv("clean", "--dry-run").stdout
        assert f"would remove container {project.container('my-app')}" in dry
        assert f"would remove image {old_image[7:19]}" in dry
        assert "foreign" not in dry
        assert dry.splitlines()[-1] == "would remove 1 stopped container and 1 dangling image"
        assert docker_client.containers.get(project.container("my-app"))  # dry run removed nothing
        result = json.loads(project.inv("clean", "--json").stdout)
        assert [c["name"] for c in result["containers"]] == [project.container("my-app")]
        assert [i["id"] for i in result["images"]] == [old_image]
        assert result["space_reclaimed"] > 0
        assert old_image not in {i["Id"] for i in docker_client.api.images(all=True)}
        foreign.reload()
        other.reload()  # other people's stopped containers are still there
        everything = project.inv("clean", "--all", "--dry-run").stdout
        assert f"{project.name}-foreign" in everything
        assert everything.splitlines()[-1] == ("BuildKit's build cache is the engine's, not images: "
                                               "`docker builder prune` frees it")
        refused = project.inv("clean", "--all", check=False)
        assert_clean_failure(refused, "confirm with --yes")
        foreign.reload()
        assert "removed 0 stopped containers and 0 dangling images" in project.inv("clean").stdout
    finally:
        foreign.remove(force=True)
        other.remove(force=True)


def test_clean_has_the_engine_size_the_containers_it_removes_once(project, docker_client, monkeypatch):
    """The sizes (for what a clean reclaims) cost the engine a walk of each container's
    writable layer: the listing of what clean removes asks them; the look for build leftovers,
    which finds the same containers of our images, asks none, nor for containers it keeps."""
    from dockyard import Project
    from dockyard.engine import client

    project.inv("my-app.run", "--quiet-build")  # a one-shot: a stopped container of ours, of our image
    mine = docker_client.containers.create(project.tags["busybox"], "sh -c 'echo x > /marker'",
                                           labels={"dockyard.owner": project.name})
    mine.start()
    mine.wait()
    # Someone's, run by hand from our image (its labels are ours): kept, and not sized.
    docker_client.containers.create(project.tags["busybox"], "true")
    sized = []
    real = client.open_answer

    def recording(method, path, what, **options):
        if "size=1" in path:
            sized.append(path.partition("?")[0])
        return real(method, path, what, **options)

    monkeypatch.setattr(client, "open_answer", recording)
    planned = Project(project.config).clean(dry_run=True)
    assert sized == ["/containers/json"], sized
    expected = {c["Id"]: c.get("SizeRw", 0) for c in docker_client.api.containers(all=True, size=True)
                if c["Id"] in {mine.id, docker_client.containers.get(project.container("my-app")).id}}
    assert {c["id"]: c["size"] for c in planned["containers"]} == expected
    assert expected[mine.id] > 0


def test_image_clean_is_scoped_to_that_image(project, docker_client):
    project.inv("my-app.run", "--quiet-build")
    project.inv("httpd.run", "--quiet-build")
    project.inv("httpd.stop")
    result = project.inv("httpd.clean").stdout
    assert f"removed container {project.container('httpd')}" in result
    assert docker_client.containers.get(project.container("my-app"))


def test_artifact_bad_input_is_one_clear_message(project, tmp_path):
    project.inv("httpd.run", "--quiet-build")
    missing = tmp_path / "missing.tar"
    assert_clean_failure(project.inv("httpd.import", str(missing), check=False), str(missing))
    assert_clean_failure(project.inv("httpd.load", str(tmp_path), check=False), str(tmp_path))
    not_tar = tmp_path / "notes.tar"
    not_tar.write_text("this is not a tar archive\n" * 100)
    assert_clean_failure(project.inv("httpd.load", str(not_tar), check=False), str(not_tar))
    assert_clean_failure(project.inv("httpd.export", "-o", str(tmp_path / "no" / "dir.tar"), check=False),
                         str(tmp_path / "no"))
    existing = tmp_path / "existing.tar"
    existing.write_text("keep me")
    assert_clean_failure(project.inv("httpd.save", "-o", str(existing), check=False), "--force")
    assert existing.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.tar", "notes.tar", "project"]


def test_clean_leaves_images_others_built_from_ours(project, docker_client, tmp_path):
    """An image built FROM one of ours inherits our labels; it is still not ours to remove."""
    project.inv("build", "--quiet")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    ids = []
    for version in ("1", "2"):  # the second build leaves the first dangling
        (theirs / "Dockerfile").write_text(f"FROM {project.tags['httpd']}\nRUN echo {version} > /v\n")
        image, _ = docker_client.images.build(path=str(theirs), tag=f"{project.name}-user/mine", rm=True)
        ids.append(image.id)
    dangling = {i.id for i in docker_client.images.list(filters={"dangling": True})}
    assert ids[0] in dangling
    assert docker_client.images.get(ids[0]).labels["dockyard.project"] == project.name  # inherited
    try:
        assert ids[0][7:19] not in project.inv("clean", "--dry-run").stdout
        project.inv("clean")
        assert docker_client.images.get(ids[0]).id == ids[0]
    finally:
        for image_id in reversed(ids):
            docker_client.images.remove(image_id, force=True)
