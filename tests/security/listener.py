"""A local HTTP listener for the attack tests that prove the portal fetches nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Listener(ThreadingHTTPServer):
    """A local HTTP server that must receive nothing: it counts every connection (not only
    well-formed requests) and records the paths asked for. What it serves is real (``body`` as
    ``content_type``), so a fetch that did happen would succeed and show in the output."""

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body, self.content_type = body, content_type
        self.connections = 0
        self.paths: list[str] = []
        super().__init__(("127.0.0.1", 0), _ListenerHandler)

    def verify_request(self, request, client_address) -> bool:
        self.connections += 1
        return True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ListenerHandler(BaseHTTPRequestHandler):
    server: Listener

    def do_GET(self):
        self.server.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", self.server.content_type)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, *args):
        pass


@contextmanager
def serving(body: bytes, content_type: str) -> Iterator[Listener]:
    """A Listener running in a thread for the duration of the block."""
    server = Listener(body, content_type)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
