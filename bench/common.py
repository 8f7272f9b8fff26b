"""Shared pieces of the benchmark suite: data, timing, child processes, peers, the table.

Why one module: every benchmark compares calmirror with a peer on the *same* data in the
*same* run, so the generator, the way a child's wall time and peak RSS are taken, the plain
Radicale the peers use and the table all have to be the same code for both sides.

Peak RSS of a child is read from `/proc/<pid>/status` (`VmHWM`, the high-water mark of the
child's own address space), polled while it runs. Not `ru_maxrss`: Linux carries the maximum
over into a process at `exec` from the address space it replaces, and Python's subprocess
starts children with vfork, so every child's `ru_maxrss` (and `RUSAGE_CHILDREN`, and a
child's own `RUSAGE_SELF`) is at least the *parent's* peak: here, the emulator holding the
whole corpus. Measured that way, calmirror and vdirsyncer both "used" the bench's 66 MiB.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from calmirror.emulator import Emulator

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for _path in (str(REPO), str(REPO / "daemon"), str(BENCH_DIR)):
    if _path not in sys.path:  # tests.helpers and calmirror from this checkout, whatever the cwd
        sys.path.insert(0, _path)

from tests.ical import APPLE_PRODID, stamp, vcalendar_lines, vtimezone_for  # noqa: E402 (path set above)

APPLE_ID = "me@example.com"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
#: The middle of the generated data: serving and availability queries look around here.
ANCHOR = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)

# --- Apple-shaped data --------------------------------------------------------------------

_ZONES = ["Europe/Berlin", "America/New_York", "UTC"]
_ZONE_WEIGHTS = [60, 25, 15]
_WEEKDAYS = ["MO", "TU", "WE", "TH", "FR"]
_SUMMARIES = [
    "Team sync",
    "1:1 with Sam",
    "Design review",
    "Customer call",
    "Dentist",
    "Lunch with Alex",
    "Budget review",
    "Focus time",
    "Interview",
    "Sprint planning",
    "Yoga",
    "Parents' evening",
]
_PLACES = [
    ("Gärtnerstraße 12\\, 10245 Berlin", "geo:52.507,13.454"),
    ("1 Infinite Loop\\, Cupertino CA 95014", "geo:37.331,-122.030"),
    ("Alexanderplatz\\, 10178 Berlin", "geo:52.521,13.413"),
]


@dataclass(frozen=True)
class Mix:
    """How many resources of each kind a generated corpus holds, and how many VEVENTs in all."""

    single: int
    weekly: int
    allday: int
    vevents: int

    @property
    def total(self) -> int:
        return self.single + self.weekly + self.allday


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()


def _common(rng: random.Random, uid: str, summary: str, sequence: int) -> list[str]:
    created = ANCHOR - dt.timedelta(days=rng.randint(30, 900), seconds=rng.randint(0, 86_399))
    modified = created + dt.timedelta(days=rng.randint(0, 20), seconds=rng.randint(0, 86_399))
    lines = [
        f"CREATED:{created:%Y%m%dT%H%M%SZ}",
        f"UID:{uid}",
        f"SUMMARY:{summary}",
        f"LAST-MODIFIED:{modified:%Y%m%dT%H%M%SZ}",
        f"DTSTAMP:{modified:%Y%m%dT%H%M%SZ}",
        f"SEQUENCE:{sequence}",
        "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC",
    ]
    if rng.random() < 0.3:
        place, geo = rng.choice(_PLACES)
        lines += [f"LOCATION:{place}", f"X-APPLE-STRUCTURED-LOCATION;VALUE=URI;X-ADDRESS={place};X-TITLE=Venue:{geo}"]
    if rng.random() < 0.2:
        lines += [
            'ORGANIZER;CN="Sam Lee";EMAIL="sam.lee@example.com":mailto:sam.lee@example.com',
            'ATTENDEE;CN="Robin Example";CUTYPE=INDIVIDUAL;EMAIL="me@example.com";PARTSTAT=ACCEPTED;'
            "ROLE=REQ-PARTICIPANT:mailto:me@example.com",
        ]
    return lines


def _alarm(rng: random.Random) -> list[str]:
    if rng.random() >= 0.5:
        return []
    alarm = _uid(rng)
    return [
        "BEGIN:VALARM",
        f"X-WR-ALARMUID:{alarm}",
        f"UID:{alarm}",
        "TRIGGER:-PT15M",
        "ACTION:DISPLAY",
        "DESCRIPTION:Reminder",
        "END:VALARM",
    ]


def _fold(line: str) -> list[str]:
    """RFC 5545 folding at 75 octets, as Apple writes long lines."""
    raw = line.encode()
    if len(raw) <= 75:
        return [line]
    parts, start, limit = [], 0, 75
    while start < len(raw):
        end = min(len(raw), start + limit)
        while end < len(raw) and (raw[end] & 0xC0) == 0x80:  # never split a UTF-8 sequence
            end -= 1
        parts.append(raw[start:end].decode())
        start, limit = end, 74
    return [parts[0], *(" " + p for p in parts[1:])]


def _calendar(zone: str | None, vevents: list[list[str]]) -> str:
    lines = vcalendar_lines(*vevents, head=["CALSCALE:GREGORIAN", *vtimezone_for(zone)], prodid=APPLE_PRODID)
    return "".join(folded + "\r\n" for line in lines for folded in _fold(line))


def _single(rng: random.Random, n: int) -> tuple[str, list[list[str]]]:
    zone = rng.choices(_ZONES, _ZONE_WEIGHTS)[0]
    day = (ANCHOR - dt.timedelta(days=rng.randint(-180, 540))).date()
    start = dt.datetime.combine(day, dt.time(rng.randint(7, 19), rng.choice([0, 15, 30, 45])))
    end = start + dt.timedelta(minutes=rng.choice([15, 30, 30, 45, 60, 60, 90, 120]))
    vevent = [
        *_common(rng, _uid(rng), f"{rng.choice(_SUMMARIES)} #{n}", 0),
        f"DTSTART{stamp(start, zone)}",
        f"DTEND{stamp(end, zone)}",
        "TRANSP:" + ("TRANSPARENT" if rng.random() < 0.1 else "OPAQUE"),
        *_alarm(rng),
    ]
    return zone, [vevent]


def _weekly(rng: random.Random, n: int) -> tuple[str, list[list[str]]]:
    """A weekly series with 1-3 moved or retitled instances as RECURRENCE-ID VEVENTs, as iCloud stores them."""
    zone = rng.choices(_ZONES, _ZONE_WEIGHTS)[0]
    day = (ANCHOR - dt.timedelta(days=rng.randint(0, 700))).date()
    start = dt.datetime.combine(day, dt.time(rng.randint(7, 18), rng.choice([0, 30])))
    length = dt.timedelta(minutes=rng.choice([30, 45, 60, 90]))
    uid, summary = _uid(rng), f"{rng.choice(_SUMMARIES)} (weekly) #{n}"
    rule = f"FREQ=WEEKLY;BYDAY={_WEEKDAYS[start.weekday()] if start.weekday() < 5 else 'SA'}"
    ending = rng.choices(["open", "count", "until"], [50, 25, 25])[0]
    if ending == "count":
        rule += f";COUNT={rng.randint(10, 120)}"
    elif ending == "until":
        until = start + dt.timedelta(weeks=rng.randint(10, 150))
        rule += f";UNTIL={until.replace(tzinfo=dt.UTC):%Y%m%dT%H%M%SZ}"
    master = [
        *_common(rng, uid, summary, 1),
        f"RRULE:{rule}",
        f"DTSTART{stamp(start, zone)}",
        f"DTEND{stamp(start + length, zone)}",
        "TRANSP:OPAQUE",
    ]
    if rng.random() < 0.3:
        master.append(f"EXDATE{stamp(start + dt.timedelta(weeks=rng.randint(1, 8)), zone)}")
    master += _alarm(rng)
    vevents = [master]
    for week in sorted(rng.sample(range(9, 40), rng.randint(1, 3))):
        original = start + dt.timedelta(weeks=week)
        moved = original + dt.timedelta(hours=rng.choice([-2, -1, 1, 2, 24]))
        vevents.append(
            [
                *_common(rng, uid, summary + " (moved)", 2),
                f"RECURRENCE-ID{stamp(original, zone)}",
                f"DTSTART{stamp(moved, zone)}",
                f"DTEND{stamp(moved + length, zone)}",
                "TRANSP:OPAQUE",
            ]
        )
    return zone, vevents


def _allday(rng: random.Random, n: int) -> tuple[None, list[list[str]]]:
    day = (ANCHOR - dt.timedelta(days=rng.randint(-180, 540))).date()
    vevent = [
        *_common(rng, _uid(rng), f"Away #{n}", 0),
        f"DTSTART{stamp(day, None)}",
        f"DTEND{stamp(day + dt.timedelta(days=rng.choice([1, 1, 1, 2, 3, 7])), None)}",
        "TRANSP:" + ("OPAQUE" if rng.random() < 0.3 else "TRANSPARENT"),
        "X-MICROSOFT-CDO-ALLDAYEVENT:TRUE",
    ]
    return None, [vevent]


def generate_events(
    total: int, seed: int = 2026, *, weekly_share: float = 0.15, allday_share: float = 0.05
) -> list[tuple[str, str]]:
    """`total` iCloud-shaped resources `(NAME.ics, text)`: 80 % single, 15 % weekly with overrides, 5 % all-day.

    Deterministic for a given (total, seed): peers and calmirror are fed byte-identical data,
    and a re-run compares like with like. Shares are exact (rounded), then shuffled.
    """
    rng = random.Random(seed)
    weekly, allday = round(total * weekly_share), round(total * allday_share)
    kinds = ["weekly"] * weekly + ["allday"] * allday + ["single"] * (total - weekly - allday)
    rng.shuffle(kinds)
    makers = {"single": _single, "weekly": _weekly, "allday": _allday}
    out: list[tuple[str, str]] = []
    for n, kind in enumerate(kinds):
        zone, vevents = makers[kind](rng, n)
        out.append((f"{_uid(rng)}.ics", _calendar(zone, vevents)))
    return out


def mix_of(events: Sequence[tuple[str, str]]) -> Mix:
    """Classify generated resources (by content) so the table can state what was measured."""
    single = weekly = allday = vevents = 0
    for _name, text in events:
        vevents += text.count("BEGIN:VEVENT")
        if "RRULE:FREQ=WEEKLY" in text:
            weekly += 1
        elif "DTSTART;VALUE=DATE" in text:
            allday += 1
        else:
            single += 1
    return Mix(single, weekly, allday, vevents)


# --- timing -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; with 200 samples p99 is the 2nd largest, not an interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class ChildResult:
    """What one measured child process did: exit status, wall time, peak RSS, output."""

    returncode: int | None
    wall_s: float
    maxrss_kib: int
    timed_out: bool
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def maxrss_mib(self) -> float:
        return self.maxrss_kib / 1024


def vm_hwm_kib(pid: int | str = "self") -> int:
    """Peak resident set of `pid`'s current address space in KiB (0 once it has exited)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tail(path: Path, limit: int = 4000) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-limit:] if len(text) > limit else text


