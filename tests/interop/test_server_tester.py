"""python-caldav's `caldav-server-tester` against calmirror and against a plain Radicale on the same data.

The tester probes a server and grades ~100 CalDAV features. It runs four times, two at a time:

- plain Radicale (same version, same store copied from calmirror, `owner_only` rights), with
  the tester making its own scratch calendars: what Radicale can do at all;
- plain Radicale and calmirror, both told to use "Blocked slots" (calmirror lets no client create
  a calendar, and "Blocked slots" is the writable calendar that is never pushed to iCloud);
- calmirror with a mirror ("iCloud · Home") as the test calendar, only the checks that finish
  on a read-only calendar: they must grade every write to it as refused.

Every feature plain Radicale grades on "Blocked slots" must get the same grade through calmirror,
except the ones listed in BY_DESIGN (they need a calendar the tester creates, or tasks, which
`blocked/` refuses) and KNOWN_BUGS
(regressions reported, see REPORT-caldav-server-tester.md). While the tester runs, nothing may
reach iCloud (the emulator) and the mirrors must stay byte for byte the same.

`CALMIRROR_WRITE_REPORT=1 pytest --run-interop tests/interop/test_server_tester.py` rewrites
REPORT-caldav-server-tester.md from the run.
"""

from __future__ import annotations

import ast
import datetime
import importlib.metadata
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from shutil import copytree

import pytest
import requests

from calmirror.emulator import Emulator
from tests.helpers import APP_PASSWORD, APPLE_ID, Running, connected_home, start_daemon, wait_for
from tests.interop.conftest import emulator_writes, require_tool
from tests.interop.tester_grades import (
    BOTH_SHORT,
    BY_DESIGN,
    EVENTS_ONLY,
    EVENTS_ONLY_REASON,
    EXPAND_NOTES,
    KNOWN_BUGS,
    NO_MKCALENDAR,
)

pytestmark = pytest.mark.interop

REPORT = Path(__file__).with_name("REPORT-caldav-server-tester.md")
TEST_CALENDAR = "Blocked slots"
MIRROR_CALENDAR = "iCloud · Home"
#: The checks that run to the end on a calendar nobody may write (the full set stops with an
#: AssertionError inside the tester when it cannot save its fixtures).
MIRROR_CHECKS = ("CheckCalendarProperties", "CheckEventWithoutSummary", "CheckProppatchDelay")


@dataclass
class Run:
    label: str
    features: dict[str, dict[str, object]] = field(default_factory=dict)
    seconds: float = 0.0
    returncode: int = 0
    stderr: str = ""


