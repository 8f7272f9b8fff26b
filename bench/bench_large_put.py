"""Large local writes: how long a client waits for the 201 of one big appointment, and until
it is stored in iCloud, by size. Time must grow in proportion to the size.

    python bench/bench_large_put.py [--sizes-mb 1,2,4,8.7]

How: the real daemon (`python -m calmirror --home H run`, a child process) connected to the
bundled emulator in this process, Work linked and mirrored (so the double-booking guard
runs). One appointment per size, its DESCRIPTION filled to the size, folded at 75 octets
as clients send it. Reported: the local PUT until its 201, and until iCloud (the emulator)
logged the stored PUT, with seconds per MB beside each.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

import common
import requests
from bench_push import RunningDaemon, wait_for_put

from calmirror import account, config, config_edit
from calmirror.emulator import Emulator
from calmirror.home import Home
from calmirror.state import State


def big_appointment(uid: str, size: int) -> str:
    head = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calmirror bench//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20280105T100000Z\r\nDTEND:20280105T110000Z\r\n"
        "SUMMARY:Large appointment\r\n"
    )
    tail = "END:VEVENT\r\nEND:VCALENDAR\r\n"
    words = "Notes from the intake call, repeated to fill the description; "
    text = (words * (size // len(words) + 1))[: max(0, size - len(head) - len(tail) - 20)]
    line = "DESCRIPTION:" + text
    folded = "\r\n ".join([line[:75]] + [line[i : i + 74] for i in range(75, len(line), 74)])
    return head + folded + "\r\n" + tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", default="1,2,4,8.7")
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes_mb.split(",")]
    with (
        common.temp_dir() as root,
        Emulator(apple_id=common.APPLE_ID, password=common.APP_PASSWORD, seed="sample") as emu,
    ):
        home = Home(config_file=root / "config.toml", data_dir=root)
        home.ensure()
        home.config_file.write_text("[server]\nport = 0\n", encoding="utf-8")
        state = State(home.state_db)
        try:
            calendars = account.connect(
                home, config.load(home.config_file), state, common.APPLE_ID, common.APP_PASSWORD, emu.url
            )
        finally:
            state.close()
        work = next(c for c in calendars if c.name == "Work")
        config_edit.set_linked(home.config_file, work.id, also_conflict=True)
        daemon = RunningDaemon(home, root / "daemon.log")
        print(f"{'size':>8} {'local 201':>10} {'s/MB':>6} {'in iCloud':>10} {'s/MB':>6}")
        try:
            with requests.Session() as session:
                for mb in sizes:
                    uid = f"bench-large-{uuid.uuid4().hex[:8]}"
                    body = big_appointment(uid, int(mb * 1_000_000))
                    sent = time.time()
                    answer = daemon.put(session, uid, body)
                    acked = time.time()
                    if answer.status_code != 201:
                        sys.exit(f"local PUT of {mb} MB answered {answer.status_code}: {answer.text[:200]}")
                    entry = wait_for_put(emu, uid, 300)
                    stored = (entry.time + entry.duration_s - sent) if entry else float("nan")
                    size = len(body.encode()) / 1_000_000
                    print(
                        f"{size:7.2f}M {acked - sent:9.2f}s {(acked - sent) / size:6.2f} "
                        f"{stored:9.2f}s {stored / size:6.2f}",
                        flush=True,
                    )
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