def run_measured(
    cmd: Sequence[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    keep_output: int = 200_000,
) -> ChildResult:
    """Run `cmd`, return its wall time and ITS OWN peak RSS; kill its process group after `timeout` s.

    Output goes to temporary files (a pipe could fill and stall a chatty child); only the
    last `keep_output` characters are kept.
    """
    with tempfile.TemporaryDirectory(prefix="calmirror-bench-io-") as tmp:
        out_path, err_path = Path(tmp) / "out", Path(tmp) / "err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(
                list(cmd),
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=err,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                start_new_session=True,
            )
            if stdin is not None and proc.stdin is not None:
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.write(stdin.encode())
                    proc.stdin.close()
            deadline = started + timeout
            timed_out = False
            peak = 0
            while True:
                peak = max(peak, vm_hwm_kib(proc.pid))  # monotonic: the last read before exit is the peak
                pid, status, _usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    timed_out = True
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    pid, status, _usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.01)
            wall = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen consistent
        return ChildResult(
            None if timed_out else proc.returncode,
            wall,
            peak,
            timed_out,
            _tail(out_path, keep_output),
            _tail(err_path, keep_output),
        )


# --- servers and folders ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_answering(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.request("OPTIONS", url, timeout=2)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def temp_dir(prefix: str = "calmirror-bench-") -> Iterator[Path]:
    """A scratch folder that is removed whatever happens (the suite must leave nothing behind)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class Icloud:
    """Our iCloud for one run: the emulator, the Work calendar holding the corpus, a scratch folder."""

    root: Path
    emu: Emulator
    work_id: str
    load_s: float  # how long loading the corpus took (set-up, reported by run_all only)


@contextlib.contextmanager
def icloud_with(events: Sequence[tuple[str, str]]) -> Iterator[Icloud]:
    """The set-up every benchmark starts from: an emulator with an empty account whose Work calendar
    holds `events`, and a scratch folder; both gone on the way out, also on failure."""
    from calmirror.emulator import Emulator  # here: children that import this module never need it

    with temp_dir() as root, Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="empty") as emu:
        work = emu.calendar_id("Work")
        started = time.perf_counter()
        emu.bulk_load(work, events)
        yield Icloud(root, emu, work, time.perf_counter() - started)


_RESPONSE_LINE = re.compile(
    r"(\w+) response status for '([^']*)'.* in ([0-9.]+) seconds(?: \S* (\d+) bytes)?[^:\n]*: (\d{3})"
)


@dataclass
class RadicaleTraffic:
    requests: int
    response_bytes: int
    by_method: dict[str, int]
    statuses: list[tuple[str, int]] = field(default_factory=list)  # (method, status) in order


class BackgroundProcess:
    """A long-running child (a server, the daemon) with its output in a file; `stop()` reaps it.

    Its peak RSS (`VmHWM`) is read just before it is told to stop, see the module docstring.
    """

    def __init__(self, cmd: Sequence[str], log_file: Path, env: dict[str, str] | None = None) -> None:
        self.log_file = log_file
        self.maxrss_kib = 0
        self.returncode: int | None = None
        with open(log_file, "ab") as log:
            self.proc = subprocess.Popen(
                list(cmd), stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, start_new_session=True
            )

    def alive(self) -> bool:
        return self.proc.poll() is None if self.returncode is None else False

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM (a graceful stop), SIGKILL after `grace` s; idempotent."""
        if self.returncode is not None:
            return
        self.maxrss_kib = max(self.maxrss_kib, vm_hwm_kib(self.proc.pid))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while True:
            pid, status, _usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                pid, status, _usage = os.wait4(self.proc.pid, 0)
                break
            time.sleep(0.02)
        self.returncode = self.proc.returncode = os.waitstatus_to_exitcode(status)


