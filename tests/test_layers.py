"""dockyard's layers, read from its imports: tasks -> project -> operations -> engine / config.

Arrows point down only. The tasks (the Invoke side) call the Project API and print; they
may import a few helpers for printing from below it, named here. No operation imports the
tasks, the configuration imports no engine, the engine imports no operation, project or
task. Imports sit at the top of their modules, except the few named in dockyard/lazy.py.
Engine-free: it reads the source with ast.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from dockyard.lazy import LAZY

PACKAGE = Path(__file__).resolve().parent.parent / "dockyard"

# The layer of every module of dockyard (a new module must be given one).
LAYER = {
    # The Invoke side: the namespace, its tasks, and the package's public names.
    "dockyard": "tasks",
    "__main__": "tasks",  # `python -m dockyard`: the version
    "collection": "tasks",
    "tasks": "tasks",
    "tasks.artifacts": "tasks",
    "tasks.core": "tasks",
    "tasks.image": "tasks",
    "tasks.project": "tasks",
    "tasks.registry": "tasks",
    "tasks.services": "tasks",
    "tasks.swarm": "tasks",
    # The Python API, and the watch loop that drives it (its turns build and bring up through
    # a Project).
    "project": "project",
    "watch": "project",
    # What a command does, over the engine.
    "builder": "operations",
    "containers": "operations",
    "up": "operations",
    "swarm": "operations",
    "registry": "operations",
    "artifacts": "operations",
    "archive_reading": "operations",
    "archive_writing": "operations",
    "cleanup": "operations",
    "status": "operations",
    "resources": "operations",
    # The engine package, one layer: its client, transports, answers, errors and formats (ports,
    # BuildKit's stream); and our labels on what it makes.
    "engine": "engine",
    "engine.client": "engine",
    "engine.local": "engine",
    "engine.remote": "engine",
    "engine.ssh_relay": "engine",
    "engine.answers": "engine",
    "engine.errors": "engine",
    "engine.address": "engine",
    "engine.ports": "engine",
    "engine.buildkit": "engine",
    "labels": "engine",
    # The project's files read and checked: containers.toml, Dockerfiles, build contexts, and
    # which engine is chosen (engine_choice reads settings and the Docker CLI's contexts; it
    # makes no request).
    "config": "config",
    "schema": "config",
    "document": "config",
    "env_files": "config",
    "graph": "config",
    "context": "config",
    "dockerignore": "config",
    "digests": "config",
    "services": "config",
    "resolved": "config",
    "records": "config",
    "engine_choice": "config",
    # Used by every layer; they import nothing above them.
    "errors": "shared",
    "files": "shared",
    "masking": "shared",
    "interrupts": "shared",
    "turns": "shared",
    "progress": "shared",
    "lazy": "shared",
}

# The layers each layer may import (its own among them).
MAY_IMPORT = {
    "tasks": {"tasks", "project", "config", "shared"},
    "project": {"project", "operations", "engine", "config", "shared"},
    "operations": {"operations", "engine", "config", "shared"},
    "engine": {"engine", "config", "shared"},
    "config": {"config", "shared"},
    "shared": {"shared"},
}

# What the tasks may import from below the Project API: helpers that only format for printing.
PRINTING_HELPERS = {
    ("status", "format_rows"),
    ("swarm", "report_lines"),
    ("cleanup", "human_size"),
    ("engine", "short_id"),
}

# Layer violations not fixed yet, (importer, imported): this list may only shrink.
LAYER_EXCEPTIONS: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Import:
    importer: str   # dockyard's module, without "dockyard."
    module: str     # the module imported: "docker.types", "urllib.parse", or dockyard's "engine"
    names: tuple    # the names taken from it (from X import a, b)
    ours: bool      # a module of dockyard
    inner: bool     # inside a function
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return "dockyard" if name == "dockyard" else name.removeprefix("dockyard.")


def imports_of(path: Path) -> list[Import]:
    importer = module_name(path)
    package = ("dockyard." + importer if importer != "dockyard" else "dockyard")
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found = []

    def visit(node: ast.AST, inner: bool) -> None:
        for child in ast.iter_child_nodes(node):
            within = inner or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    ours = alias.name == "dockyard" or alias.name.startswith("dockyard.")
                    found.append(Import(importer, alias.name.removeprefix("dockyard.") if ours else alias.name,
                                        (), ours, within, child.lineno))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    absolute = ".".join(base + ([child.module] if child.module else []))
                else:
                    absolute = child.module or ""
                ours = absolute == "dockyard" or absolute.startswith("dockyard.")
                names = tuple(alias.name for alias in child.names)
                if ours and not child.module:  # from . import engine, containers: each a module
                    for name in names:
                        found.append(Import(importer, f"{absolute}.{name}".removeprefix("dockyard."), (),
                                            True, within, child.lineno))
                else:
                    found.append(Import(importer, absolute.removeprefix("dockyard.") if ours else absolute,
                                        names, ours, within, child.lineno))
            visit(child, within)

    visit(ast.parse(path.read_text(), str(path)), False)
    return found


def all_imports() -> list[Import]:
    return [i for path in sorted(PACKAGE.rglob("*.py")) for i in imports_of(path)]


def our_module(name: str) -> str:
    """The module of dockyard an import names: ``tasks.core``, or ``config`` for
    ``from ..config import load`` (recorded as module ``config``)."""
    while name not in LAYER and "." in name:
        name = name.rpartition(".")[0]
    return name


def test_every_module_has_a_layer():
    modules = {module_name(path) for path in PACKAGE.rglob("*.py")}
    assert modules - set(LAYER) == set(), "give each new module a layer in LAYER"
    assert set(LAYER) - modules == set(), "a module in LAYER is gone: take it out"
    assert set(LAYER.values()) == set(MAY_IMPORT)


def test_imports_point_down_the_layers_only():
    wrong = []
    for i in all_imports():
        if not i.ours:
            continue
        imported = our_module(i.module)
        source, target = LAYER[i.importer], LAYER[imported]
        if target in MAY_IMPORT[source] or (i.importer, imported) in LAYER_EXCEPTIONS:
            continue
        if source == "tasks" and i.names and all((imported, name) in PRINTING_HELPERS for name in i.names):
            continue
        wrong.append(f"dockyard/{i.importer.replace('.', '/')}.py:{i.line}: {source} imports {imported} "
                     f"({target}){' ' + ', '.join(i.names) if i.names else ''}")
    assert wrong == [], "\n".join(wrong)


def test_the_exceptions_are_still_needed():
    """A fixed violation leaves its exception: the list only shrinks."""
    seen = {(i.importer, our_module(i.module)) for i in all_imports() if i.ours}
    assert LAYER_EXCEPTIONS - seen == set()
    assert all(LAYER[our_module(m)] not in MAY_IMPORT[LAYER[i]] for i, m in LAYER_EXCEPTIONS)


def lazy_name(i: Import) -> str:
    return f"dockyard.{our_module(i.module)}" if i.ours else i.module


def is_lazy(i: Import) -> bool:
    name = lazy_name(i)
    return any(name == lazy or name.startswith(lazy + ".") for lazy in LAZY)


def test_imports_inside_functions_are_only_of_the_modules_lazy_py_names():
    inner = [i for i in all_imports() if i.inner and not is_lazy(i)]
    assert inner == [], "import these at the top of the module, or name them in dockyard/lazy.py:\n" + "\n".join(
        f"dockyard/{i.importer.replace('.', '/')}.py:{i.line}: {lazy_name(i)}" for i in inner)


def test_the_lazy_modules_are_imported_only_inside_functions():
    """A module lazy.py names and a module imports at its top would load at start-up after all."""
    # A module that is lazy itself (dockyard.watch) loads only when it is used, and may take the
    # others at its top.
    top = [i for i in all_imports() if not i.inner and is_lazy(i) and LAYER[i.importer] in ("tasks", "project", "config")
           and f"dockyard.{i.importer}" not in LAZY]
    assert top == [], "\n".join(f"dockyard/{i.importer.replace('.', '/')}.py:{i.line}: {lazy_name(i)}" for i in top)


def test_start_up_loads_none_of_the_lazy_modules():
    """`inv --list`, `inv -h` and the namespace of tasks.py import none of them."""
    code = (
        "import sys\n"
        "import dockyard\n"
        "from dockyard.lazy import LAZY\n"
        "from invoke import Program\n"
        "program = Program(namespace=None, version='0')\n"
        "for argv in (['inv', '--list'], ['inv', '-h', 'httpd.run']):\n"
        "    try:\n"
        "        program.run(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in LAZY if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
