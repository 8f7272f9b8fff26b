"""Fixtures shared by the integration tests: a store with its base collections, the daemon's
local server over it, and the real daemon the fault tests drive (`faulty`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from calmirror.emulator import Emulator
from calmirror.local import LocalServer, LocalStore
from calmirror.testing import LOCAL_PASSWORD, LOCAL_USER
from tests.integration.faulty import Faulty, daemon


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
def faulty(tmp_path: Path, emu: Emulator) -> Iterator[Faulty]:
    """The daemon on a home with Work and Home mirrored; its mirror loop waits for the test."""
    f = daemon(tmp_path, emu)
    yield f
    f.run.stop()
