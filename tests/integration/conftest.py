"""Fixtures shared by the integration tests: a store with its base collections, the daemon's
local server over it, a server with a Work mirror and a client session (`served`), and the
real daemon the fault tests drive (`faulty`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from calmirror.emulator import Emulator
from calmirror.local import LocalServer, LocalStore
from calmirror.testing import LOCAL_PASSWORD, LOCAL_USER
from tests.integration.faulty import Faulty, daemon
from tests.integration.range_pair import Pair, served_pair


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    local = LocalStore(tmp_path / "store", LOCAL_USER)
    local.ensure_base()
    return local


@pytest.fixture
def server(store: LocalStore) -> Iterator[LocalServer]:
    with LocalServer(store.store_dir, port=0, username=LOCAL_USER, password=LOCAL_PASSWORD) as srv:
        yield srv


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LocalServer, LocalStore, requests.Session]]:
    """A local server over a store with its base collections and a Work mirror, and a client
    session signed in to it."""
    with LocalServer(tmp_path / "store", port=0, username=LOCAL_USER, password=LOCAL_PASSWORD) as server:
        store = LocalStore(server.store_dir, LOCAL_USER)
        store.ensure_base()
        store.ensure_mirror("work", "Work", None)
        with requests.Session() as http:
            http.auth = (LOCAL_USER, LOCAL_PASSWORD)
            yield server, store, http


@pytest.fixture
def faulty(tmp_path: Path, emu: Emulator) -> Iterator[Faulty]:
    """The daemon on a home with Work and Home mirrored; its mirror loop waits for the test."""
    f = daemon(tmp_path, emu)
    yield f
    f.run.stop()


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pair]:
    """The time-range index's server and plain Radicale on one store (`range_pair`)."""
    with served_pair(tmp_path, monkeypatch) as both:
        yield both
