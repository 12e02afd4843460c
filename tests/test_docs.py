"""README.md and the manual (docs/, built with MkDocs): the site builds strictly, with no
warning; the containers.toml reference has every key; the Python API page names every method;
the README stays a first screen; and every block marked runnable is run as written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, free_port, get, make_project, remove_project_objects, unique
from doc_blocks import PAGES, RUN_BY, all_blocks, block, blocks

README = REPO / "README.md"


# -- engine-free ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The manual built as `mkdocs build --strict` builds it; any warning fails it."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    return out


def test_the_manual_builds_strictly_with_no_warning(site):
    pages = {path.relative_to(site).as_posix() for path in site.rglob("index.html")}
    # Every page of docs/ is in the site, and in the navigation (MkDocs warns of one that is not).
    expected = {"index.html"} | {f"{page.stem}/index.html" for page in (REPO / "docs").glob("*.md")
                                 if page.stem != "index"}
    assert expected <= pages


def test_a_broken_link_fails_the_build(tmp_path):
    """strict and validation in mkdocs.yml: a link to a missing page or anchor is an error."""
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copy(REPO / "mkdocs.yml", tmp_path)
    shutil.copy(REPO / "docs_hooks.py", tmp_path)
    shutil.copytree(REPO / "bench", tmp_path / "bench", ignore=shutil.ignore_patterns("results", "__pycache__"))
    for broken in ("[x](nosuch.md)", "[x](tasks.md#nosuch-anchor)"):
        with (tmp_path / "docs" / "troubleshooting.md").open("a") as page:
            page.write(f"\n{broken}\n")
        result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                                 str(tmp_path / "site")], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert result.returncode != 0 and "troubleshooting.md" in result.stderr, result.stderr
        shutil.copy(REPO / "docs" / "troubleshooting.md", tmp_path / "docs")


def test_every_containers_toml_key_is_in_the_reference(site):
    """The reference is made from dockyard/schema.py when the site is built: every key is there."""
    sys.path.insert(0, str(REPO))
    import docs_hooks
    from dockyard import schema

    page = (site / "configuration" / "index.html").read_text()
    paths = [path for path, _ in docs_hooks.key_rows()]
    assert "images.NAME.run.ports" in paths and "volumes.NAME.external" in paths
    assert len(paths) == count_keys(schema.DOCUMENT)
    for path, key in docs_hooks.key_rows():
        row = re.search(rf"<td><code>{re.escape(path)}</code></td>\s*<td>([^<]*)</td>\s*<td>(.*?)</td>", page)
        assert row, f"{path} is not in the reference"
        assert row[1].startswith("table" if key.type == schema.TABLES else key.type)


def test_the_keys_explained_in_detail_are_keys():
    """The prose about keys is kept by hand: a key renamed or gone from the schema fails here."""
    sys.path.insert(0, str(REPO))
    import docs_hooks

    page = (REPO / "docs" / "configuration.md").read_text()
    explained = re.findall(r"^- `([a-z_.A-Z]+)` \(", page, flags=re.MULTILINE)
    assert len(explained) > 40
    assert set(explained) <= {path for path, _ in docs_hooks.key_rows()}


def test_the_benchmark_page_includes_bench_readme(site):
    """bench/README.md, the method and the latest figures with their command, is in the
    manual as it is in the repository, not a copy."""
    import html

    page = html.unescape((site / "benchmark" / "index.html").read_text())
    bench = (REPO / "bench" / "README.md").read_text()
    commands = re.findall(r"^\.venv/bin/python bench/run\.py --rounds .*$", bench, flags=re.MULTILINE)
    assert commands and all(command in page for command in commands)
    for heading in re.findall(r"^## (.+)$", bench, flags=re.MULTILINE):
        assert f">{heading}<" in page.replace('<a class="headerlink"', "<"), heading


def count_keys(table) -> int:
    return sum(1 + (count_keys(key.table) if key.table else 0) for key in table.keys)


def test_the_python_api_page_names_every_public_method():
    from dockyard import Project

    page = (REPO / "docs" / "python-api.md").read_text()
    public = [name for name in vars(Project) if not name.startswith("_")]
    assert {"up", "down", "push", "pull", "deploy"} <= set(public)
    missing = [name for name in public if f"`{name}`" not in page and f"`{name}(" not in page]
    assert missing == []


def test_every_runnable_block_is_run_by_a_named_test():
    marked = [b for b in all_blocks() if b.kind is not None]
    assert {b.kind for b in marked} == set(RUN_BY), "a kind no test runs, or a test with no block"
    for test in set(RUN_BY.values()):
        module, function = test.split("::")
        assert f"def {function}(" in (REPO / "tests" / module).read_text(), test


def test_every_command_in_the_readme_is_marked_runnable():
    """What a newcomer is told to type is run by a test: no unmarked command block."""
    readme = [b for b in all_blocks([README])]
    unmarked = [str(b) for b in readme if b.kind is None]
    assert unmarked == []
    assert {"quickstart", "test-command", "commands"} <= {b.kind for b in readme}


def test_the_readme_is_a_first_screen():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    assert "load average" not in text
    # No commit hashes: the figures' commands and dates live in bench/README.md.
    assert re.findall(r"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b", text) == []


def test_every_figure_in_the_readme_links_to_the_command_that_measured_it():
    text = README.read_text()
    bench = (REPO / "bench" / "README.md").read_text()
    paragraphs = text.split("\n\n")
    figures = [(p, f) for p in paragraphs for f in re.findall(r"\b\d+\.\d+ s\b", p)]
    assert figures, "the README gives no figure (then this test has nothing to check: drop it)"
    for paragraph, figure in figures:
        assert "(bench/README.md#" in paragraph, paragraph
        assert figure in bench, f"{figure} is not in bench/README.md"
    assert "\n.venv/bin/python bench/run.py " in bench  # the command beside the table


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and MkDocs' toc) give a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readmes_links_lead_somewhere():
    for target in re.findall(r"\]\(([^)#:]+)(?:#([^)]+))?\)", README.read_text()):
        path, anchor = REPO / target[0], target[1]
        assert path.exists(), target
        if anchor:
            headings = [line.lstrip("#") for line in path.read_text().splitlines() if line.startswith("#")]
            assert anchor in {github_anchor(h) for h in headings}, target


def test_the_readmes_test_command_is_what_ci_runs():
    ci = (REPO / ".ci" / "run").read_text()
    [command] = re.findall(r'^TEST_COMMAND="(.*)"$', ci, flags=re.MULTILINE)
    assert block("test-command").text == command + "\n"


def test_the_containers_toml_shown_is_the_example_and_loads():
    from dockyard import config

    example = (REPO / "containers.toml").read_text()
    for shown in blocks("containers.toml"):
        assert shown.text == example, shown
    loaded = config.load(REPO / "containers.toml")
    assert list(loaded.images) == ["busybox", "my-app", "httpd", "api"]


def test_the_tasks_py_shown_is_the_example():
    assert block("tasks.py").text == (REPO / "tasks.py").read_text()


def test_the_pages_are_the_ones_the_blocks_are_read_from():
    assert README in PAGES and REPO / "docs" / "registry.md" in PAGES


# -- on the real engine -----------------------------------------------------------------------

def commands_of(text: str) -> list[str]:
    """The commands of a block: `$ ` prompts and output lines of a transcript, comments, go."""
    lines = [line for line in text.splitlines() if line.strip()]
    if any(line.startswith("$ ") for line in lines):
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    return [re.sub(r"\s+#.*$", "", line) for line in lines]


def fresh_env() -> dict[str, str]:
    """This process's environment less what ties a child to its virtual environment."""
    return {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}


