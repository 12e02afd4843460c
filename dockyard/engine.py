"""The Docker engine: one client per process, and the daemon's errors as user messages.

docker-py is imported here, inside functions, so that ``inv --list`` and ``inv -h``
never pay for it.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Iterator

from .errors import DockyardError

if TYPE_CHECKING:
    import docker

_client: "docker.DockerClient | None" = None
# Connections kept open: enough for parallel builds and for `clean` removing many at once
# (the docker CLI's `rm` runs up to 50 removals together).
POOL_SIZE = 50


def endpoint() -> str:
    """The engine address docker-py will use: DOCKER_HOST, else the current context, else the socket."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    context = _current_context()
    return context.Host if context else "unix:///var/run/docker.sock"


def _current_context():
    """The Docker CLI's current context, when it is not the default one."""
    try:
        from docker.context import ContextAPI

        context = ContextAPI.get_current_context()
    except Exception:  # a broken CLI config must not stop us using the default socket
        return None
    if context is None or context.name == "default":
        return None
    return context


def client() -> "docker.DockerClient":
    """A connected client, created on first use; an unreachable engine is one clear error."""
    global _client
    if _client is None:
        import docker

        options = {"timeout": 300, "max_pool_size": POOL_SIZE}
        context = None if os.environ.get("DOCKER_HOST") else _current_context()
        try:
            if context is not None:
                _client = docker.DockerClient(base_url=context.Host, tls=context.TLSConfig or False, **options)
            else:  # DOCKER_HOST with DOCKER_TLS_VERIFY / DOCKER_CERT_PATH, or the default socket
                _client = docker.from_env(**options)
        except docker.errors.DockerException as e:
            raise unreachable(endpoint(), e) from None
    return _client


def unreachable(where: str, error: BaseException) -> DockyardError:
    text = str(error)
    if "No such file or directory" in text or "FileNotFoundError" in text:
        reason = "no such socket"
    elif "Connection refused" in text or "ConnectionRefused" in text:
        reason = "connection refused"
    elif "Permission denied" in text or "PermissionError" in text:
        reason = "permission denied: add yourself to the docker group or use sudo"
    elif "timed out" in text or "Timeout" in text:
        reason = "timed out"
    else:
        reason = text.split(": ", 1)[-1] if "Error while fetching server API version" in text else text
        reason = reason if len(reason) <= 200 else reason[:200] + "..."
    return DockyardError(
        f"cannot reach the Docker engine at {where} ({reason}). "
        "Start it (e.g. `sudo systemctl start docker`) or point DOCKER_HOST at a running engine."
    )


@contextlib.contextmanager
def engine_errors(what: str) -> Iterator[None]:
    """Turn the daemon's refusals into one line that says what failed and why."""
    import docker
    import requests

    try:
        yield
    except docker.errors.ImageNotFound as e:
        raise DockyardError(f"{what}: image not found ({explanation(e)})") from None
    except docker.errors.NotFound as e:
        raise DockyardError(f"{what}: not found ({explanation(e)})") from None
    except docker.errors.APIError as e:
        raise DockyardError(f"{what}: {explanation(e)}") from None
    except (requests.exceptions.ConnectionError, docker.errors.DockerException) as e:
        if isinstance(e, docker.errors.DockerException) and not _is_connection_error(e):
            raise DockyardError(f"{what}: {e}") from None
        raise unreachable(endpoint(), e) from None


def _is_connection_error(error: BaseException) -> bool:
    text = str(error)
    return "Connection" in text or "No such file or directory" in text


def explanation(error: "docker.errors.APIError") -> str:
    """The daemon's own words, without docker-py's status-line wrapper."""
    text = getattr(error, "explanation", None) or str(error)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).strip()


def port_in_use(error_text: str) -> bool:
    return "port is already allocated" in error_text or "address already in use" in error_text