def start_server(
    cmd: Sequence[str], log_file: Path, serving: re.Pattern[str], *, timeout: float, failure: str
) -> tuple[BackgroundProcess, str]:
    """A server child (the daemon, calmirror's local server) and the URL it logs once it serves
    (group 1 of `serving`). If it exits or takes over `timeout` s, it is stopped and the error
    starts with `failure` and ends with the log's tail, so a bench run says why."""
    proc = BackgroundProcess(cmd, log_file)
    deadline = time.monotonic() + timeout
    while not (found := serving.search(proc.log_text())):
        if not proc.alive() or time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"{failure}: {proc.log_text()[-2000:]}")
        time.sleep(0.05)
    return proc, found.group(1)


class PlainRadicale:
    """An unmodified Radicale 3.9 (`python -m radicale`) in its own process on 127.0.0.1.

    Defaults everywhere except: `auth type = none` (any login, no password check), our folder,
    our port. `max_expand_occurrence` stays at Radicale's default (10,000) unless given, so
    the peers run into the same limits a user's Radicale would. `log_requests` sets level
    info, where Radicale logs one line per response with its size, so the peer's local side
    can be counted like the emulator's log counts the iCloud side.
    """

    def __init__(
        self,
        folder: Path,
        *,
        log_requests: bool = False,
        max_expand_occurrence: int | None = None,
        name: str = "radicale",
    ) -> None:
        self.folder = folder
        self.log_requests = log_requests
        self.max_expand_occurrence = max_expand_occurrence
        self.name = name
        self.url = ""
        self.proc: BackgroundProcess | None = None
        self.maxrss_kib = 0
        self._work = Path(tempfile.mkdtemp(prefix=f"calmirror-bench-{name}-"))
        self._log_file = self._work / "radicale.log"
        self._log_offset = 0

    def start(self) -> PlainRadicale:
        for _attempt in range(5):
            port = free_port()
            config = self._work / "config"
            lines = [
                "[server]",
                f"hosts = 127.0.0.1:{port}",
                "[auth]",
                "type = none",
                "[storage]",
                f"filesystem_folder = {self.folder}",
                "[logging]",
                f"level = {'info' if self.log_requests else 'warning'}",
            ]
            if self.max_expand_occurrence:
                lines += ["[reporting]", f"max_expand_occurrence = {self.max_expand_occurrence}"]
            config.write_text("\n".join(lines) + "\n")
            self.proc = BackgroundProcess([sys.executable, "-m", "radicale", "--config", str(config)], self._log_file)
            self.url = f"http://127.0.0.1:{port}/"
            try:
                wait_until_answering(self.url, timeout=15)
                return self
            except requests.RequestException:
                self.stop()
        raise RuntimeError(f"plain Radicale did not start: {_tail(self._log_file)}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.stop()
            self.maxrss_kib = max(self.maxrss_kib, proc.maxrss_kib)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._work, ignore_errors=True)

    def __enter__(self) -> PlainRadicale:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def mark(self) -> None:
        """Count traffic from here on."""
        self._log_offset = self._log_file.stat().st_size if self._log_file.exists() else 0

    def traffic(self) -> RadicaleTraffic:
        """Requests and response bytes Radicale logged since `mark()` (needs `log_requests`)."""
        with open(self._log_file, "rb") as fh:
            fh.seek(self._log_offset)
            text = fh.read().decode(errors="replace")
        count, size = 0, 0
        by_method: dict[str, int] = {}
        statuses: list[tuple[str, int]] = []
        for match in _RESPONSE_LINE.finditer(text):
            count += 1
            size += int(match.group(4) or 0)
            by_method[match.group(1)] = by_method.get(match.group(1), 0) + 1
            statuses.append((match.group(1), int(match.group(5))))
        return RadicaleTraffic(count, size, by_method, statuses)

    def log_tail(self) -> str:
        return _tail(self._log_file)


