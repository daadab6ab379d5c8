"""An unexpected exception ends in the error-shaped 500 and leaves the connection usable
(issue 17, item 9), proven against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from fidelia.api.app import create_app
from fidelia.db import Database


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(database: Database) -> Iterator[int]:
    app = create_app(database)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug nobody anticipated")

    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield port
    uv.should_exit = True
    thread.join(timeout=10)


def test_a_500_keeps_the_keep_alive_connection_usable(server: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    conn.request("GET", "/boom")
    first = conn.getresponse()
    body = json.loads(first.read())
    assert first.status == 500
    assert body == {
        "error": "internal_error",
        "detail": "an unexpected error occurred; it has been logged",
        "fields": [],
    }
    assert first.getheader("connection") != "close"
    sock = conn.sock
    conn.request("GET", "/healthz")  # same connection: it must not be reset
    second = conn.getresponse()
    assert second.status == 200
    assert json.loads(second.read()) == {"status": "ok"}
    assert conn.sock is sock, "the client had to reconnect"
    conn.close()


def test_no_stack_trace_reaches_the_client(server: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    conn.request("GET", "/boom")
    text = conn.getresponse().read().decode()
    assert "RuntimeError" not in text
    assert "nobody anticipated" not in text
    conn.close()
