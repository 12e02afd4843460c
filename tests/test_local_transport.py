"""On a local engine every request takes the standard-library client: a build, the archive
tasks and `clean` load no docker-py (a tenth of a second or more each), in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

# A build, a run, the archive tasks and a clean through the Python API; then whether docker-py
# was imported. DOCKER_CONFIG is an empty directory: no registry credentials to read.
SCRIPT = """
import json, sys
from dockyard import Project

project, out = Project(sys.argv[1]), sys.argv[2]
done = [project.build(["my-app"], force=True, quiet=True)[-1]["status"],
        project.run("my-app", build=False)["exit_code"],
        project.save(["my-app"], f"{out}/my-app.tar")["kind"],
        project.export("my-app", f"{out}/files.tar")["kind"],
        project.commit("my-app", tag="committed")["kind"],
        project.load(f"{out}/my-app.tar", "my-app")["kind"],
        project.import_("my-app", f"{out}/files.tar", tag=sys.argv[3])["kind"],
        project.clean("my-app", dry_run=True)["dry_run"]]
print(json.dumps({"done": done, "docker imported": "docker" in sys.modules}))
"""


def test_a_build_the_archive_tasks_and_clean_load_no_docker_py_on_a_local_engine(project, tmp_path):
    project.inv("build", "--quiet")
    (tmp_path / "docker-config").mkdir()
    env = {"DOCKER_CONFIG": str(tmp_path / "docker-config"), "PATH": "/usr/bin:/bin"}
    imported = f"{project.name}/imported:latest"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(project.config), str(tmp_path), imported],
                          capture_output=True, text=True, timeout=300, cwd=project.root, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "done": ["built", 0, "save", "export", "commit", "load", "import", True], "docker imported": False}
