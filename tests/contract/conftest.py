"""One server of each kind per module, a fresh calendar per test (see `servers.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from calmirror.remote import ICloudClient
from tests.contract.servers import SERVERS, Server, start


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    name = str(request.param)
    with start(name, tmp_path_factory.mktemp(name)) as running:
        yield running


@pytest.fixture
def client(server: Server) -> Iterator[ICloudClient]:
    with ICloudClient(server.url, server.username, server.password) as remote:
        yield remote


@pytest.fixture
def calendar(server: Server, request: pytest.FixtureRequest) -> str:
    """The URL of an empty, writable VEVENT calendar made for this test."""
    return server.new_calendar(request.node.name[:40])
