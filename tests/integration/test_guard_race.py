"""Two clients booking the same free slot at the same moment, with the guard in "reject":
exactly one gets it. Each check asks the busy index, which learns of a booking only once it
is written; checks that ran side by side both found the slot free and both were written."""

from __future__ import annotations

import threading
from pathlib import Path

import requests

from calmirror.emulator import Emulator
from tests.helpers import event
from tests.integration.test_availability_server import daemon_with

CLIENTS = 8


def test_one_of_several_simultaneous_bookings_of_one_slot_is_taken(tmp_path: Path, emu: Emulator) -> None:
    run = daemon_with(tmp_path, emu, "reject")
    try:
        start = threading.Barrier(CLIENTS)
        codes: list[int] = []

        def book(n: int) -> None:
            text = event(f"race-{n}", f"Booking {n}", start="20270310T180000Z", end="20270310T183000Z")
            start.wait()
            codes.append(run.put(f"race-{n}.ics", text).status_code)

        threads = [threading.Thread(target=book, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(codes) == [201] + [409] * (CLIENTS - 1), codes
        kept = [
            n
            for n in range(CLIENTS)
            if requests.get(run.href("appointments", f"race-{n}.ics"), auth=run.auth, timeout=10).status_code == 200
        ]
        assert len(kept) == 1
    finally:
        run.stop()
