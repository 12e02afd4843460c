"""The example project's tasks: `inv --list` shows them all."""
from pathlib import Path

from dockyard import namespace

ns = namespace(Path(__file__).with_name("containers.toml"))
