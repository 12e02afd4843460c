"""The bench's workspace: its unique names, its projects, and the cleanup of all it made.

Everything a run makes is named ``dybench-<random>...`` (projects, tags, containers) and its
files live in one temporary directory. ``Bench.cleanup`` removes the containers, the images
(also the baseline's, which later builds may leave dangling) and the directory; ``run.py``
calls it at the end whatever happened.
"""

from __future__ import annotations

import argparse
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path

from bench.harness import Sample, checked, docker, measure, run

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from example_project import ISOLATED_TOML  # noqa: E402 - the tests' unique-names project


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def inv_argv() -> list[str]:
    """The real `inv` program of this venv, as a user runs it."""
    script = Path(sys.executable).parent / "inv"
    return [str(script)] if script.exists() else [sys.executable, "-m", "invoke"]


# The limit no Invoke program can go below: Invoke itself, in this venv, running one no-op task.
BARE_TASKS_PY = "from invoke import task\n\n\n@task\ndef noop(c):\n    pass\n"
BARE_INVOKE = [sys.executable, "-m", "invoke", "noop"]

BUILD_HTTPD_SH = """set -e
tag={tag}
name=$(basename "$tag")
docker rmi "$tag" >&/dev/null || true
docker build -f Dockerfile -t "$tag" .
"""

RUN_HTTPD_SH = """set -e
tag={tag}
name={name}
port={port}
docker rm -f "$name" >&/dev/null || true
id=$(docker run -d --name="$name" -p "127.0.0.1:$port:$port" -e HTTPD_PORT="$port" "$tag")
echo "
Container id: $id

Point your browser to: http://localhost:$port

Stop with: docker stop $name
"
"""


def rewrite_from(dockerfile: Path, old: str, new: str) -> None:
    text = re.sub(rf"^FROM {re.escape(old)}\b", f"FROM {new}", dockerfile.read_text(), flags=re.MULTILINE)
    dockerfile.write_text(text)


