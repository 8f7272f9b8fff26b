"""Worker process of `check_pool.CheckPool`: frames of pickled (pairs, limits) in, results out,
until its input closes.

Run as `python -m calmirror.local.items_worker`; kept apart from `items` so running it
does not re-import a module the package has already imported.
"""

from __future__ import annotations

import sys
from typing import cast

from calmirror.local.check_pool import read_frame, write_frame
from calmirror.local.items import Limits, prepare_chunk


def main() -> None:
    while True:
        request = read_frame(sys.stdin.buffer)
        if request is None:
            return
        pairs, limits = cast(tuple[list[tuple[str, str]], Limits], request)
        write_frame(sys.stdout.buffer, prepare_chunk(pairs, limits))


if __name__ == "__main__":
    main()
