"""dockyard: Make-style Invoke tasks that build and run a project's Docker images."""

from .collection import namespace

__all__ = ["namespace"]
__version__ = "0.1.0"
