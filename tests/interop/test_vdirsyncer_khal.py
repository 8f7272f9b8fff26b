"""vdirsyncer + khal as an end user runs them, against the real daemon and the iCloud emulator.

Both run as child processes with their own config files under the test's tmp folder (HOME and
every XDG folder point there), so the real home is never read or written. Needs
`pip install vdirsyncer khal`; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from calmirror.emulator import Emulator
from tests.helpers import Running, wait_for
from tests.interop.conftest import emulator_writes, private_env, require_tool

pytestmark = pytest.mark.interop

COLLECTIONS = ("appointments", "blocked", "icloud-home", "icloud-work")


@dataclass
class Desktop:
    """One user's vdirsyncer and khal set-up in a private folder."""

    root: Path
    running: Running
    vdirsyncer: str
    khal: str

    @property
    def env(self) -> dict[str, str]:
        return private_env(self.root)

    @property
    def calendars(self) -> Path:
        return self.root / "calendars"

    def write_vdirsyncer_config(self, *, mirrors_read_only: bool = False) -> None:
        """The obvious set-up (one pair, every collection the server has), or the recommended one:
        a second pair for the mirrors whose server side is `read_only`, so local edits are reverted."""
        url, (user, password) = self.running.url, self.running.auth
        remote = (
            f'type = "caldav"\nurl = {json.dumps(url)}\nusername = {json.dumps(user)}\n'
            f"password = {json.dumps(password)}\n"
        )
        local = f'type = "filesystem"\npath = {json.dumps(str(self.calendars) + "/")}\nfileext = ".ics"\n'
        text = f"[general]\nstatus_path = {json.dumps(str(self.root / 'status') + '/')}\n\n"
        if not mirrors_read_only:
            text += (
                '[pair calmirror]\na = "local"\nb = "server"\ncollections = ["from b"]\n'
                'conflict_resolution = "b wins"\n\n'
                f"[storage local]\n{local}\n[storage server]\n{remote}"
            )
        else:
            text += (
                '[pair calmirror]\na = "local"\nb = "server"\ncollections = ["appointments", "blocked"]\n'
                'conflict_resolution = "b wins"\n\n'
                '[pair mirrors]\na = "local"\nb = "server_mirrors"\n'
                'collections = ["icloud-home", "icloud-work"]\nconflict_resolution = "b wins"\n'
                'partial_sync = "revert"\n\n'
                f"[storage local]\n{local}\n[storage server]\n{remote}\n"
                f"[storage server_mirrors]\n{remote}read_only = true\n"
            )
        folder = self.root / "config" / "vdirsyncer"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config").write_text(text, encoding="utf-8")

    def write_khal_config(self) -> None:
        calendars = "".join(
            f"[[{name}]]\npath = {self.calendars / name}/\ntype = calendar\n"
            + ("readonly = True\n" if name.startswith("icloud-") else "")
            for name in COLLECTIONS
        )
        text = (
            f"[calendars]\n{calendars}\n"
            "[locale]\ntimeformat = %H:%M\ndateformat = %Y-%m-%d\nlongdateformat = %Y-%m-%d\n"
            "datetimeformat = %Y-%m-%d %H:%M\nlongdatetimeformat = %Y-%m-%d %H:%M\n"
            "local_timezone = UTC\ndefault_timezone = UTC\nfirstweekday = 0\n\n"
            "[default]\ndefault_calendar = appointments\n\n"
            f"[sqlite]\npath = {self.root / 'khal.db'}\n"
        )
        folder = self.root / "config" / "khal"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config").write_text(text, encoding="utf-8")

    def run(self, tool: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tool, *args], input=input, capture_output=True, text=True, timeout=120, env=self.env, cwd=self.root
        )

    def vdir(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.run(self.vdirsyncer, *args, input=input)

    def khal_(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.khal, *args)

    def discover_and_sync(self) -> None:
        # discover asks once per collection whether to create the local folder for it
        found = self.vdir("discover", input="y\n" * 10)
        assert found.returncode == 0, found.stdout + found.stderr
        for name in COLLECTIONS:
            assert f'"{name}"' in found.stdout + found.stderr
        synced = self.vdir("sync")
        assert synced.returncode == 0, synced.stdout + synced.stderr

    def local_file(self, collection: str, text: str) -> Path:
        return next(p for p in (self.calendars / collection).glob("*.ics") if text in p.read_text("utf-8"))

    def server_item(self, collection: str, text: str) -> tuple[str, str]:
        """(href, body) of the one item of `collection` on the server whose body holds `text`."""
        auth = self.running.auth
        listing = requests.request(
            "PROPFIND", self.running.collection_url(collection), auth=auth, timeout=10, headers={"Depth": "1"}
        )
        hrefs = [h.split("</")[0] for h in listing.text.split("href>")[1::2] if h.endswith(".ics</")]
        for href in hrefs:
            body = requests.get(f"{self.running.url.rstrip('/')}{href}", auth=auth, timeout=10).text
            if text in body:
                return href, body
        raise AssertionError(f"no item with {text!r} in {collection}")


@pytest.fixture
def desktop(tmp_path: Path, running: Running) -> Desktop:
    vdirsyncer = require_tool("vdirsyncer", "vdirsyncer")
    khal = require_tool("khal", "khal")
    user = Desktop(tmp_path / "user", running, vdirsyncer, khal)
    user.root.mkdir()
    user.write_vdirsyncer_config()
    user.write_khal_config()
    return user


def remote_bodies(emu: Emulator, cal: str) -> list[str]:
    return list(emu.items(emu.calendar_id(cal)).values())


def test_khal_lists_mirrors_and_its_new_appointment_reaches_icloud(desktop: Desktop, emu: Emulator) -> None:
    desktop.discover_and_sync()
    listed = desktop.khal_("list", "--format", "{start} {title} [{calendar}]", "2026-12-01", "2026-12-10")
    assert listed.returncode == 0, listed.stderr
    assert "2026-12-07 08:30 Dentist – Dr. Łukasiewicz [icloud-home]" in listed.stdout
    assert "Team sync [icloud-work]" in listed.stdout
    assert "Mum's birthday 🎂 [icloud-home]" in listed.stdout

    made = desktop.khal_(
        "new", "-a", "appointments", "2026-12-03", "10:00", "11:00", "Booked via khal", "::", "Made by the interop test"
    )
    assert made.returncode == 0, made.stdout + made.stderr
    created = desktop.local_file("appointments", "Booked via khal")
    uid = next(line[4:] for line in created.read_text("utf-8").splitlines() if line.startswith("UID:"))

    synced = desktop.vdir("sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "to server/appointments" in synced.stdout + synced.stderr
    assert wait_for(lambda: any(f"UID:{uid}" in b and "Booked via khal" in b for b in remote_bodies(emu, "Work")), 5)
    assert not any(uid in b for b in remote_bodies(emu, "Home"))

    after = desktop.khal_("list", "--format", "{start} {title} [{calendar}]", "2026-12-03", "1d")
    assert "2026-12-03 10:00 Booked via khal [appointments]" in after.stdout
    again = desktop.vdir("sync")
    # Nothing moves again, except busy/ taking the new appointment's busy block (its keeper
    # follows appointments/ a moment after the write, so this sync may be the one that sees it).
    copied = [line for line in (again.stdout + again.stderr).splitlines() if "Copying" in line]
    assert again.returncode == 0 and all(line.endswith("to local/busy") for line in copied), copied


def test_editing_a_mirrored_event_through_vdirsyncer_is_refused_cleanly(desktop: Desktop, emu: Emulator) -> None:
    desktop.discover_and_sync()
    href, server_before = desktop.server_item("icloud-home", "Dentist")
    icloud_before = remote_bodies(emu, "Home")
    mirrored = desktop.local_file("icloud-home", "Dentist")
    mirrored.write_text(
        mirrored.read_text("utf-8").replace("SUMMARY:Dentist", "SUMMARY:Edited Dentist"), encoding="utf-8"
    )
    # a change elsewhere in the same sync still goes through
    (desktop.calendars / "blocked" / "lunch.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//interop//EN\r\nBEGIN:VEVENT\r\nUID:interop-lunch\r\n"
        "DTSTAMP:20261101T000000Z\r\nDTSTART:20261204T120000Z\r\nDTEND:20261204T130000Z\r\n"
        "SUMMARY:Lunch (blocked)\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        encoding="utf-8",
    )

    refused = desktop.vdir("sync")
    output = refused.stdout + refused.stderr
    assert refused.returncode == 1, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert any("icloud-home" in line and "403" in line and "Forbidden" in line for line in errors), output
    assert "Traceback" not in output
    assert not any("blocked" in line or "appointments" in line or "icloud-work" in line for line in errors)

    assert desktop.server_item("icloud-home", "Dentist") == (href, server_before)
    assert "Edited Dentist" not in server_before
    assert desktop.server_item("blocked", "interop-lunch")[1]
    assert remote_bodies(emu, "Home") == icloud_before
    assert emulator_writes(emu) == []


def test_read_only_mirror_pair_reverts_local_edits(desktop: Desktop, emu: Emulator) -> None:
    """The set-up the README recommends: vdirsyncer itself treats the mirrors as read-only."""
    desktop.write_vdirsyncer_config(mirrors_read_only=True)
    desktop.discover_and_sync()
    mirrored = desktop.local_file("icloud-home", "Dentist")
    original = mirrored.read_text("utf-8")
    mirrored.write_text(original.replace("SUMMARY:Dentist", "SUMMARY:Edited Dentist"), encoding="utf-8")

    # vdirsyncer's partial_sync = "revert": the first sync writes nothing to the server and
    # notes the item as changed there; the next one copies the server's version back.
    for _ in range(2):
        synced = desktop.vdir("sync")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert "Edited Dentist" not in desktop.server_item("icloud-home", "Dentist")[1]
    assert desktop.local_file("icloud-home", "Dentist").read_text("utf-8") == original
    assert emulator_writes(emu) == []
