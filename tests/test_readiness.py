"""What a run's readiness URL check takes as ready (docs/configuration.md: `run.ready` waits
for a 2xx or 3xx answer), against a server of the test's own on loopback: no engine."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dockyard import containers

ANSWERS = {  # path -> (status, Location)
    "/": (200, None),
    "/created": (201, None),
    "/moved": (302, "/"),
    "/away": (301, "http://127.0.0.1:9/"),  # a redirect to where nothing answers: not followed
    "/missing": (404, None),
    "/broken": (500, None),
    "/unavailable": (503, None),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        status, location = ANSWERS[self.path]
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("path", ["/", "/created", "/moved", "/away"])
def test_a_2xx_or_3xx_answer_is_ready_and_a_redirect_is_not_followed(server, path):
    assert containers._answers(server + path, None, []) is True


@pytest.mark.parametrize("path, said", [("/missing", "HTTP 404"), ("/broken", "HTTP 500"),
                                        ("/unavailable", "HTTP 503")])
def test_a_4xx_or_5xx_answer_is_not_ready_and_is_said(server, path, said):
    assert containers._answers(server + path, None, []) == said


def test_no_server_is_not_ready():
    assert containers._answers("http://127.0.0.1:9/", None, []) is False
