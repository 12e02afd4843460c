"""The engine's failures as one line each, on either transport: a refusal by its HTTP status
(``Refused``), an engine that cannot be reached, is stuck or went away by the exception's
type (the socket's own, or docker-py's, requests' and urllib3's wrapping it), TLS by ssl's
reason codes. Words are read only where nothing else tells (``_untyped_refusal``,
``port_in_use``).

Apart from the transports so that both say a failure the same way, and from the client so
that the answers, which raise these too, need not import it. docker-py, requests and urllib3
are imported inside the functions that read their exceptions: those run only after docker-py
was used (``dockyard/lazy.py``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import ssl  # loaded already with http.client
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from .. import engine_choice
from ..errors import DockyardError
from .address import TIMEOUT_VARIABLE, endpoint, request_timeout, where

if TYPE_CHECKING:
    import docker


class Refused(DockyardError):
    """The engine answered with an error status, on either transport; ``status`` and
    ``explanation`` (the daemon's own words) let a caller tell "in use" (409) from a real
    failure. The one place where a status becomes words: by its number, never by its text."""

    def __init__(self, what: str, status: int, explanation: str) -> None:
        label = f"not found ({explanation})" if status == 404 else explanation
        super().__init__(f"{what}: {label}")
        self.status = status
        self.explanation = explanation


def refusal(what: str, status: int, answer: bytes) -> Refused:
    """The engine's error answer (JSON with its message, or plain text) as a ``Refused``."""
    try:
        said = json.loads(answer).get("message")
    except (ValueError, AttributeError):
        said = None
    return Refused(what, status, str(said or answer.decode("utf-8", "replace").strip() or f"HTTP {status}"))


def unreachable(where: str, error: BaseException | str) -> DockyardError:
    """``error``: what went wrong, or (ssh://) what ssh said."""
    if isinstance(error, str):
        return DockyardError(f"cannot reach the Docker engine at {where} ({error}). Check that ssh "
                             "gets there without a prompt and that `docker version` works there.")
    tls = _tls_failure(error)
    if tls is not None:
        return DockyardError(f"cannot reach the Docker engine at {where}: TLS failed ({tls[0]}). {tls[1]}")
    return DockyardError(_cannot_reach(where, reason(error)))


def _cannot_reach(where: str, reason: str) -> str:
    return (f"cannot reach the Docker engine at {where} ({reason}). Start it (e.g. `sudo systemctl "
            f"start docker`) or {_choose_another(engine_choice.chosen().source)}.")


def _choose_another(source: str) -> str:
    """How to send dockyard to another engine: through what chose this one (a ``Choice.source``),
    since pointing DOCKER_HOST elsewhere does nothing when a setting or DOCKYARD_ENGINE wins."""
    if source == "default":
        return "point DOCKER_HOST at a running engine"
    if source == "the Docker CLI's current context":
        return "switch the Docker CLI to another context (`docker context use NAME`)"
    return f"point {source.split(', which names', 1)[0]} at a running engine"


def _tls_failure(error: BaseException) -> tuple[str, str] | None:
    """(why, what to do) when TLS between us and a tcp:// engine is what failed, else None:
    our certificate files missing (docker-py checks them before connecting), a handshake the
    engine or we refused, or plain HTTP sent to an engine that speaks only TLS. Told by the
    exceptions' types, ssl's reason codes and the engine's status, not by their messages."""
    import docker

    check = ("Check that the client's TLS files (DOCKER_CERT_PATH's ca.pem, cert.pem and key.pem, or "
             "the Docker context's) are the ones made for this engine, by its CA.")
    if isinstance(error, docker.errors.TLSParameterError):
        files = os.environ.get("DOCKER_CERT_PATH") or "~/.docker"
        held = Path(files).expanduser()  # docker-py checks the client's pair first, then the CA
        missing = "ca.pem" if (held / "cert.pem").is_file() and (held / "key.pem").is_file() else "cert.pem and key.pem"
        return f"{files} has no {missing}", check
    refused = _cause(error, docker.errors.APIError)
    if refused is not None and refused.status_code == 400:  # plain HTTP, said back in plain HTTP
        return ("the engine speaks only TLS and was sent plain HTTP",
                "Set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH, or use a Docker context with TLS files.")
    failed = _cause(error, ssl.SSLError)
    if failed is None:
        return None
    reason = str(getattr(failed, "reason", None) or "")
    if reason == "WRONG_VERSION_NUMBER":  # it answered in plain HTTP
        return ("the engine does not speak TLS; it answered in plain HTTP",
                "For a plain tcp:// engine unset DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (or use a context "
                "without TLS files); better, turn TLS on at the engine (dockerd --tlsverify).")
    said = reason.lower().replace("_", " ")
    if "ALERT" in reason:  # the engine ended the handshake
        return f"the engine refused this client: {said}; no certificate, or one its CA did not sign", check
    if said and not isinstance(failed, ssl.SSLEOFError):
        return said, check
    return "the TLS handshake did not complete", check


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and those it came from: docker-py, requests and urllib3 wrap the socket's
    own error (as its cause, its ``reason`` or an argument)."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        found = pending.pop(0)
        if id(found) in seen:
            continue
        seen.add(id(found))
        yield found
        reason = getattr(found, "reason", None)
        pending += [e for e in (found.__cause__, found.__context__, reason, *getattr(found, "args", ()))
                    if isinstance(e, BaseException)]


def _cause(error: BaseException, kind):
    """The first of the error and its causes that is of this type, or None."""
    return next((e for e in _causes(error) if isinstance(e, kind)), None)


def reason(error: BaseException) -> str:
    """Why the engine could not be reached, by the type of the socket's error; else the
    innermost error's own words."""
    import requests
    import urllib3

    if timed_out(error):
        return "timed out"
    found = _cause(error, (FileNotFoundError, ConnectionRefusedError, PermissionError))
    if found is not None:
        return _socket_reason(found)
    if _untyped_refusal(error):
        return _untyped_refusal(error)
    inner = [e for e in _causes(error) if not isinstance(e, (requests.exceptions.RequestException,
                                                             urllib3.exceptions.HTTPError))]
    text = str(inner[-1] if inner else error)
    return text if len(text) <= 200 else text[:200] + "..."


@contextlib.contextmanager
def engine_errors(what: str) -> Iterator[None]:
    """Turn the daemon's refusals into one line that says what failed and why; an engine
    that stops answering, or goes away mid-answer, is named with what was in flight."""
    import docker
    import requests
    import urllib3

    try:
        yield
    except docker.errors.APIError as e:
        raise Refused(what, e.status_code or 500, explanation(e)) from None
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
            http.client.HTTPException, docker.errors.DockerException,
            TimeoutError, ConnectionResetError, ConnectionAbortedError) as e:
        # Not BrokenPipeError: that is our own stdout closed, which DockyardTask handles.
        if isinstance(e, docker.errors.DockerException) and not _is_connection_error(e) \
                and not timed_out(e):
            raise DockyardError(f"{what}: {e}") from None
        activity = current_activity()
        doing = activity or what
        if timed_out(e):
            raise DockyardError(stuck(doing)) from None
        if _never_connected(e) and activity is None:
            raise DockyardError(f"{doing}: {unreachable(endpoint(), ssh_failure() or e)}") from None
        if _never_connected(e):  # it answered a moment ago, in this same activity
            raise DockyardError(f"{doing}: the Docker engine at {endpoint()} went away "
                                f"({reason(e)}); is it still running?") from None
        raise DockyardError(lost(doing)) from None


