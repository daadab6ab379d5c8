"""A real HTTP receiver on 127.0.0.1 whose answers a test scripts: fail, time out, accept."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fidelia.webhooks.signing import verify


@dataclass
class Received:
    delivery_id: str
    mode: str  # what the receiver did: fail, slow (answered after the client gave up), accept
    body: dict[str, Any]
    signed: bool


@dataclass
class Receiver:
    secret: str = ""
    script: list[str] = field(default_factory=list)  # modes for the next requests, then accept
    default: str = "accept"
    slow_seconds: float = 1.5
    got: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def next_mode(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.got if r.mode == "accept"]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            mode = receiver.next_mode()
            signed = verify(
                receiver.secret,
                self.headers.get("Fidelia-Signature", ""),
                raw,
                now=int(time.time()),
            )
            item = Received(
                self.headers.get("Fidelia-Delivery-Id", ""), mode, json.loads(raw), signed
            )
            with receiver.lock:
                receiver.got.append(item)
            if mode == "slow":
                time.sleep(receiver.slow_seconds)
            status = 200 if mode == "accept" else 503
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the client gave up (the slow case)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve(receiver: Receiver) -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
