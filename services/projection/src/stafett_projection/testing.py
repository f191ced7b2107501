"""A stand-in for an HTTP archive (the interface `delivery.HttpArchive` speaks, documented in
docs/operating.md), for tests: it is down for its first `failures` deliveries, then files each
one under the reference it was given, and keeps what it was sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    key: str  # the Idempotency-Key: one per delivery, the same on every attempt
    authorization: str | None
    body: bytes

    @property
    def case_id(self) -> str:
        return str(json.loads(self.body)["case_id"])


@dataclass
class FakeArchive:
    url: str
    reference: str
    failures: int
    received: list[Received] = field(default_factory=list)


@contextmanager
def fake_archive(failures: int = 2, reference: str = "ARK-2025-1") -> Iterator[FakeArchive]:
    """An archive on a free local port, answering 503 to its first `failures` deliveries."""
    archive = FakeArchive(url="", reference=reference, failures=failures)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            said = Received(
                self.headers["Idempotency-Key"], self.headers.get("Authorization"), body
            )
            archive.received.append(said)
            if len(archive.received) <= archive.failures:
                self.send_response(503)
                self.end_headers()
                return
            answer = json.dumps({"reference": archive.reference}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass  # the test says what matters

    server = HTTPServer(("127.0.0.1", 0), Handler)
    archive.url = f"http://127.0.0.1:{server.server_address[1]}/deliveries"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield archive
    finally:
        server.shutdown()
        server.server_close()
