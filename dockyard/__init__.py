"""dockyard: Make-style Invoke tasks that build and run a project's Docker images."""

from .collection import namespace
from .errors import DockyardError
from .project import Project

__all__ = ["DockyardError", "Project", "namespace"]
# The one place the version is written: pyproject.toml reads it from here.
__version__ = "0.3.0"
