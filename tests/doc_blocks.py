"""The code blocks of README.md, CHANGELOG.md and the manual (docs/) that tests run.

A runnable block is marked by an HTML comment on the line before its opening fence,
``<!-- runnable: KIND -->``, which neither GitHub nor MkDocs shows; KIND says how it is run,
and ``RUN_BY`` names the test that runs each kind. Blocks without a mark are transcripts or
sketches (another machine's output, a swarm of several hosts) and are not run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]

FENCE = re.compile(r"^```(?P<language>[\w.-]*)\n(?P<text>.*?)^```$", re.MULTILINE | re.DOTALL)
MARK = re.compile(r"<!-- runnable: (?P<kind>\S+) -->\n$")

# kind -> the test (file::function) that runs every block of that kind.
RUN_BY = {
    "quickstart": "test_docs.py::test_the_readmes_quick_start_serves_the_page",
    "run-output": "test_docs.py::test_the_readmes_quick_start_serves_the_page",
    "test-command": "test_docs.py::test_the_readmes_test_command_is_what_ci_runs",
    "commands": "test_docs.py::test_the_command_blocks_run_in_order",
    "containers.toml": "test_docs.py::test_the_containers_toml_shown_is_the_example_and_loads",
    "tasks.py": "test_docs.py::test_the_tasks_py_shown_is_the_example",
    "registry-config": "test_docs.py::test_the_manuals_registry_config_serves_a_registry",
    "users-tasks.py": "test_compose.py::test_a_users_tasks_py_chains_dockyard_tasks",
    "python-script": "test_compose.py::test_the_readmes_python_api_example_runs_as_written",
    "upgrade-external": "test_volume_upgrade.py::test_run_and_up_warn_once_of_a_volume_left_by_0_1",
    "upgrade-copy": "test_volume_upgrade.py::test_run_and_up_warn_once_of_a_volume_left_by_0_1",
    "watch": "test_watch.py::test_a_browser_sees_the_page_change_after_an_edit",
    "config-output": "test_config_output.py::test_the_readmes_example_is_what_config_prints",
}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, from 1
    kind: str | None  # None: not marked runnable
    language: str
    text: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def all_blocks(pages: list[Path] = PAGES) -> list[Block]:
    found = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for fence in FENCE.finditer(text):
            mark = MARK.search(text, 0, fence.start())
            kind = mark["kind"] if mark and mark.end() == fence.start() else None
            found.append(Block(page, text.count("\n", 0, fence.start()) + 1, kind, fence["language"],
                               fence["text"]))
    return found


def blocks(kind: str) -> list[Block]:
    """Every block marked ``kind``; at least one."""
    found = [block for block in all_blocks() if block.kind == kind]
    assert found, f"no block is marked <!-- runnable: {kind} -->"
    return found


def block(kind: str) -> Block:
    """The one block marked ``kind``."""
    [found] = blocks(kind)
    return found
