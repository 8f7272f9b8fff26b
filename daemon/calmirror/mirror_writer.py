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
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from calmirror.local.check_pool import Checked, CheckPool
from calmirror.local.store import LocalStore
from calmirror.plan import MirrorPlan

Refused = dict[str, str]  # local href -> reason


class BatchWriter:
    def __init__(self, store: LocalStore, slug: str, pool: CheckPool | None, depth: int = 3) -> None:
        self.store, self.slug, self.pool, self.depth = store, slug, pool, depth
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="calmirror-write")
        self._pending: deque[tuple[MirrorPlan, Future[Refused]]] = deque()
        self._failed = threading.Event()

    def submit(self, plan: MirrorPlan) -> Iterator[tuple[MirrorPlan, Refused]]:
        """Queue a batch; yields the batches finished meanwhile (waiting while too many are
        in flight, so memory stays bounded)."""
        checking = self.pool.submit(plan.writes) if self.pool is not None and plan.writes else None
        self._pending.append((plan, self._writer.submit(self._write, plan, checking)))
        while self._pending and (len(self._pending) > self.depth or self._pending[0][1].done()):
            yield self._next()

    def drain(self) -> Iterator[tuple[MirrorPlan, Refused]]:
        """Every batch still in flight, in order; the first failure is raised."""
        while self._pending:
            yield self._next()

    def settle(self) -> Iterator[tuple[MirrorPlan, Refused]]:
        """After the pass failed elsewhere: the batches that were written, in order, up to the
        first that was not; nothing is raised."""
        self._failed.set()  # what is not being written yet will not be
        while self._pending:
            plan, future = self._pending.popleft()
            if future.exception() is not None:
                self._pending.clear()
                return
            yield plan, future.result()

    def close(self) -> None:
        self._failed.set()
        self._writer.shutdown(wait=True)

    def _next(self) -> tuple[MirrorPlan, Refused]:
        plan, future = self._pending.popleft()
        return plan, future.result()

    def _write(self, plan: MirrorPlan, checking: Future[Checked] | None) -> Refused:
        if self._failed.is_set():
            raise RuntimeError("an earlier batch was not written")
        try:
            if checking is not None:
                hrefs = [href for href, _ in plan.writes]
                checked = list(zip(hrefs, checking.result(), strict=True))
            else:
                checked = self.store.check(plan.writes)
            return dict(self.store.write_checked(self.slug, checked, plan.local_deletes))
        except BaseException:
            self._failed.set()
            raise
