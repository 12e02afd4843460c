"""dockyard: Make-style Invoke tasks that build and run a project's Docker images."""

from .collection import namespace
from .errors import DockyardError
from .project import Project

__all__ = ["DockyardError", "Project", "namespace"]
__version__ = "0.2.0"
