"""The served app's HTTP surface, spoken to directly: which Host may open the WebSocket."""

from __future__ import annotations

import base64
import os
import socket
from urllib.parse import urlsplit

import pytest


def upgrade_status(url: str, host: str) -> int:
    """The HTTP status of a WebSocket handshake on /_stcore/stream sent with this Host header."""
    address = urlsplit(url)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /_stcore/stream HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: streamlit\r\n\r\n"
    )
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(request.encode())
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_the_websocket_opens_for_this_machine(server, host):
    port = urlsplit(server).port
    assert upgrade_status(server, f"{host}:{port}") == 101


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8501", "127.0.0.1.evil.example"])
def test_a_foreign_host_header_is_refused(server, host):
    """DNS rebinding: a page on evil.example whose name now points here gets no session."""
    assert upgrade_status(server, host) == 403