@dataclass
class Results:
    plain_own: Run
    plain_blocked: Run
    calmirror_blocked: Run
    calmirror_mirror: Run
    writes_to_icloud: list[tuple[str, str, int]]
    mirrors_before: dict[str, bytes]
    mirrors_after: dict[str, bytes]
    versions: dict[str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def plain_radicale(store: Path, user: str, password: str, log: Path) -> Iterator[str]:
    """Radicale itself (`python -m radicale`, no config file) on `store`, same login as calmirror."""
    users = store.parent / "users"
    users.write_text(f"{user}:{password}\n", encoding="utf-8")
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "radicale",
        "--config",
        "",
        "--server-hosts",
        f"127.0.0.1:{port}",
        "--auth-type",
        "htpasswd",
        "--auth-htpasswd-filename",
        str(users),
        "--auth-htpasswd-encryption",
        "plain",
        "--rights-type",
        "owner_only",
        "--storage-filesystem-folder",
        str(store),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:

        def answers() -> bool:
            try:
                return (
                    requests.request(
                        "PROPFIND", f"{url}{user}/", auth=(user, password), timeout=5, headers={"Depth": "0"}
                    ).status_code
                    == 207
                )
            except requests.ConnectionError:
                return False

        assert wait_for(answers, 20, 0.1), log.read_text(errors="replace")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def shimmed_tester(tester: str) -> list[str]:
    """The tester through `tester_shim.py` (its refused-task-list fault worked around), run by
    the Python its own script names, so it finds the same packages."""
    first = Path(tester).read_text(encoding="utf-8", errors="replace").splitlines()[0]
    python = first[2:].strip() if first.startswith("#!") else sys.executable
    return [python, str(Path(__file__).with_name("tester_shim.py"))]


def run_tester(tester: str, label: str, url: str, auth: tuple[str, str], *args: str) -> Run:
    started = time.monotonic()
    done = subprocess.run(
        [
            *shimmed_tester(tester),
            "--caldav-url",
            url,
            "--caldav-username",
            auth[0],
            "--caldav-password",
            auth[1],
            "--format",
            "hints",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    run = Run(label, seconds=time.monotonic() - started, returncode=done.returncode, stderr=done.stderr)
    if done.returncode == 0:
        run.features = ast.literal_eval(done.stdout)
    return run


def mirror_files(store: Path) -> dict[str, bytes]:
    """Every file of every mirror collection (items and collection properties), by relative path."""
    root = store / "collection-root"
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.glob("*/icloud-*/**/*"))
        if p.is_file() and ".Radicale.cache" not in p.parts
    }


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Results]:
    tester = require_tool("caldav-server-tester", "caldav-server-tester")
    root = tmp_path_factory.mktemp("server-tester")
    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="sample") as emu:
        running: Running = start_daemon(connected_home(root / "calmirror", emu, conflicts=("Work", "Home")))
        try:
            store = running.home.store_dir
            copytree(store, root / "plain" / "store")
            before = mirror_files(store)
            already = len(emulator_writes(emu))
            runs: dict[str, Run] = {}
            with plain_radicale(root / "plain" / "store", *running.auth, log=root / "plain" / "radicale.log") as plain:

                def calmirror_side() -> None:
                    runs["calmirror_blocked"] = run_tester(
                        tester, "calmirror", running.url, running.auth, "--caldav-calendar", TEST_CALENDAR
                    )
                    checks = [a for check in MIRROR_CHECKS for a in ("--run-checks", check)]
                    runs["calmirror_mirror"] = run_tester(
                        tester,
                        "calmirror mirror",
                        running.url,
                        running.auth,
                        "--caldav-calendar",
                        MIRROR_CALENDAR,
                        *checks,
                    )

                def plain_side() -> None:
                    runs["plain_blocked"] = run_tester(
                        tester, "Radicale", plain, running.auth, "--caldav-calendar", TEST_CALENDAR
                    )
                    runs["plain_own"] = run_tester(tester, "Radicale own calendars", plain, running.auth)

                threads = [threading.Thread(target=calmirror_side), threading.Thread(target=plain_side)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
            yield Results(
                runs["plain_own"],
                runs["plain_blocked"],
                runs["calmirror_blocked"],
                runs["calmirror_mirror"],
                emulator_writes(emu)[already:],
                before,
                mirror_files(store),
                versions(),
            )
        finally:
            running.stop()


def versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in ("caldav-server-tester", "caldav", "radicale")}


def support(run: Run, feature: str) -> str:
    info = run.features.get(feature, {})
    if "support" in info:
        return str(info["support"])
    return f"value={info['value']}" if "value" in info else "—"


def differences(r: Results) -> dict[str, tuple[str, str]]:
    features = set(r.plain_blocked.features) | set(r.calmirror_blocked.features)
    return {
        f: (support(r.plain_blocked, f), support(r.calmirror_blocked, f))
        for f in sorted(features)
        if support(r.plain_blocked, f) != support(r.calmirror_blocked, f)
    }


def test_every_run_of_the_tester_finished(results: Results) -> None:
    for run in (results.plain_own, results.plain_blocked, results.calmirror_blocked, results.calmirror_mirror):
        assert run.returncode == 0, f"{run.label}: {run.stderr[-3000:]}"
        assert run.features, run.label
    if os.environ.get("CALMIRROR_WRITE_REPORT"):
        REPORT.write_text(render_report(results), encoding="utf-8")