class Bench:
    """One run's workspace: the ``dybench-<random>`` prefix, the projects built under it, cleanup.

    Cases share the example project (``main_project``, built once on first use, with the
    baseline's copy in ``cli``) and add their own with ``generated_project``.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.prefix = f"dybench-{secrets.token_hex(4)}"
        self.work = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        self.inv = inv_argv()
        self.projects: list[str] = []  # dockyard project names we made
        self.image_ids: set[str] = set()  # images the baseline built (they may be dangling later)
        self.main: Path | None = None
        self.cli: Path | None = None
        self.port = free_port()
        self.cli_port = free_port()
        self.base_id: str | None = None
        self.names_cache: dict[Path, set[str]] = {}

    # names
    @property
    def name(self) -> str:
        return self.prefix

    def tag(self, key: str, project: str | None = None) -> str:
        return f"{project or self.prefix}/{key}:latest"

    @property
    def base(self) -> str:
        return self.tag("busybox")

    @property
    def cli_name(self) -> str:
        return f"{self.prefix}-cli"

    def inv_cmd(self, *args: str) -> list[str]:
        return [*self.inv, *args]

    @property
    def bare_project(self) -> Path:
        """A directory whose tasks.py has one no-op task and nothing else (no dockyard)."""
        directory = self.work / "plain-invoke"
        if not directory.exists():
            directory.mkdir()
            (directory / "tasks.py").write_text(BARE_TASKS_PY)
        return directory

    def bare_invoke(self, i: int) -> Sample:
        """One round of bare Invoke, the third side of every case (see ``harness.alternate``)."""
        return checked(measure(BARE_INVOKE, self.bare_project), "python -m invoke noop (bare Invoke)")

    def record(self, *tags: str) -> None:
        """Remember the baseline's images by id: the next build may leave them dangling."""
        out = docker("image", "inspect", "--format", "{{.Id}}", *tags, check=False)
        self.image_ids.update(line.strip() for line in out.splitlines() if line.strip())

    def task_names(self, project: Path) -> set[str]:
        if project not in self.names_cache:
            out = run(self.inv_cmd("--list"), cwd=project)
            self.names_cache[project] = {line.split()[0] for line in out.splitlines()
                                         if line.startswith("  ") and line.strip()}
        return self.names_cache[project]

    # the example project, and the baseline's copy of it
    def main_project(self) -> Path:
        """The example project with our names, built; the CLI copy with the same base, built."""
        if self.main is not None:
            return self.main
        root = self.work / "main"
        shutil.copytree(REPO / "images", root / "images")
        shutil.copy(REPO / "tasks.py", root / "tasks.py")
        rewrite_from(root / "images/my-app/Dockerfile", "busybox", self.base)
        rewrite_from(root / "images/busybox-httpd/Dockerfile", "my-app", self.tag("my-app"))
        rewrite_from(root / "images/api/Dockerfile", "busybox", self.base)
        (root / "containers.toml").write_text(ISOLATED_TOML.format(name=self.name, port=self.port))
        self.projects.append(self.name)
        print(f"setup: building the example project {self.name} with dockyard", flush=True)
        checked(measure(self.inv_cmd("build"), root), f"setup `inv build` in {root}")
        self.base_id = docker("image", "inspect", "--format", "{{.Id}}", self.base).strip()

        cli = self.work / "cli"
        shutil.copytree(REPO / "images", cli / "images")
        rewrite_from(cli / "images/my-app/Dockerfile", "busybox", self.tag("busybox", self.cli_name))
        rewrite_from(cli / "images/busybox-httpd/Dockerfile", "my-app", self.tag("my-app", self.cli_name))
        rewrite_from(cli / "images/api/Dockerfile", "busybox", self.tag("busybox", self.cli_name))
        # The baseline's Dockerfiles name the base by its own tag: the same image, tagged again.
        docker("tag", self.base, self.tag("busybox", self.cli_name))
        print("setup: building the baseline's copy with the docker CLI", flush=True)
        docker("build", "-t", self.tag("my-app", self.cli_name), str(cli / "images/my-app"))
        docker("build", "-t", self.tag("httpd", self.cli_name), str(cli / "images/busybox-httpd"))
        docker("build", "-t", self.tag("api", self.cli_name), str(cli / "images/api"))
        self.record(self.tag("my-app", self.cli_name), self.tag("httpd", self.cli_name), self.tag("api", self.cli_name))
        (self.work / "build-httpd.sh").write_text(BUILD_HTTPD_SH.format(tag=self.tag("httpd", self.cli_name)))
        (self.work / "run-httpd.sh").write_text(RUN_HTTPD_SH.format(
            tag=self.tag("httpd", self.cli_name), name=f"{self.cli_name}-httpd", port=self.cli_port))
        self.main, self.cli = root, cli
        return root

    def generated_project(self, suffix: str, images: dict[str, tuple[str, str]],
                          extra: dict[str, str] | None = None) -> Path:
        """A dockyard project ``<prefix>-<suffix>``: {key: (FROM ref, Dockerfile body)}."""
        name = f"{self.prefix}-{suffix}"
        root = self.work / suffix
        (root / "images").mkdir(parents=True)
        shutil.copy(REPO / "tasks.py", root / "tasks.py")
        toml = [f'[project]\nname = "{name}"\n']
        for key, (parent, body) in images.items():
            directory = root / "images" / key
            directory.mkdir()
            (directory / "Dockerfile").write_text(f"FROM {parent}\n{body}")
            toml.append(f'[images.{key}]\ntag = "{name}/{key}:latest"\ndir = "images/{key}"\n'
                        f'run = {{ name = "{name}-{key}"{(extra or {}).get(key, "")} }}\n')
        (root / "containers.toml").write_text("\n".join(toml))
        self.projects.append(name)
        return root

    # cleanup
    def cleanup(self) -> None:
        """Remove every container and image we made, then the temporary directory."""
        # Finish cleaning even on a second Ctrl-C or SIGTERM.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._remove_containers()
            self._remove_networks_and_volumes()
            self._remove_images()
        except Exception as e:  # noqa: BLE001 - report, and still remove the files
            print(f"cleanup: {e}", file=sys.stderr)
        finally:
            shutil.rmtree(self.work, ignore_errors=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _remove_containers(self) -> None:
        ids: set[str] = set()
        filters = [f"name={self.prefix}"] + [f"label=dockyard.owner={p}" for p in self.projects]
        if self.base_id:
            filters.append(f"ancestor={self.base_id}")
        for flt in filters:
            ids.update(docker("ps", "-aq", "--no-trunc", "--filter", flt, check=False).split())
        for chunk in _chunks(sorted(ids), 100):
            docker("rm", "-f", *chunk, check=False)

    def _remove_networks_and_volumes(self) -> None:
        """dockyard's (labelled with a project of ours) and the baseline's (named with our prefix)."""
        for kind in ("network", "volume"):
            ids: set[str] = set()
            for flt in [f"name={self.prefix}"] + [f"label=dockyard.owner={p}" for p in self.projects]:
                ids.update(docker(kind, "ls", "-q", "--filter", flt, check=False).split())
            if ids:
                docker(kind, "rm", *sorted(ids), check=False)

    def _remove_images(self) -> None:
        ids = set(self.image_ids)
        for project in self.projects:
            ids.update(docker("images", "-aq", "--no-trunc", "--filter", f"label=dockyard.project={project}",
                              check=False).split())
        tags = []
        for line in docker("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}",
                           check=False).splitlines():
            ref, _, image_id = line.partition(" ")
            if ref.startswith(self.prefix):
                tags.append(ref)
                ids.add(image_id)
        parents = _parents()
        if self.base_id:  # every image built on our base is ours: the base is unique to this run
            ids.add(self.base_id)
            changed = True
            while changed:
                grown = {child for child, parent in parents.items() if parent in ids and child not in ids}
                ids |= grown
                changed = bool(grown)
        for chunk in _chunks(tags, 100):
            docker("rmi", *chunk, check=False)
        remaining = {i for i in ids if i}
        for _ in range(6):  # children before parents
            if not remaining:
                break
            depth = {i: _depth(i, parents) for i in remaining}
            for image_id in sorted(remaining, key=lambda i: -depth[i]):
                docker("rmi", "-f", image_id, check=False)
            still = set(docker("images", "-aq", "--no-trunc", check=False).split())
            remaining &= still
        if remaining:
            print(f"cleanup: could not remove {len(remaining)} images: {sorted(remaining)[:5]}", file=sys.stderr)


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _parents() -> dict[str, str]:
    """image id -> parent id, for every image (the legacy builder records parents)."""
    ids = docker("images", "-aq", "--no-trunc", check=False).split()
    parents: dict[str, str] = {}
    for chunk in _chunks(sorted(set(ids)), 200):
        out = docker("image", "inspect", "--format", "{{.Id}} {{.Parent}}", *chunk, check=False)
        for line in out.splitlines():
            image_id, _, parent = line.partition(" ")
            if parent.strip():
                parents[image_id] = parent.strip()
    return parents


def _depth(image_id: str, parents: dict[str, str]) -> int:
    depth = 0
    while image_id in parents and depth < 1000:
        image_id = parents[image_id]
        depth += 1
    return depth
