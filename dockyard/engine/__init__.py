"""The Docker engine: the only part of dockyard that talks to one.

The rest of dockyard imports this package (``from dockyard import engine``) and calls what
it names below, one function per endpoint it uses; never a transport, never docker-py.
Its modules, each apart for what it holds:

- ``client``: the one interface: ``open_answer`` sends every request, on the transport the
  chosen engine fixes; the endpoint functions build on it.
- ``local``: a local unix socket, with the standard library (requests, streamed answers,
  the upgraded connections of exec and attach); no docker-py.
- ``remote``: tcp, TLS, ssh and contexts, through docker-py's public API (imported only
  there, when such an engine is used); ``ssh_relay`` carries ssh:// through the ssh program.
- ``answers``: what either transport gives back: an answer, a container's output, an
  upgraded connection.
- ``errors``: the engine's failures as one line each, by HTTP status and exception type.
- ``address``: the chosen engine resolved to its address, how messages name it, and the
  request timeout. Which engine is chosen is ``dockyard.engine_choice``'s (configuration:
  it makes no request, and `inv --list` reads it without loading this package).
- ``ports`` and ``buildkit``: the engine's formats, read and written in one place each:
  published ports, and BuildKit's build trace. Imported by the operations that use them.
"""

from __future__ import annotations

from .address import endpoint, where
from .answers import STDERR, STDOUT, Answer, Frames, Hijacked
from .client import (api_version, attach, build_stream, containers, create_network, create_service, cut,
                     default_log_driver, download, exec_start, get_archive, get_json, helper_auth, images, info,
                     inspect_container, inspect_image, inspect_service, known_log_driver, logs, messages,
                     offers_buildkit, open_answer, pull, put_archive, query, remove_container, remove_image,
                     request, services, short_id, swarm_tasks, tag_image, update_service, upload, using)
from .errors import Refused, doing, lost, port_in_use
from .remote import POOL_SIZE, close

__all__ = [
    "endpoint", "where",
    "STDERR", "STDOUT", "Answer", "Frames", "Hijacked",
    "api_version", "attach", "build_stream", "containers", "create_network", "create_service", "cut",
    "default_log_driver", "download", "exec_start", "get_archive", "get_json", "helper_auth", "images", "info",
    "inspect_container", "inspect_image", "inspect_service", "known_log_driver", "logs", "messages",
    "offers_buildkit", "open_answer", "pull", "put_archive", "query", "remove_container", "remove_image",
    "request", "services", "short_id", "swarm_tasks", "tag_image", "update_service", "upload", "using",
    "Refused", "doing", "lost", "port_in_use",
    "POOL_SIZE", "close",
]
