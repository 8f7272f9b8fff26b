"""Fewer malloc arenas for the daemon: its memory under many clients is the allocator's as
much as its objects'.

The local server runs each request in a thread of its own, and glibc gives threads arenas of
their own (up to eight per core) that keep what they freed for reuse by the same arena. Under
20 clients at 10,000 events the daemon peaked at 174 MiB with the default and at 125 MiB with
two arenas (`bench/bench_memory.py --kinds mixed`), where a quiet daemon holds about 90 MiB.
Python's own allocator serves small objects from its own pools and every request holds the
interpreter lock, so fewer arenas cost no measurable time. `MALLOC_ARENA_MAX` in the
environment does the same for a process; this does it for the daemon however it is started.
Elsewhere than glibc there is no such call and nothing happens.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger("calmirror.daemon")

M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Ask glibc for at most `arenas` malloc arenas (call before threads start); True if it
    did. An arena count set in the environment is left as it is."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_ARENA_MAX, arenas))
    if not done:
        log.debug("malloc did not take an arena limit")
    return done
