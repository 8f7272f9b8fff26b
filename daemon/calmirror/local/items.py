"""Checking calendar objects before they enter a mirror.

Each object goes through the same steps Radicale applies to a client's PUT
(`read_components`, `check_and_sanitize_items`, `Item.prepare`), so a mirror never holds
something Radicale itself would refuse or later skip as broken. The result is plain data
(`PreparedItem`), which lets big batches be checked in worker processes: parsing and
re-serializing with vobject costs ~0.5 ms per small event, 5 s for a 10,000-event mirror
on one core.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from radicale import item as radicale_item
from radicale import pathutils

log = logging.getLogger("calmirror.local")

#: Below this many objects a worker pool costs more than it saves.
PARALLEL_THRESHOLD = 1500
_WORKER_TIMEOUT_S = 600


@dataclass(frozen=True)
class PreparedItem:
    """A checked object with everything Radicale caches about it, ready to store."""

    href: str
    text: str
    etag: str
    uid: str
    name: str
    component_name: str
    time_range: tuple[int, int]

    def to_item(self, collection_path: str) -> radicale_item.Item:
        return radicale_item.Item(
            collection_path=collection_path,
            href=self.href,
            text=self.text,
            etag=self.etag,
            uid=self.uid,
            name=self.name,
            component_name=self.component_name,
            time_range=self.time_range,
        )

    @classmethod
    def from_item(cls, item: radicale_item.Item) -> PreparedItem:
        assert item.href is not None
        return cls(
            href=item.href,
            text=item.serialize(),
            etag=item.etag,
            uid=item.uid,
            name=item.name,
            component_name=item.component_name,
            time_range=item.time_range,
        )


@dataclass(frozen=True)
class Limits:
    max_resource_size: int
    max_rrule_occurrence: int
    component: str = "VEVENT"


def check_href(href: str) -> str | None:
    """Why `href` cannot name an item file, or None. Dot-names are Radicale's own files."""
    if not pathutils.is_safe_filesystem_path_component(href) or href != href.strip():
        return "unsafe href"
    if len(href.encode("utf-8")) > 200:
        return "href too long"
    return None


def prepare_one(href: str, ics: str, limits: Limits) -> PreparedItem | str:
    """The prepared object, or a short reason why it cannot be stored."""
    problem = check_href(href)
    if problem:
        return problem
    if len(ics.encode("utf-8")) > limits.max_resource_size:
        return "object too large"
    try:
        components = radicale_item.read_components(ics)
    except Exception:
        return "not valid iCalendar"
    try:
        radicale_item.check_and_sanitize_items(
            components, max_vevent_rrule_occurrence=limits.max_rrule_occurrence, tag="VCALENDAR"
        )
    except Exception as error:
        return _short(f"refused by Radicale: {error}")
    try:
        item = radicale_item.Item(collection_path="calmirror", href=href, vobject_item=components[0])
        item.prepare()
    except Exception as error:
        return _short(f"cannot be stored: {error}")
    if item.component_name != limits.component:
        return f"not a {limits.component} (found {item.component_name or 'nothing'})"
    return PreparedItem.from_item(item)


def _short(reason: str, limit: int = 160) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def prepare_chunk(pairs: Sequence[tuple[str, str]], limits: Limits) -> list[PreparedItem | str]:
    return [prepare_one(href, ics, limits) for href, ics in pairs]


def prepare_many(pairs: Sequence[tuple[str, str]], limits: Limits) -> list[tuple[str, PreparedItem | str]]:
    """Prepare every object, in order; big batches in worker processes, one per core.

    The workers are plain `python -m calmirror.local.items_worker` children fed through
    pipes, not `multiprocessing`: its spawn and forkserver modes re-run the parent's main
    script in every worker, and plain fork copies a process whose server and watcher
    threads may hold locks.
    """
    workers = min(os.cpu_count() or 1, 4)
    results = None
    if len(pairs) >= PARALLEL_THRESHOLD and workers >= 2:
        results = _prepare_in_workers(pairs, limits, workers)
    if results is None:
        results = prepare_chunk(pairs, limits)
    return [(href, result) for (href, _), result in zip(pairs, results, strict=True)]


def _prepare_in_workers(
    pairs: Sequence[tuple[str, str]], limits: Limits, workers: int
) -> list[PreparedItem | str] | None:
    """None when the workers cannot be had or fail: the caller checks in-process instead."""
    size = -(-len(pairs) // workers)
    slices = [list(pairs[start : start + size]) for start in range(0, len(pairs), size)]
    try:
        with ThreadPoolExecutor(max_workers=len(slices)) as pool:
            parts = list(pool.map(lambda part: _run_worker(part, limits), slices))
    except (OSError, subprocess.SubprocessError, pickle.PickleError, EOFError, ValueError) as error:
        log.warning("checking calendar objects in worker processes failed (%s); checking them here", error)
        return None
    return [result for part in parts for result in part]


def _run_worker(pairs: list[tuple[str, str]], limits: Limits) -> list[PreparedItem | str]:
    payload = pickle.dumps((pairs, limits), protocol=pickle.HIGHEST_PROTOCOL)
    package_root = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, "-m", "calmirror.local.items_worker"],
        input=payload,
        capture_output=True,
        env=env,
        timeout=_WORKER_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise subprocess.SubprocessError(f"worker exited with {done.returncode}: {detail[0]}")
    results = pickle.loads(done.stdout)
    if not isinstance(results, list) or len(results) != len(pairs):
        raise ValueError("worker answered with the wrong number of results")
    return results
