"""Worker process of `check_pool.CheckPool`: frames of pickled (pairs, limits, side job) in,
(results, side job's result) out, until its input closes.

Run as `python -m calmirror.local.items_worker`; kept apart from `items` so running it
does not re-import a module the package has already imported.
"""

from __future__ import annotations

import sys
from typing import cast

from calmirror.local.check_pool import SideJob, read_frame, run_side, write_frame
from calmirror.local.items import Limits, prepare_chunk


def main() -> None:
    while True:
        request = read_frame(sys.stdin.buffer)
        if request is None:
            return
        pairs, limits, side = cast(tuple[list[tuple[str, str]], Limits, SideJob | None], request)
        write_frame(sys.stdout.buffer, (prepare_chunk(pairs, limits), run_side(side)))


if __name__ == "__main__":
    main()
