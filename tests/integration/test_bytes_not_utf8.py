"""Objects whose bytes are not all UTF-8, or that hold characters XML cannot carry, end to end.

An old client can leave a Windows-1252 `é` in a SUMMARY or LOCATION in iCloud, or an encoded
lone surrogate, or a NUL. The emulator holds the bytes as they are and serves them as they
are: a GET's body has them, and a multiget's answer pasting them is no longer XML. A mirror
pass must still count the object's busy time, keep iCloud's exact bytes as the text busy time
is computed from, give clients a copy Radicale takes (the bytes read as Windows-1252, the NUL
dropped) and say so in the copy's reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from calmirror.availability.sources import BusySources
from calmirror.emulator import Emulator
from calmirror.engine import Engine
from calmirror.local.layout import mirror_name
from calmirror.raw_text import exact_bytes
from tests.helpers import APP_PASSWORD, APPLE_ID, connected_home, mirrored_once

UTC = dt.UTC
WINDOW = (dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC))


def _object(uid: str, start: str, *lines: bytes) -> bytes:
    head = [
        b"BEGIN:VCALENDAR",
        b"VERSION:2.0",
        b"PRODID:-//Microsoft Corporation//Outlook 11.0 MIMEDIR//EN",
        b"BEGIN:VEVENT",
        b"UID:" + uid.encode(),
        b"DTSTAMP:20261201T090000Z",
        b"DTSTART:" + start.encode() + b"00Z",
        b"DURATION:PT1H",
    ]
    return b"\r\n".join([*head, *lines, b"END:VEVENT", b"END:VCALENDAR"]) + b"\r\n"


OBJECTS = {
    "cp1252": _object("cp1252", "20261214T0900", b"SUMMARY:Caf\xe9 with Ren\xe9e", b"LOCATION:Stra\xdfe 1 \x80 5"),
    "surrogate": _object("surrogate", "20261215T0900", b"SUMMARY:lone \xed\xa0\x80 surrogate"),
    "nul": _object("nul", "20261216T0900", b"SUMMARY:Standup", b"DESCRIPTION:a\x00b"),
    # folding counts octets: a writer that folds in the middle of a UTF-8 sequence (\xc3 | \xa9)
    "cut-by-fold": _object("cut-by-fold", "20261218T0900", b"SUMMARY:Caf\xc3\r\n \xa9 au lait"),
}


@dataclass
class Mirrored:
    emu: Emulator
    engine: Engine
    cal_id: str


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirrored]:
    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="empty") as emu:
        cal_id = emu.create_calendar("Old")
        for name, raw in OBJECTS.items():
            emu.put_item(cal_id, f"{name}.ics", raw)
        emu.put_item(cal_id, "plain.ics", _object("plain", "20261217T0900", b"SUMMARY:Plain").decode())
        home = connected_home(tmp_path_factory.mktemp("bytes"), emu, conflicts=("Old",))
        with mirrored_once(home) as engine:
            yield Mirrored(emu, engine, cal_id)


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_the_emulator_serves_the_bytes_as_iCloud_holds_them(mirrored: Mirrored, name: str) -> None:
    url = mirrored.emu.calendar_url(mirrored.cal_id) + f"{name}.ics"
    served = requests.get(url, auth=(APPLE_ID, APP_PASSWORD), timeout=30)
    assert served.status_code == 200 and served.content == OBJECTS[name]


def test_busy_time_counts_and_the_exact_bytes_are_kept(mirrored: Mirrored) -> None:
    busy = BusySources(mirrored.engine.store, mirrored.engine.state, mirrored.engine.settings)
    found = busy.occurrences(*WINDOW)
    assert found is not None
    assert sorted(o.uid for o in found) == ["cp1252", "cut-by-fold", "nul", "plain", "surrogate"]
    texts = mirrored.engine.state.mirror_texts(mirrored.cal_id)
    kept = {href.rsplit("/", 1)[-1].removesuffix(".ics"): exact_bytes(text) for href, text in texts.items()}
    assert {name: kept[name] for name in OBJECTS} == OBJECTS  # iCloud's text, byte for byte
    shown = {o.uid: o.summary for o in found}
    assert shown["cp1252"] == "Café with Renée"  # (the index keeps text: the bytes read as Windows-1252)
    assert shown["cut-by-fold"] == "Café au lait"  # (unfolded, the bytes are UTF-8 again)


def test_clients_get_a_copy_radicale_takes_and_status_says_why(mirrored: Mirrored) -> None:
    row = mirrored.engine.state.mirror(mirrored.cal_id)
    assert row is not None and row.slug
    copies = mirrored.engine.store.items(mirror_name(row.slug)).values()
    cp1252 = next(text for text in copies if "UID:cp1252" in text)
    assert "SUMMARY:Café with Renée" in cp1252 and "LOCATION:Straße 1 € 5" in cp1252
    assert "SUMMARY:Café au lait" in next(text for text in copies if "UID:cut-by-fold" in text)
    nul = next(text for text in copies if "UID:nul" in text)
    assert "\x00" not in nul and "DESCRIPTION:ab" in nul
    counts = mirrored.engine.state.copy_counts(mirrored.cal_id)
    assert not counts["withheld"] and not counts["unreadable"], counts
    reasons = " ".join(counts["compatible"])
    assert "not UTF-8 read as Windows-1252" in reasons and "NUL" in reasons
