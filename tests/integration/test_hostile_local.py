"""Hostile local input: the hostile corpus written by a CalDAV client into `appointments/`, and
broken config files given to the CLI.

Every item is refused by the local server (4xx, nothing stored), or stored and quarantined
(its outbox row fails with a reason, or status names it, and iCloud never sees it), or
pushed whole (iCloud's copy parses and has the same UID). Nothing is ever sent half-formed:
the emulator validates every PUT like iCloud, and it must never have had to refuse one.
The local server never answers 5xx and never hangs, and the daemon keeps pushing afterwards.

The broken config files: each of the unit-level cases in `tests/unit/test_config.py`
(`BROKEN`, 16 files) plus the CLI-only ones below, run through the real CLI, gives exactly
one line on stderr naming the file and the key, and exit code 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import icalendar
import pytest
import requests

from calmirror.emulator import Emulator
from calmirror.transform import extract_uid
from tests.helpers import Running, connected_home, daemon_running, event, wait_for
from tests.hostile_corpus import BY_NAME, iter_local_cases
from tests.hostile_items import Case
from tests.unit.test_config import BROKEN

PUT_DEADLINE_S = 60.0
HEAVY = {"five-mb-description"}  # ~35 s through Radicale, the guard, the push and the emulator: slow run only


def remote_uids(emu: Emulator) -> list[str]:
    return [extract_uid(body) or "" for body in emu.items(emu.calendar_id("Work")).values()]


def write_corpus(tmp_path: Path, emu: Emulator, cases: list[Case]) -> None:
    home = connected_home(
        tmp_path, emu, conflicts=("Work", "Home"), extra_config="\n[push]\nmax_backoff = 1\n[sync]\ninterval = 3600\n"
    )
    with daemon_running(home) as run:
        check_corpus(run, emu, cases)


def check_corpus(run: Running, emu: Emulator, cases: list[Case]) -> None:
    answers: dict[str, int] = {}
    slowest = 0.0
    for case in cases:
        started = time.monotonic()
        answer = requests.put(
            run.href("appointments", f"{case.name}.ics"),
            data=case.body,
            auth=run.auth,
            headers={"Content-Type": "text/calendar"},
            timeout=PUT_DEADLINE_S,
        )
        slowest = max(slowest, time.monotonic() - started)
        answers[case.name] = answer.status_code
        assert answer.status_code < 500, (case.name, answer.status_code, answer.text[:200])
    state = run.state()
    stored = [case.uid for case in cases if case.uid and answers[case.name] < 400]

    def settled() -> bool:
        """Every stored appointment has reached iCloud or failed with a reason. An empty outbox
        alone is not enough: the detector may not have enqueued the last writes yet."""
        if state.outbox(("pending", "in_flight")):
            return False
        done = {row.uid for row in state.outbox(("failed",))} | set(remote_uids(emu))
        return all(uid in done for uid in stored)

    try:
        wait_for(settled, 90, every=0.2)  # what is still missing then is reported case by case below
        assert wait_for(lambda: not state.outbox(("pending", "in_flight")), 90, every=0.2), state.outbox()
        failed = {row.uid: row.last_error for row in state.outbox(("failed",))}
        events = " ".join(e.message for e in state.events(200))
    finally:
        state.close()
    uids = remote_uids(emu)
    outcome: dict[str, str] = {}
    for case in cases:
        status = answers[case.name]
        local = requests.get(run.href("appointments", f"{case.name}.ics"), auth=run.auth, timeout=30)
        if 400 <= status < 500:
            outcome[case.name] = "refused"
            assert local.status_code == 404, f"{case.name}: refused ({status}) yet stored"
        elif case.uid and case.uid in failed:
            outcome[case.name] = "quarantined"
            assert failed[case.uid], f"{case.name}: failed without a reason"
        elif not case.uid and f"appointments/{case.name}.ics" in events:
            outcome[case.name] = "quarantined"  # no UID, so no outbox row: status names the object
        elif case.uid and uids.count(case.uid) == 1:
            outcome[case.name] = "pushed"
            body = next(b for b in emu.items(emu.calendar_id("Work")).values() if extract_uid(b) == case.uid)
            parsed = icalendar.Calendar.from_ical(body)
            assert str(parsed.walk("VEVENT")[0]["UID"]) == case.uid
            assert "X-CALMIRROR" not in body
        else:
            outcome[case.name] = f"unaccounted (HTTP {status}, {uids.count(case.uid or '')} remote copies)"
        if outcome[case.name] != "pushed" and case.uid:
            assert case.uid not in uids, f"{case.name} reached iCloud although {outcome[case.name]}"
    wrong = {name: (got, BY_NAME[name].local) for name, got in outcome.items() if got != BY_NAME[name].local}
    assert not wrong, wrong
    # nothing half-formed was ever sent: iCloud (the emulator) never had to refuse a PUT
    refused_puts = [(r.path, r.status) for r in emu.requests if r.method == "PUT" and r.status not in (201, 204)]
    assert not refused_puts, refused_puts
    # and the daemon still pushes an ordinary appointment at once
    assert run.put("after.ics", event("after-hostile", "After the corpus")).status_code == 201
    assert wait_for(lambda: "after-hostile" in remote_uids(emu), 10)
    counts = {kind: list(outcome.values()).count(kind) for kind in ("refused", "quarantined", "pushed")}
    print(f"\nHOSTILE LOCAL: {len(cases)} items {counts}; slowest PUT {slowest:.1f} s")


def test_hostile_appointments_are_refused_quarantined_or_pushed_whole(tmp_path: Path, emu: Emulator) -> None:
    cases = [case for case in iter_local_cases() if case.name not in HEAVY]
    assert len(cases) >= 30
    write_corpus(tmp_path, emu, cases)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_hostile_appointments_full_corpus(tmp_path: Path, emu: Emulator) -> None:
    write_corpus(tmp_path, emu, list(iter_local_cases()))


def test_a_quarantined_appointment_shows_in_status_with_its_reason(tmp_path: Path, emu: Emulator) -> None:
    home = connected_home(tmp_path, emu, conflicts=("Work",), extra_config="\n[push]\nmax_backoff = 1\n")
    with daemon_running(home) as run:
        assert run.put("m.ics", BY_NAME["marker-injection"].text).status_code == 201
        assert run.put("t.ics", BY_NAME["vtodo-only"].text).status_code == 403  # refused: events only
        state = run.state()
        assert wait_for(lambda: len(state.outbox(("failed",))) == 1, 10)
        state.close()
    env = {**os.environ, "CALMIRROR_HOME": str(home.data_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "calmirror", "status"], env=env, capture_output=True, text=True, timeout=60
    )
    assert "1 failed" in done.stdout
    assert "mirror marker" in done.stdout


# --- broken config files through the CLI ----------------------------------------------------

CLI_ONLY = [
    ("[server]\nmax_body_mb = 0", "server.max_body_mb", "greater than 0"),
    ("[sync]\nbatch = 5000", "sync.batch", "from 1 to 1000"),
    ("[icloud]\ntimeout = -1", "icloud.timeout", "greater than 0"),
    ("[icloud]\ncredential = 'vault'", "icloud.credential", "'file', 'systemd', 'keyring'"),
    ("[icloud]\nlinked = 7", "icloud.linked", "must be a string"),
    ("[push]\nmax_backoff = 'soon'", "push.max_backoff", "must be a number"),
    ("[server]\nallow_non_loopback = 'yes'", "server.allow_non_loopback", "true or false"),
    ("[calendars]\nhome = 3", "calendars.home", "must be a table"),
    ("[calendars.home]\nallday_busy = 'no'", "calendars.home.allday_busy", "true or false"),
    ("[availability]\ntentative_busy = 1", "availability.tentative_busy", "true or false"),
    ("[sync]\ninterval = 60\ninterval = 30", None, "not valid TOML"),
    ("[server]\n\ufeffport = 1", None, "not valid TOML"),  # a BOM at the very start is accepted
]


# One child process runs `calmirror status` (the console script's entry point, `cli.main.run`)
# once per home: the same code path as a user's shell, without paying the start-up 29 times.
DRIVER = """
import contextlib, io, json, os, sys
from calmirror.cli.main import run
results = []
for home in sys.argv[1:]:
    os.environ["CALMIRROR_HOME"] = home
    sys.argv = ["calmirror", "status"]
    err, code = io.StringIO(), 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            run()
        except SystemExit as exit:
            code = exit.code
    results.append({"code": code, "stderr": err.getvalue()})