def _is_connection_error(error: BaseException) -> bool:
    """The error came from the connection (a socket's error), not from docker-py's checks."""
    import requests

    return _cause(error, (OSError, requests.exceptions.ConnectionError)) is not None


def lost(doing: str) -> str:
    """The engine closed the connection before its answer was complete."""
    return (f"{doing}: the Docker engine at {endpoint()} went away before finishing its "
            "answer; is it still running?")


def stuck(doing: str) -> str:
    return (f"{doing}: the Docker engine at {endpoint()} did not answer within "
            f"{request_timeout():g} s; it accepts connections but is stuck or overloaded "
            f"(set {TIMEOUT_VARIABLE} to wait longer)")


def timed_out(error: BaseException) -> bool:
    import requests
    import urllib3

    return any(isinstance(e, (TimeoutError, requests.exceptions.Timeout, urllib3.exceptions.TimeoutError))
               # urllib3's NewConnectionError is a ConnectTimeoutError by descent only: a refusal
               and not isinstance(e, urllib3.exceptions.NewConnectionError) for e in _causes(error))


def _never_connected(error: BaseException) -> bool:
    """The engine refused the connection (or its socket is gone): it is down, not mid-answer."""
    import urllib3

    found = _cause(error, (ConnectionRefusedError, FileNotFoundError, PermissionError,
                           urllib3.exceptions.NewConnectionError))
    return found is not None or _untyped_refusal(error) is not None


