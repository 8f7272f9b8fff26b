"""Every corpus of calendar texts the tests hold, walked in one order: the hand-checked iCloud
fixtures, the hostile corpus (its texts that are UTF-8), the iCloud object shapes and a
generated Apple-shaped corpus. For tests that hold a fast path to the full one on all of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from calmirror.testing.corpus import generate_events
from tests import hostile_corpus, icloud_shapes

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "icloud"


def corpus_texts(generated: int, seed: int) -> Iterator[tuple[str, str]]:
    """(a name to report, the text) for every text, with `generated` events drawn with `seed`."""
    for path in sorted(FIXTURES.rglob("*.ics")):
        yield f"fixture {path.name}", path.read_text(encoding="utf-8")
    for case in hostile_corpus.CORPUS:
        try:
            yield f"hostile {case.name}", case.body.decode("utf-8")
        except UnicodeDecodeError:
            continue
    for name, text in icloud_shapes.SHAPES.items():
        yield f"shape {name}", text
    for name, text in generate_events(generated, seed=seed):
        yield f"corpus {name}", text
