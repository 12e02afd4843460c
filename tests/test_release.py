"""The release as users get it: one version, said by `dockyard --version` and `python -m
dockyard`; and (on the real engine) the sdist and the wheel built as a release builds them, the
wheel installed, not editable, into a fresh virtual environment, running the tutorial."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, get, make_project, remove_project_objects

if sys.version_info >= (3, 11):
    import tomllib
else:  # as dockyard reads TOML there
    import tomli as tomllib

VERSION = "0.3.0"


def test_the_version_is_written_once_and_the_package_says_it():
    import dockyard

    assert dockyard.__version__ == VERSION
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "dockyard.__version__"}


@pytest.mark.parametrize("command", [[sys.executable, "-m", "dockyard", "--version"],
                                     [str(Path(sys.executable).with_name("dockyard")), "--version"]])
def test_dockyard_version_prints_the_version(command, tmp_path):
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"dockyard {VERSION}\n", "")


def test_dockyard_without_arguments_points_to_inv_list(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dockyard"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith(f"dockyard {VERSION}: ") and "`inv --list`" in result.stdout


def test_a_wrong_argument_is_a_usage_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dockyard", "--bogus"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == "dockyard: error: unrecognized arguments: --bogus"


def test_every_package_is_listed_for_setuptools():
    """A sub-package missing from [tool.setuptools] packages is missing from the wheel."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {".".join(init.parent.relative_to(REPO).parts) for init in (REPO / "dockyard").rglob("__init__.py")}
    assert set(pyproject["tool"]["setuptools"]["packages"]) == packages


@pytest.mark.integration
def test_the_wheel_installed_in_a_fresh_venv_runs_the_tutorial(tmp_path, docker_client):
    """As a release is made and installed: `python -m build` makes the sdist and the wheel
    (from the sdist); the wheel carries the schema; it is installed, not editable, into a new
    virtual environment; from a copy of the example project, `inv --list` and `inv httpd.run`
    (the page answers) run with that installation only."""
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    [sdist] = dist.glob(f"dockyard-{VERSION}.tar.gz")
    [wheel] = dist.glob(f"dockyard-{VERSION}-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(f"dockyard-{VERSION}.dist-info/entry_points.txt").decode()
    assert {"dockyard/containers.schema.json", "dockyard/__main__.py", "dockyard/tasks/__init__.py",
            "dockyard/engine/__init__.py"} <= names
    assert "dockyard = dockyard.__main__:main" in entry_points
    with tarfile.open(sdist) as archive:
        assert f"dockyard-{VERSION}/dockyard/containers.schema.json" in archive.getnames()

    venv = tmp_path / "venv"
    environment = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], capture_output=True,
                               text=True, timeout=300, env=environment)
    assert installed.returncode == 0, installed.stderr[-3000:]
    shown = subprocess.run([str(venv / "bin" / "python"), "-c", "import dockyard; print(dockyard.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, env=environment, check=True).stdout
    assert Path(shown).is_relative_to(venv), shown  # the installed copy, not this checkout
    version = subprocess.run([str(venv / "bin" / "dockyard"), "--version"], capture_output=True, text=True,
                             env=environment)
    assert version.stdout == f"dockyard {VERSION}\n"

    project = make_project(tmp_path / "project")
    inv = str(venv / "bin" / "inv")
    try:
        listed = subprocess.run([inv, "--list"], cwd=project.root, capture_output=True, text=True, timeout=120,
                                env=environment)
        assert listed.returncode == 0 and "httpd.run" in listed.stdout, listed.stderr
        ran = subprocess.run([inv, "httpd.run", "--quiet-build"], cwd=project.root, capture_output=True,
                             text=True, timeout=300, env=environment)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        status, page = get(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")
        assert status == 200 and "Hello, World!" in page
        stopped = subprocess.run([inv, "httpd.stop"], cwd=project.root, capture_output=True, text=True,
                                 timeout=120, env=environment)
        assert stopped.returncode == 0, stopped.stderr
    finally:
        remove_project_objects(docker_client, project.name)
