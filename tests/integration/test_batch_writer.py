"""The mirror's batch writer against a real store: a failed write stops the batches behind it,
whether worker processes check them or the writer's own thread does."""

from __future__ import annotations

from pathlib import Path

import pytest

from calmirror.local import LocalStore
from calmirror.local.check_pool import CheckPool
from calmirror.local.writer import Batch, BatchWriter
from calmirror.testing import LOCAL_USER
from calmirror.testing.ical import event

BATCHES = [Batch([(f"{kind}{n}.ics", event(f"uid-{kind}{n}")) for n in range(20)], []) for kind in "abc"]


@pytest.mark.parametrize("pooled", [True, False])
def test_a_failed_write_stops_the_batches_behind_it(tmp_path: Path, pooled: bool) -> None:
    store = LocalStore(tmp_path / "store", LOCAL_USER)
    store.ensure_base()
    store.ensure_mirror("work", "Work", None)
    pool = CheckPool(store.limits) if pooled else None
    writer = BatchWriter(store, "missing-mirror", pool, depth=len(BATCHES))
    try:
        with pytest.raises(Exception):  # noqa: B017 (the store's own error, whatever it is)
            for batch in BATCHES:
                list(writer.submit(batch))
            list(writer.drain())
        assert list(writer.settle()) == []
    finally:
        writer.close()
        if pool is not None:
            pool.close()
    assert store.mirror_item_names("work") == set()