def test_every_feature_plain_radicale_supports_is_supported_through_calmirror(results: Results) -> None:
    diff = differences(results)
    for feature, (_plain, ours) in diff.items():
        if feature in BY_DESIGN:
            refused = ("ungraceful",) if feature in EVENTS_ONLY else ()
            assert ours in ("unsupported", "unknown", "—", *refused), f"{feature}: calmirror says {ours}"
    unexplained = {f: d for f, d in diff.items() if f not in BY_DESIGN and f not in KNOWN_BUGS}
    assert not unexplained, f"calmirror grades these differently from plain Radicale: {unexplained}"
    fixed = sorted(f for f in KNOWN_BUGS if f not in diff)
    assert not fixed, f"fixed now, remove from KNOWN_BUGS: {fixed}"
    if KNOWN_BUGS:
        pytest.xfail("known regressions against plain Radicale: " + "; ".join(KNOWN_BUGS))


def test_a_mirror_is_graded_read_only(results: Results) -> None:
    mirror, blocked = results.calmirror_mirror, results.calmirror_blocked
    for feature in ("calendar-color", "calendar-color.name", "calendar-order"):
        assert support(blocked, feature) == "full"
        assert support(mirror, feature) == "unsupported", feature
    no_summary = mirror.features["save-load.event.no-summary"]
    assert no_summary["support"] == "ungraceful" and "403" in str(no_summary["behaviour"])
    proppatch = mirror.features["synchronous-write.proppatch"]
    assert proppatch["support"] == "unknown" and "Forbidden" in str(proppatch["behaviour"])
    assert support(blocked, "save-load.event") == "full"
    assert support(mirror, "save-load.event") == "unknown"  # nothing could be saved to test it
    for feature in ("save-load.todo", "save-load.journal"):
        assert support(blocked, feature) == "unsupported", feature  # events only
        assert support(mirror, feature) in ("unknown", "unsupported"), feature


def test_the_tester_left_mirrors_and_icloud_untouched(results: Results) -> None:
    assert results.mirrors_before, "no mirror files found"
    assert results.mirrors_after == results.mirrors_before
    assert results.writes_to_icloud == []


# --- the recorded report -------------------------------------------------------------------------


def _verdict(feature: str, plain: str, ours: str) -> str:
    if feature in KNOWN_BUGS:
        return "**regression** (bug reported)"
    if feature in BY_DESIGN:
        return f"by design: {BY_DESIGN[feature]}"
    return "same" if plain == ours else "**differs**"


