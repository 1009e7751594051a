"""The served app's HTTP surface, spoken to directly: which Host may open the WebSocket."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from bench.serving import upgrade_status


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_the_websocket_opens_for_this_machine(server, host):
    port = urlsplit(server).port
    assert upgrade_status(port, f"{host}:{port}") == 101


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8501", "127.0.0.1.evil.example"])
def test_a_foreign_host_header_is_refused(server, host):
    """DNS rebinding: a page on evil.example whose name now points here gets no session."""
    assert upgrade_status(urlsplit(server).port, host) == 403
