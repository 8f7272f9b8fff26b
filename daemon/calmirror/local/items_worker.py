"""Worker process for `items.prepare_many`: pickled (pairs, limits) in, pickled results out.

Run as `python -m calmirror.local.items_worker`; kept apart from `items` so running it
does not re-import a module the package has already imported.
"""

from __future__ import annotations

import pickle
import sys

from calmirror.local.items import prepare_chunk


def main() -> None:
    pairs, limits = pickle.load(sys.stdin.buffer)
    results = prepare_chunk(pairs, limits)
    pickle.dump(results, sys.stdout.buffer, protocol=pickle.HIGHEST_PROTOCOL)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
