"""Asking for the next piece while the caller works on this one.

A mirror pass fetches its changes in multigets of 100 and plans and records each answer
before asking for the next: the pass waited for iCloud on every batch while its own work
stood still, and worked while no request was in flight. iCloud answers a multiget in
roughly constant time and serves requests concurrently; here the next request is simply
sent while this answer is worked on. Still one request at a time and in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Piece = TypeVar("Piece")
Answer = TypeVar("Answer")


def prefetched(fetch: Callable[[Piece], Answer], pieces: Sequence[Piece]) -> Generator[Answer, None, None]:
    """`fetch(piece)` of each piece, in order, the next one running in another thread while
    the caller has this one. `fetch` runs in one thread at a time (a client that is not
    thread-safe may be used, as long as the caller does not use it meanwhile). Closing the
    generator waits for the call in flight; its error comes out when its answer is due."""
    if len(pieces) <= 1:
        for piece in pieces:
            yield fetch(piece)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="calmirror-fetch") as pool:
        ahead = pool.submit(fetch, pieces[0])
        for following in [*pieces[1:], None]:
            answer = ahead.result()
            if following is not None:
                ahead = pool.submit(fetch, following)
            yield answer
