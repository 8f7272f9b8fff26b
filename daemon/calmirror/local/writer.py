"""Check and write mirror batches behind the fetch, in order.

A pass is a loop of fetch (network), check (CPU, vobject), write (disk). Done one after
another, an initial 10,000-event mirror spends most of its time waiting on one of them;
here the next multiget is fetched while the previous batch is checked in worker
processes and written by one writer thread. Batches are written and reported in the
order they were fetched, so the caller records each one (the mirror map in SQLite, on
its own thread) only after its files are in place, exactly as a sequential pass would.
After a failed write the batches behind it are not written: the caller has not recorded
them, so the next pass fetches them again.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from calmirror.local.check_pool import Checked, CheckPool, SideJob
from calmirror.local.items import PreparedItem

if TYPE_CHECKING:
    from calmirror.local.store import LocalStore

#: (href, why the first text was refused) -> another text to try, or None
Fallback = Callable[[str, str], str | None]


@dataclass(frozen=True)
class Batch:
    """One batch of a mirror: texts to write by href, hrefs to delete, and the caller's own
    record of it (`tag`, handed back untouched). An object the check refuses is tried once
    more with the text `fallback` gives for it (a compatible copy). `side`: other work on the
    batch that a check worker does beside the check (see `check_pool.SideJob`), its result
    handed back in `Written.side`; without worker processes it is not done."""

    writes: Sequence[tuple[str, str]]
    deletes: Sequence[str]
    tag: object = None
    fallback: Fallback | None = None
    side: SideJob | None = None


@dataclass(frozen=True)
class Written:
    batch: Batch
    refused: dict[str, str] = field(default_factory=dict)  # href -> reason: nothing written for it
    fell_back: dict[str, str] = field(default_factory=dict)  # href -> why the first text was refused
    side: object = None  # the side job's result, None when it was not done or failed


class BatchWriter:
    """Made by `LocalStore.mirror_writer`, which also decides whether worker processes check."""

    def __init__(self, store: LocalStore, slug: str, pool: CheckPool | None, depth: int = 3) -> None:
        self.store, self.slug, self.pool, self.depth = store, slug, pool, depth
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="calmirror-write")
        self._pending: deque[tuple[Batch, Future[Written]]] = deque()
        self._failed = threading.Event()

    def submit(self, batch: Batch) -> Iterator[Written]:
        """Queue a batch; yields the batches finished meanwhile (waiting while too many are
        in flight, so memory stays bounded)."""
        checking = self.pool.submit(batch.writes, batch.side) if self.pool is not None and batch.writes else None
        self._pending.append((batch, self._writer.submit(self._write, batch, checking)))
        while self._pending and (len(self._pending) > self.depth or self._pending[0][1].done()):
            yield self._next()

    def drain(self) -> Iterator[Written]:
        """Every batch still in flight, in order; the first failure is raised."""
        while self._pending:
            yield self._next()

    def settle(self) -> Iterator[Written]:
        """After the pass failed elsewhere: the batches that were written, in order, up to the
        first that was not; nothing is raised."""
        self._failed.set()  # what is not being written yet will not be
        while self._pending:
            _, future = self._pending.popleft()
            if future.exception() is not None:
                self._pending.clear()
                return
            yield future.result()

    def close(self) -> None:
        self._failed.set()
        self._writer.shutdown(wait=True)

    def _next(self) -> Written:
        _, future = self._pending.popleft()
        return future.result()

    def _write(self, batch: Batch, checking: Future[tuple[Checked, object]] | None) -> Written:
        if self._failed.is_set():
            raise RuntimeError("an earlier batch was not written")
        try:
            side = None
            if checking is not None:
                hrefs = [href for href, _ in batch.writes]
                results, side = checking.result()
                checked = list(zip(hrefs, results, strict=True))
            else:
                checked = self.store.check(batch.writes)
            fell_back: dict[str, str] = {}
            if batch.fallback is not None:
                checked = self._second_tries(checked, batch.fallback, fell_back)
            refused = dict(self.store.write_checked(self.slug, checked, batch.deletes))
            kept = {href: why for href, why in fell_back.items() if href not in refused}
            return Written(batch, refused, kept, side)
        except BaseException:
            self._failed.set()
            raise

    def _second_tries(
        self, checked: list[tuple[str, PreparedItem | str]], fallback: Fallback, fell_back: dict[str, str]
    ) -> list[tuple[str, PreparedItem | str]]:
        """Refused objects checked again in the form `fallback` gives (rare: in this thread)."""
        out: list[tuple[str, PreparedItem | str]] = []
        for href, result in checked:
            if isinstance(result, str):
                other = fallback(href, result)
                if other is not None:
                    ((_, again),) = self.store.check([(href, other)])
                    if isinstance(again, PreparedItem):
                        fell_back[href] = result
                        result = again
                    else:
                        result = f"{result}; its compatible copy too: {again}"
            out.append((href, result))
        return out