# --- the table ----------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table: a measured figure for calmirror next to the peer's.

    `better` says which direction wins ("lower" for times, sizes and counts, "higher" for
    throughput); `ratio` is always calmirror ÷ peer.
    """

    bench: str
    metric: str
    calmirror: float | None
    peer_name: str = ""
    peer: float | None = None
    unit: str = ""
    better: str = "lower"
    goal: str = ""
    note: str = ""
    calmirror_text: str | None = None  # shown instead of the number (e.g. "failed: …")
    peer_text: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.calmirror is None or self.peer is None or self.peer == 0:
            return None
        return self.calmirror / self.peer


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}".strip()


def _cells(row: Row) -> list[str]:
    ratio = row.ratio
    return [
        row.bench,
        row.metric,
        row.calmirror_text if row.calmirror_text is not None else fmt(row.calmirror, row.unit),
        row.peer_name or "–",
        row.peer_text if row.peer_text is not None else fmt(row.peer, row.unit),
        "–" if ratio is None else f"{ratio:.3g}",
        row.better,
        row.goal,
        row.note,
    ]


HEADERS = ["bench", "metric", "calmirror", "peer", "peer figure", "calmirror/peer", "better", "goal", "note"]


def text_table(rows: Sequence[Row]) -> str:
    cells = [HEADERS, *(_cells(r) for r in rows)]
    widths = [min(60, max(len(c[i]) for c in cells)) for i in range(len(HEADERS))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: Sequence[Row]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(esc(c) for c in _cells(r)) + " |" for r in rows]
    return "\n".join(lines)


@dataclass
class Report:
    """Everything one suite run found: the rows, plus free-form findings worth reading."""

    rows: list[Row] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(
            f"  {row.bench} | {row.metric}: calmirror {_cells(row)[2]} vs {row.peer_name or '-'} {_cells(row)[4]}",
            flush=True,
        )

    def finding(self, text: str) -> None:
        self.findings.append(text)
        print(f"  note: {text}", flush=True)


def machine_summary() -> str:
    """Date, cores, memory, Python and Radicale versions: what RESULTS.md must state."""
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    import radicale

    return (
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; nproc {len(os.sched_getaffinity(0))}; "
        f"RAM {mem_kib / 1024 / 1024:.1f} GiB; Python {platform.python_version()}; "
        f"Radicale {radicale.VERSION}; {platform.system()} {platform.release()}; calmirror {revision()}"
    )


def revision() -> str:
    """The checkout measured: commit, plus "+changes" when the working tree differs from it."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no", "--", "daemon") else "")