def _untyped_refusal(error: BaseException) -> str | None:
    """The one reading of words left: an error that carries no socket error to go by (one
    made from a message alone), whose words say the connection was refused or the socket is
    missing. None for any error that has a socket error among its causes."""
    import requests

    if any(isinstance(e, OSError) and not isinstance(e, requests.exceptions.RequestException)
           for e in _causes(error)):  # requests' errors are OSErrors by descent
        return None
    text = str(error)
    if "Connection refused" in text:
        return "connection refused"
    if "No such file or directory" in text:
        return "no such socket"
    return None


# What is in flight on this thread (``doing``), for the messages of an engine lost or stuck.
_activity = threading.local()


@contextlib.contextmanager
def doing(activity: str) -> Iterator[None]:
    """Name what is in flight (e.g. "waiting for httpd to answer"), for the message a lost
    or stuck engine gives within it, instead of the request that found it gone."""
    outer = current_activity()
    _activity.value = activity
    try:
        yield
    finally:
        _activity.value = outer


def current_activity() -> str | None:
    return getattr(_activity, "value", None)


def explanation(error: "docker.errors.APIError") -> str:
    """The daemon's own words, without docker-py's status-line wrapper."""
    text = getattr(error, "explanation", None) or str(error)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).strip()


def ssh_failure() -> str | None:
    """What ssh said when it could not reach the chosen ssh:// engine, if that is the case."""
    address = endpoint()
    if not address.startswith("ssh://"):
        return None
    from . import ssh_relay

    return ssh_relay.failure(address)


def local_failure(error: OSError | http.client.HTTPException, what: str, *,
                  connecting: bool = False) -> DockyardError:
    """A failure of the local socket, said by the exception's type: not there or refused
    while connecting (the engine is down, or went away during an activity that it answered
    before), stuck (no answer within the timeout), or gone in the middle of an answer."""
    doing = current_activity() or what
    if isinstance(error, TimeoutError):
        return DockyardError(stuck(doing))
    if connecting and current_activity() is None:
        return DockyardError(f"{what}: {_cannot_reach(where(), _socket_reason(error))}")
    if connecting:
        return DockyardError(f"{doing}: the Docker engine at {endpoint()} went away "
                             f"({_socket_reason(error)}); is it still running?")
    return DockyardError(lost(doing))


def _socket_reason(error: BaseException) -> str:
    """Why a unix socket could not be reached, by the exception's type."""
    if isinstance(error, FileNotFoundError):
        return "no such socket"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, PermissionError):
        return "permission denied: add yourself to the docker group or use sudo"
    return getattr(error, "strerror", None) or type(error).__name__


def port_in_use(error_text: str) -> bool:
    """Whether a start's refusal says its host port is taken. The engine answers that with
    500, as it does any other failure to start (docker-py's own errors say so by its words
    too): its words are all there is to tell it by."""
    return "port is already allocated" in error_text or "address already in use" in error_text
