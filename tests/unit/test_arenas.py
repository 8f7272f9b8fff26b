"""The daemon's malloc arena limit: taken by glibc, left to the environment when it sets one."""

from __future__ import annotations

import platform

import pytest

from calmirror import arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's arena limit is glibc's")
def test_glibc_takes_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert arenas.limit_malloc_arenas() is True


def test_an_arena_count_in_the_environment_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert arenas.limit_malloc_arenas() is False
