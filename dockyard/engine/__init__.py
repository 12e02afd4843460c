"""The Docker engine: the only part of dockyard that talks to one.

The rest of dockyard imports this package (``from dockyard import engine``) and calls what
it names below, one function per endpoint it uses; never a transport, never docker-py.
``client`` holds them all for now.
"""

from __future__ import annotations

from .client import (POOL_SIZE, STDERR, STDOUT, Answer, Frames, Hijacked, Refused, api_version, attach,
                     build_stream, close, containers, create_network, create_service, cut, default_log_driver,
                     doing, download, endpoint, exec_start, get_archive, get_json, helper_auth, images, info,
                     inspect_container, inspect_image, inspect_service, logs, lost, messages, offers_buildkit,
                     open_answer, port_in_use, pull, put_archive, query, remove_container, remove_image, request,
                     short_id, swarm_tasks, tag_image, update_service, upload, using, where)

__all__ = [
    "POOL_SIZE", "STDERR", "STDOUT", "Answer", "Frames", "Hijacked", "Refused", "api_version", "attach",
    "build_stream", "close", "containers", "create_network", "create_service", "cut", "default_log_driver",
    "doing", "download", "endpoint", "exec_start", "get_archive", "get_json", "helper_auth", "images", "info",
    "inspect_container", "inspect_image", "inspect_service", "logs", "lost", "messages", "offers_buildkit",
    "open_answer", "port_in_use", "pull", "put_archive", "query", "remove_container", "remove_image", "request",
    "short_id", "swarm_tasks", "tag_image", "update_service", "upload", "using", "where",
]