def _behaviour(run: Run, feature: str) -> str:
    """The tester's note on a feature, without the run's port (so the recorded report stays stable)."""
    info = run.features.get(feature, {})
    text = str(info.get("behaviour", info.get("description", "")))
    text = re.sub(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:PORT", text)
    return text.replace("|", "\\|").replace("\n", " ")


def render_report(r: Results) -> str:
    runs = (r.plain_own, r.plain_blocked, r.calmirror_blocked)
    features = sorted(set().union(*(run.features for run in runs)))
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    v = r.versions
    lines = [
        "# caldav-server-tester: calmirror next to plain Radicale",
        "",
        f"Recorded {when} by `tests/interop/test_server_tester.py` with caldav-server-tester "
        f"{v['caldav-server-tester']}, caldav {v['caldav']}, Radicale {v['radicale']}, "
        f"Python {sys.version.split()[0]}. Regenerate with "
        "`CALMIRROR_WRITE_REPORT=1 pytest --run-interop tests/interop/test_server_tester.py`.",
        "",
        "Setup: calmirror connected to the bundled iCloud emulator (sample data), Work linked, Work and",
        "Home mirrored. Its Radicale store was then copied and served by plain Radicale (same version,",
        "`--rights-type owner_only`, htpasswd, no config file) with the same login. Columns:",
        "",
        f"- **Radicale, own**: plain Radicale; the tester creates its own scratch calendars "
        f"({r.plain_own.seconds:.0f} s).",
        f'- **Radicale, blocked**: plain Radicale, `--caldav-calendar "{TEST_CALENDAR}"` '
        f"({r.plain_blocked.seconds:.0f} s).",
        f"- **calmirror, blocked**: calmirror, the same calendar ({r.calmirror_blocked.seconds:.0f} s). calmirror "
        "refuses MKCALENDAR, so a calendar has to be named; `blocked/` is the writable one that is never "
        "pushed to iCloud.",
        f'- **calmirror, mirror**: calmirror with the mirror `icloud-home/` ("{MIRROR_CALENDAR}") as the test '
        f"calendar, checks {', '.join(MIRROR_CHECKS)} only ({r.calmirror_mirror.seconds:.0f} s); "
        "`·` = not probed by those checks.",
        "",
        "Grades are the tester's: full, quirk, fragile, unsupported, ungraceful, broken, unknown (could not",
        "be probed); `—` = not reported.",
        "",
        "## Findings",
        "",
    ]
    diff = differences(r)
    regressions = [f for f in diff if f in KNOWN_BUGS]
    other = [f for f in diff if f not in KNOWN_BUGS and f not in BY_DESIGN]
    lines.append(
        f"- {len(features)} features graded; on the same calendar calmirror and plain Radicale agree on "
        f"{len(features) - len(diff)} of them."
    )
    events_only = [f for f in diff if f in EVENTS_ONLY]
    lines.append(
        f"- Different by design ({len([f for f in diff if f in BY_DESIGN and f not in EVENTS_ONLY])}): calendar "
        "creation and the probes that need a scratch calendar. " + NO_MKCALENDAR + "."
    )
    lines.append(
        f"- Different by design ({len(events_only)}): tasks and journals, and the probes built on the tester's "
        f"task fixtures. {EVENTS_ONLY_REASON}."
    )
    lines.append(
        "- The tester runs through `tests/interop/tester_shim.py`: on a calendar that refuses a VTODO, on a "
        "server that refuses MKCALENDAR, caldav-server-tester 1.7.0 itself ends the run with an AssertionError "
        '("CheckDuplicateEvent failed to check declared features") before grading anything; the shim grades '
        "tasks unsupported there and lets it go on, as the tester already does for journals."
    )
    for feature in regressions:
        lines.append(f"- **Regression** `{feature}`: {KNOWN_BUGS[feature]}.")
    for feature in other:
        lines.append(
            f"- **Unexplained difference** `{feature}`: Radicale {diff[feature][0]}, calmirror {diff[feature][1]}."
        )
    lines += [
        "- The mirror is graded read-only: PROPPATCH of colour/order `unsupported`, saving an event",
        "  `ungraceful` (403), display name `Forbidden`, every save-load feature `unknown` or `unsupported`",
        "  (nothing could be saved). Its files were byte for byte the same afterwards.",
        f"- Writes that reached iCloud (the emulator) during all runs: {len(r.writes_to_icloud)}.",
        "- Through calmirror each refused request on a path that is not one of its calendars costs about 1 s",
        "  (Radicale's deliberate delay on 401/403), which is most of why its runs take longer.",
        "",
        "## Graded short on both servers, as a client meets it",
        "",
        *[
            f"- `{f}` ({support(r.calmirror_blocked, f)} through calmirror): {why}."
            for f, why in BOTH_SHORT.items()
            if f in r.calmirror_blocked.features
        ],
        "",
        "## Beyond the tester: expanded recurrences",
        "",
        *[f"- {note}." for note in EXPAND_NOTES],
        "",
        "## Side by side",
        "",
        "| feature | Radicale, own | Radicale, blocked | calmirror, blocked | calmirror, mirror | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for f in features:
        plain, ours = support(r.plain_blocked, f), support(r.calmirror_blocked, f)
        mirror = support(r.calmirror_mirror, f) if f in r.calmirror_mirror.features else "·"
        own = support(r.plain_own, f)
        lines.append(f"| `{f}` | {own} | {plain} | {ours} | {mirror} | {_verdict(f, plain, ours)} |")
    lines += ["", "## The tester's notes where the two differ", ""]
    for f, (plain, ours) in diff.items():
        notes = [
            f"{who} **{grade}**" + (f" ({note})" if note else "")
            for who, grade, note in (
                ("Radicale", plain, _behaviour(r.plain_blocked, f)),
                ("calmirror", ours, _behaviour(r.calmirror_blocked, f)),
            )
        ]
        lines.append(f"- `{f}`: " + "; ".join(notes))
    lines += ["", "## The tester's notes on the mirror", ""]
    for f in sorted(r.calmirror_mirror.features):
        note = _behaviour(r.calmirror_mirror, f)
        if note:
            lines.append(f"- `{f}` {support(r.calmirror_mirror, f)}: {note}")
    return "\n".join(lines) + "\n"
