"""The release as users get it: one version, said by `dockyard --version` and `python -m
dockyard`; and (on the real engine) the sdist and the wheel built as a release builds them, the
wheel installed, not editable, into a fresh virtual environment, running the tutorial."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

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
