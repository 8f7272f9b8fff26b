"""One real mirror pass of a calendar of named shapes, for the end-to-end shape tests
(`test_icloud_object_shapes`, `test_wild_shapes`): the emulator holds each shape as iCloud
would, and the test reads what the mirror stored for a client."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from calmirror.emulator import Emulator
from calmirror.engine import Engine
from calmirror.local.layout import mirror_name
from tests.helpers import APP_PASSWORD, APPLE_ID, connected_home, mirrored_once


@dataclass
class Mirrored:
    emu: Emulator
    engine: Engine
    cal_id: str

    def client_texts(self, uid: str) -> list[str]:
        """Every text the mirror stores for `uid` (a client of the local server reads these)."""
        row = self.engine.state.mirror(self.cal_id)
        assert row is not None and row.slug
        return [t for t in self.engine.store.items(mirror_name(row.slug)).values() if f"UID:{uid}\r\n" in t]

    def client_text(self, uid: str) -> str:
        found = self.client_texts(uid)
        assert len(found) == 1, f"{uid}: {len(found)} copies in the mirror"
        return found[0]


@contextmanager
def mirrored_shapes(
    home_dir: Path, calendar: str, shapes: Iterable[tuple[str, str]], config: str
) -> Iterator[Mirrored]:
    """An emulator holding `shapes` (resource name, text) in `calendar`, and an engine after one
    mirror pass of it with `config` appended to the home's settings."""
    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="empty") as emu:
        cal_id = emu.create_calendar(calendar)
        for name, text in shapes:
            emu.put_item(cal_id, f"{name}.ics", text)
        home = connected_home(home_dir, emu, conflicts=(calendar,), extra_config=config)
        with mirrored_once(home) as engine:
            yield Mirrored(emu, engine, cal_id)


def same_lines(text: str) -> str:
    """A text as iCloud serves it back: the same, line endings and a byte-order mark aside."""
    return text.lstrip("\ufeff").replace("\r\n", "\n")
