"""One pass over a mirror at a time, across processes: the daemon's loops and feed workers,
and a `calmirror sync` run beside the daemon.

A pass writes each batch before the item map records it, and a process that has not seen a
mirror yet and finds it unclean removes the files the map does not know (`MirrorRecovery._match_map`:
a crash between write and record leaves such strays). Beside another process's pass those
"strays" were the batch it had just written: removed, then recorded by the other as present,
so the events were gone from the mirror for good. An exclusive `flock` per mirror, held for
the whole pass, keeps the passes apart; the kernel drops it when its holder dies, so a
crashed pass never blocks the next one (which then finds the mirror unclean and repairs it).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from calmirror.home import make_private_dir

log = logging.getLogger("calmirror.mirror")

FOLDER = "locks"  # beside the state database


@contextlib.contextmanager
def one_pass_at_a_time(data_dir: Path, calendar_id: str, name: str) -> Iterator[None]:
    """Hold the lock on `calendar_id`'s mirror, waiting for another process's pass to end."""
    folder = data_dir / FOLDER
    make_private_dir(folder)
    digest = hashlib.sha256(calendar_id.encode("utf-8")).hexdigest()[:24]
    fd = os.open(folder / f"mirror-{digest}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s: another pass over this mirror is running; waiting for it to end", name)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the only descriptor drops the lock
