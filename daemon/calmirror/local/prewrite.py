"""A client's item written and synced before its collection's lane is taken.

Under 20 writing clients a PUT into `appointments/` held that collection's lane about 50 ms,
and every other PUT there waited behind it (`store_lock`): 1,024 PUTs in a minute waited
730 ms each on average, and the lane was held 84 % of the time. The largest part of the hold
was the item file's own write and fsync; the rest derives from the item (its cache entry,
worked out from a parse) or must stay in order (its sync history entry, the rename).

The item's text is known once Radicale has prepared it, before it takes the lock. Radicale's
`prepare` is wrapped to keep that text, and the item's cached properties (ETag, UID, time
range: a walk of the parsed object) are worked out there, outside the lane.
`FairLockStorage.acquire_lock` then writes the text to a hidden scratch file beside its
target and syncs it before the lane (`written_ahead`). Inside the lane, Radicale's write of
that same text to that same target only renames the scratch file into place (`take`); the
folder is still synced before the answer, so a 201 still means the item is on disk.

Anything else is written as before: another target, another text (a nested write, a
whole-collection PUT), or a PUT whose preconditions fail (the scratch file is removed when
the lock is given back). A crash leaves at most a hidden file, which Radicale never lists,
as `StoreCollection._atomic_write` already can.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import radicale.app.put as radicale_put
from radicale import item as radicale_item
from radicale import pathutils

_local = threading.local()  # .prepared: (request path, text); .ahead: (target, scratch, text)
_ORIGINAL_PREPARE = radicale_put.prepare


Prepared = tuple[
    Iterator[radicale_item.Item],
    str | None,
    bool | None,
    MutableMapping[str, str] | None,
    tuple[type, BaseException, TracebackType | None] | None,
]


def _prepare(*args: object, **kwargs: object) -> Prepared:
    """Radicale's `prepare`, keeping the one item's text for `written_ahead`."""
    items, tag, whole, props, failed = _ORIGINAL_PREPARE(*args, **kwargs)  # type: ignore[arg-type]
    _local.prepared = None
    if whole or failed is not None:
        return items, tag, whole, props, failed
    prepared = list(items)
    if len(prepared) == 1:
        item = prepared[0]
        try:
            text = item.serialize()
            _ = (item.etag, item.uid, item.component_name, item.time_range)  # each kept on the item
        except Exception:  # Radicale meets the same error inside the lock and answers it
            return iter(prepared), tag, whole, props, failed
        _local.prepared = (str(args[1] if len(args) > 1 else kwargs.get("path", "")), text)
    return iter(prepared), tag, whole, props, failed


def install() -> None:
    """Idempotent; Radicale's `do_PUT` looks `prepare` up in its module on every call."""
    radicale_put.prepare = _prepare


@contextmanager
def written_ahead(root: str, path: str, encoding: str, fsync: Callable[[IO[Any]], None]) -> Iterator[None]:
    """Around the lane of a PUT of `path` (a request path) into the collections under `root`:
    the text prepared for it is written and synced to a scratch file first; whatever `take`
    did not rename into place is removed when the lane is given back."""
    prepared = getattr(_local, "prepared", None)
    _local.prepared = None
    scratch = None
    if prepared is not None and prepared[0] == path:
        scratch = _write(root, path, prepared[1], encoding, fsync)
    if scratch is None:
        yield
        return
    _local.ahead = (scratch[0], scratch[1], prepared[1])  # type: ignore[index]
    try:
        yield
    finally:
        _local.ahead = None
        scratch[1].unlink(missing_ok=True)  # renamed into place already, or not wanted


def _write(root: str, path: str, text: str, encoding: str, fsync: Callable[[IO[Any]], None]) -> tuple[str, Path] | None:
    try:
        target = pathutils.path_to_filesystem(root, pathutils.strip_path(pathutils.sanitize_path(path)))
    except (ValueError, pathutils.UnsafePathError):
        return None
    scratch = Path(target).with_name(f".Radicale.tmp-{secrets.token_hex(6)}-{Path(target).name}")
    try:
        descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError:  # no such collection: Radicale answers that inside the lock
        return None
    try:
        with open(descriptor, "w", newline="", encoding=encoding) as file:
            file.write(text)
            file.flush()
            fsync(file)
    except OSError:  # a full disk: the write inside the lane meets it again and Radicale answers 507
        scratch.unlink(missing_ok=True)
        return None
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    return str(Path(target)), scratch


def take(target: str, text: str) -> Path | None:
    """The scratch file holding exactly `text` for `target`, written and synced before the
    lane (it is the caller's to rename into place), or None: write it as usual."""
    ahead = getattr(_local, "ahead", None)
    if ahead is None or ahead[0] != str(Path(target)) or ahead[2] != text:
        return None
    _local.ahead = None
    scratch: Path = ahead[1]
    return scratch


def waiting(target: str) -> bool:
    """Whether a scratch file for `target` was written ahead in this thread."""
    ahead = getattr(_local, "ahead", None)
    return ahead is not None and ahead[0] == str(Path(target))
