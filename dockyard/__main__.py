"""`python -m dockyard` and the `dockyard` command: the version, and where the tasks are.

dockyard's work is done by Invoke (`inv --list` in a project with a tasks.py); this program
only says which dockyard is installed, so that a user or a bug report can name it.
"""

from __future__ import annotations

import argparse
import sys

from dockyard import __version__

USAGE = """\
dockyard {version}: Make-style Invoke tasks for a project's Docker images.

The tasks are Invoke's: in a project with a containers.toml and a tasks.py that calls
dockyard.namespace(), run `inv --list` to see them and `inv -h TASK` for one of them.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dockyard", add_help=False,
                                     usage="dockyard [--version] [--help]")
    parser.add_argument("--version", "-V", action="store_true")
    parser.add_argument("--help", "-h", action="store_true")
    arguments = parser.parse_args(argv)
    if arguments.version:
        print(f"dockyard {__version__}")
    else:
        print(USAGE.format(version=__version__), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
