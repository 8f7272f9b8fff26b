"""Worker processes that check calendar objects while the caller fetches and writes.

Checking an object with vobject is the CPU-heavy part of a mirror (about 1 ms per
Apple-shaped event); a pool of long-lived workers lets it run on every core and beside
the network and disk work of the pass. The workers are plain
`python -m calmirror.local.items_worker` children fed length-prefixed pickles through
pipes, not `multiprocessing`: its spawn and forkserver modes re-run the parent's main
script in every worker, and plain fork copies a process whose server and watcher threads
may hold locks. They get the parent's environment minus nothing secret (calmirror keeps
no secret in its environment) and no arguments but the module name.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO, Any, cast

from calmirror.local.items import Limits, PreparedItem, prepare_chunk

log = logging.getLogger("calmirror.local")

_FRAME = struct.Struct(">Q")
WORKER_TIMEOUT_S = 600.0
#: From this many objects, starting workers (about half a second) pays for itself
#: (checking costs about 1 ms per Apple-shaped event).
WORTH_A_POOL = 1000

Checked = list[PreparedItem | str]
#: Other work on the same objects that a worker does beside the check, so the caller's own
#: thread need not (a module-level function and its picklable arguments; e.g. the busy index
#: entries of the exact texts): its result comes back with the check's.
SideJob = tuple[Callable[..., Any], tuple[Any, ...]]


def run_side(side: SideJob | None) -> object:
    """The side job's result; None without one or when it fails (the caller then does the
    work itself, and meets the error there): it must never cost the check."""
    if side is None:
        return None
    try:
        return side[0](*side[1])
    except Exception:
        return None


class WorkerFailed(Exception):
    """A worker died, timed out or answered nonsense; the caller checks in-process."""


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


def pool_for(count: int, limits: Limits) -> CheckPool | None:
    """The one place that decides whether checking `count` objects is worth worker processes."""
    return CheckPool(limits) if count >= WORTH_A_POOL and default_workers() >= 2 else None


def check_many(pairs: Sequence[tuple[str, str]], limits: Limits) -> list[tuple[str, PreparedItem | str]]:
    """Check every object, in order; big batches in worker processes, one per core."""
    pool = pool_for(len(pairs), limits)
    if pool is None:
        results = prepare_chunk(pairs, limits)
    else:
        with pool:
            results = pool.check_all(pairs)
    return [(href, result) for (href, _), result in zip(pairs, results, strict=True)]


def write_frame(stream: IO[bytes], value: object) -> None:
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(payload)) + payload)
    stream.flush()


def read_frame(stream: IO[bytes]) -> object | None:
    """The next value, or None at a clean end of stream."""
    head = stream.read(_FRAME.size)
    if not head:
        return None
    if len(head) != _FRAME.size:
        raise EOFError("cut-off frame header")
    (size,) = _FRAME.unpack(head)
    payload = stream.read(size)
    if len(payload) != size:
        raise EOFError("cut-off frame")
    message: object = pickle.loads(payload)
    return message


class _Worker:
    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "calmirror.local.items_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )

    def check(
        self, pairs: Sequence[tuple[str, str]], limits: Limits, timeout: float, side: SideJob | None = None
    ) -> tuple[Checked, object]:
        timer = threading.Timer(timeout, self.process.kill)
        timer.start()
        try:
            write_frame(cast(IO[bytes], self.process.stdin), (list(pairs), limits, side))
            answer = read_frame(cast(IO[bytes], self.process.stdout))
        except (OSError, EOFError, pickle.PickleError, ValueError, AttributeError, TypeError) as error:
            raise WorkerFailed(f"worker failed: {error}") from error
        finally:
            timer.cancel()
        if not isinstance(answer, tuple) or len(answer) != 2:
            raise WorkerFailed("worker answered something other than (results, side result)")
        results, side_result = answer
        if not isinstance(results, list) or len(results) != len(pairs):
            raise WorkerFailed("worker answered with the wrong number of results")
        return cast(Checked, results), side_result

    def close(self) -> None:
        try:
            if self.process.stdin:
                self.process.stdin.close()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            if self.process.stdout:
                self.process.stdout.close()


class CheckPool:
    """`submit(pairs)` checks a batch in a free worker and returns a future of the results.

    A batch whose worker fails is checked in the calling thread of the pool instead, so a
    pool never loses a batch; a worker that failed is replaced on next use.
    """

    def __init__(self, limits: Limits, workers: int | None = None, timeout: float = WORKER_TIMEOUT_S) -> None:
        self.limits = limits
        self.size = workers or default_workers()
        self.timeout = timeout
        self._idle: queue.SimpleQueue[_Worker | None] = queue.SimpleQueue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        for _ in range(self.size):
            self._idle.put(None)  # started on first use
        self._threads = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="calmirror-check")

    def __enter__(self) -> CheckPool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def submit(self, pairs: Sequence[tuple[str, str]], side: SideJob | None = None) -> Future[tuple[Checked, object]]:
        """The checks of `pairs` and the result of `side` (None without one)."""
        return self._threads.submit(self._check, list(pairs), side)

    def check_all(self, pairs: Sequence[tuple[str, str]]) -> Checked:
        """Every object, split evenly over the workers, in order."""
        size = -(-len(pairs) // self.size) if pairs else 1
        futures = [self.submit(pairs[start : start + size]) for start in range(0, len(pairs), size)]
        return [result for future in futures for result in future.result()[0]]

    def _check(self, pairs: list[tuple[str, str]], side: SideJob | None) -> tuple[Checked, object]:
        worker = self._idle.get()
        try:
            if worker is None:
                worker = _Worker()
                with self._lock:
                    self._all.append(worker)
            answer = worker.check(pairs, self.limits, self.timeout, side)
        except (OSError, WorkerFailed) as error:
            log.warning("checking calendar objects in a worker process failed (%s); checking them here", error)
            if worker is not None:
                worker.close()
            self._idle.put(None)
            return prepare_chunk(pairs, self.limits), run_side(side)
        self._idle.put(worker)
        return answer

    def close(self) -> None:
        self._threads.shutdown(wait=True)
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            worker.close()