def copy_of_the_repository(root: Path):
    """What a clone holds that the quick start uses, with the example made unique to this test
    (names, tags and port; see conftest's make_project)."""
    root.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, root)
    shutil.copytree(REPO / "dockyard", root / "dockyard", ignore=shutil.ignore_patterns("__pycache__"))
    return make_project(root)


@pytest.mark.integration
def test_the_readmes_quick_start_serves_the_page(tmp_path, docker_client):
    """The quick start's first command, as written: a fresh venv, an editable install, the
    tutorial's server; what it prints last is what the README shows, and the page answers."""
    made = copy_of_the_repository(tmp_path / "clone")
    try:
        result = subprocess.run(["bash", "-c", block("quickstart").text], cwd=made.root, capture_output=True,
                                text=True, timeout=600, env=fresh_env())
        assert result.returncode == 0, result.stdout + result.stderr
        printed = re.sub(r"^Container id: [0-9a-f]{64}$", "Container id: (the new container's id)",
                         result.stdout, flags=re.MULTILINE)
        shown = block("run-output").text.replace(":8000", f":{made.port}")
        assert printed.strip().endswith(shown.strip()), printed
        index = get(f"http://127.0.0.1:{made.port}/")[1]
        assert "Hello, World!" in index and 'href="/cgi-bin/hello-world"' in index
        status, page = get(f"http://127.0.0.1:{made.port}/cgi-bin/hello-world")
        assert status == 200
        for said in ("Hello, World!", "You are ", "My uname is Linux ", "I'm running busybox httpd/"):
            assert said in page, page
    finally:
        remove_project_objects(docker_client, made.name)


@pytest.mark.integration
@pytest.mark.parametrize("shown", blocks("commands"), ids=str)
def test_the_command_blocks_run_in_order(shown, project):
    """Each command as written, in a copy of the example whose names and port are its own;
    `inv` is the venv's (the tests' interpreter)."""
    inv = f"{sys.executable} -m invoke"
    for command in commands_of(shown.text):
        assert command.startswith("inv "), command
        result = subprocess.run(command.replace("inv ", f"{inv} ", 1), shell=True, cwd=project.root,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
        if command == "inv --list":
            assert "httpd.run" in result.stdout and "up " in result.stdout
    project.inv("down")


@pytest.mark.integration
def test_the_manuals_registry_config_serves_a_registry(tmp_path, project):
    """The configuration docs/registry.md gives, on a port and in a directory of the test's own:
    the registry answers, and an image is pushed to it."""
    port = free_port()
    text = block("registry-config").text
    assert "addr: 127.0.0.1:5000" in text and "rootdirectory: /var/lib/docker-registry" in text
    text = text.replace("127.0.0.1:5000", f"127.0.0.1:{port}")
    text = text.replace("/var/lib/docker-registry", str(tmp_path / "data"))
    (tmp_path / "config.yml").write_text(text)
    with (tmp_path / "log").open("w") as log:
        registry = subprocess.Popen(["/usr/bin/docker-registry", "serve", str(tmp_path / "config.yml")],
                                    stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                assert get(f"http://127.0.0.1:{port}/v2/")[0] == 200
                break
            except OSError:
                assert registry.poll() is None and time.monotonic() < deadline, (tmp_path / "log").read_text()
                time.sleep(0.1)
        pushed = project.inv("busybox.build", "busybox.push", "--registry", f"127.0.0.1:{port}")
        assert f"busybox: pushed 127.0.0.1:{port}/{project.tags['busybox']}" in pushed.stdout
    finally:
        registry.terminate()
        registry.wait(timeout=10)