print(json.dumps(results))
"""


def test_every_broken_config_gives_one_line_naming_file_and_key(tmp_path: Path) -> None:
    cases: list[tuple[str | bytes, str | None, str]] = [*BROKEN, *CLI_ONLY, (b"\xff\xfe\x00garbage", None, "UTF-8")]
    assert len(cases) >= 10
    homes = []
    for n, (text, _, _) in enumerate(cases):
        home = tmp_path / f"h{n}"
        home.mkdir(mode=0o700)
        config = home / "config.toml"
        config.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        homes.append(str(home))
    done = subprocess.run([sys.executable, "-c", DRIVER, *homes], capture_output=True, text=True, timeout=120)
    results = json.loads(done.stdout)
    problems = []
    for (text, key, fragment), home, result in zip(cases, homes, results, strict=True):
        lines = [line for line in result["stderr"].splitlines() if line.strip()]
        line = lines[0] if lines else ""
        ok = (
            result["code"] == 2
            and len(lines) == 1
            and f"{home}/config.toml" in line
            and fragment in line
            and (key is None or f": {key}:" in line)
            and "Traceback" not in result["stderr"]
        )
        if not ok:
            problems.append((text, result))
    assert not problems, problems


def test_a_broken_config_stops_the_daemon_before_it_serves(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text("[server]\nport = 0\n[sync]\ninterval = 1\n", encoding="utf-8")
    env = {**os.environ, "CALMIRROR_HOME": str(home)}
    result = subprocess.run(
        [sys.executable, "-m", "calmirror", "run"], env=env, capture_output=True, text=True, timeout=60
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert str(home / "config.toml") in lines[0] and "sync.interval" in lines[0]
