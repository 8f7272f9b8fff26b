"""Fixtures shared by the local-store tests: a store with its base collections, and the
daemon's local server over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from calmirror.local import LocalServer, LocalStore
from calmirror.testing import LOCAL_PASSWORD, LOCAL_USER


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    local = LocalStore(tmp_path / "store", LOCAL_USER)
    local.ensure_base()
    return local


@pytest.fixture
def server(store: LocalStore) -> Iterator[LocalServer]:
    with LocalServer(store.store_dir, port=0, username=LOCAL_USER, password=LOCAL_PASSWORD) as srv:
        yield srv
