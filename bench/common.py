"""Shared pieces of the benchmark suite: timing, child processes, peers, the table.

Why one module: every benchmark compares calmirror with a peer on the *same* data in the
*same* run, so the way a child's wall time and peak RSS are taken, the plain Radicale the
peers use and the table all have to be the same code for both sides. The data itself, and
the test account, come from `calmirror.testing` (re-exported here), which the tests use too.

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
import hashlib
import os
import platform
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
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from bench_push import RunningDaemon

    from calmirror.emulator import Emulator
    from calmirror.engine import Engine
    from calmirror.sync_report import SyncReport

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for _path in (str(REPO / "daemon"), str(BENCH_DIR)):
    if _path not in sys.path:  # calmirror from this checkout and the other benchmarks, whatever the cwd
        sys.path.insert(0, _path)

from calmirror.testing import APP_PASSWORD as APP_PASSWORD  # noqa: E402 (path set above)
from calmirror.testing import APPLE_ID as APPLE_ID  # noqa: E402
from calmirror.testing.corpus import ANCHOR as ANCHOR  # noqa: E402
from calmirror.testing.corpus import Mix as Mix  # noqa: E402
from calmirror.testing.corpus import generate_events as generate_events  # noqa: E402
from calmirror.testing.corpus import mix_of as mix_of  # noqa: E402

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
    # User + system CPU of the child and of every descendant it waited for (its worker
    # processes included), from `wait4`.
    cpu_s: float = 0.0

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


def daemon_hwm_mib(daemon: RunningDaemon) -> float:
    """The running daemon's peak resident set so far, in MiB."""
    return vm_hwm_kib(daemon.proc.proc.pid) / 1024


# --- bookings through the daemon ------------------------------------------------------------


def booking(uid: str, n: int, month: str) -> str:
    """Booking `n`: half an hour on a day (1-28) and at an hour (06-17 UTC) of `month` (YYYYMM)
    that `n` picks, so a run of them spreads over the month."""
    day, hour = 1 + n % 28, 6 + n % 12
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calmirror bench//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:{month}{day:02d}T{hour:02d}0000Z\r\n"
        f"DTEND:{month}{day:02d}T{hour:02d}3000Z\r\nSUMMARY:Booked {n}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def timed_put(daemon: RunningDaemon, session: requests.Session, prefix: str, n: int, month: str) -> float:
    """Seconds until the daemon answered the PUT of a new booking `n` into `appointments/`."""
    uid = f"{prefix}-{n:04d}-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    answer = daemon.put(session, uid, booking(uid, n, month))
    took = time.perf_counter() - started
    if answer.status_code not in (201, 204):
        raise RuntimeError(f"local PUT answered {answer.status_code}: {answer.text[:200]}")
    return took


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
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    timed_out = True
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    pid, status, usage = os.wait4(proc.pid, 0)
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
            usage.ru_utime + usage.ru_stime,
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


def mirror_once(engine: Engine) -> list[SyncReport]:
    """One mirror pass over a client of the engine's own, closed afterwards: how every
    benchmark fills its local mirrors before measuring what it measures."""
    client = engine.client()
    try:
        return engine.mirror_pass(client)
    finally:
        client.close()


@contextlib.contextmanager
def icloud_with(events: Sequence[tuple[str, str]]) -> Iterator[Icloud]:
    """The set-up every benchmark starts from: an emulator with an empty account whose Work calendar
    holds `events`, and a scratch folder; both gone on the way out, also on failure."""
    from calmirror.emulator import Emulator  # here: children that import this module never need it

    cache = os.environ.get(EMULATOR_CACHE_ENV)
    if not cache:
        with temp_dir() as root, Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="empty") as emu:
            work = emu.calendar_id("Work")
            started = time.perf_counter()
            emu.bulk_load(work, events)
            yield Icloud(root, emu, work, time.perf_counter() - started)
        return
    kept = Path(cache) / corpus_key(events)
    with temp_dir() as root:
        store = root / "emulator-store"
        started = time.perf_counter()
        if kept.is_dir():
            shutil.copytree(kept, store, symlinks=True)
        with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="empty", data_dir=str(store)) as emu:
            work = emu.calendar_id("Work")
            if not kept.is_dir():
                emu.bulk_load(work, events)
                shutil.copytree(store, kept.with_suffix(".partial"), symlinks=True)
                kept.with_suffix(".partial").rename(kept)
            yield Icloud(root, emu, work, time.perf_counter() - started)


# Set to a folder to keep the emulator's loaded store per corpus and start later runs from a copy:
# loading 100,000 events takes many minutes (the emulator parses each), copying them one or two.
EMULATOR_CACHE_ENV = "CALMIRROR_BENCH_EMULATOR_CACHE"


def corpus_key(events: Sequence[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for name, text in events:
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    return f"{len(events)}-{digest.hexdigest()[:16]}"


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
        if self.proc.returncode is not None:  # it exited and `alive()` reaped it already
            self.returncode = self.proc.returncode
            return
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


#: One figure of a scenario's results: its label, its key in the results dict, its decimals.
Figure = tuple[str, str, int]


def figures_table(
    title: str,
    figures: Sequence[Figure],
    now: dict[str, Any],
    base: dict[str, Any] | None = None,
    base_name: str = "",
) -> str:
    """A Markdown table of a scenario's figures from its results dict `now`; with `base` (the
    same scenario on other code, named `base_name`) a column of its figures and their ratio
    base ÷ now, so a change is read against the code before it."""

    def cell(value: object, digits: int) -> str:
        return "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    if base is None:
        lines = [f"| {title} | value |", "|---|---:|"]
    else:
        lines = [f"| {title} | this code | {base_name} | ratio |", "|---|---:|---:|---:|"]
    for label, key, digits in figures:
        a = now.get(key)
        if base is None:
            lines.append(f"| {label} | {cell(a, digits)} |")
            continue
        b = base.get(key)
        ratio = f"{b / a:.1f}×" if isinstance(a, float) and isinstance(b, float) and a > 0 else ""
        lines.append(f"| {label} | {cell(a, digits)} | {cell(b, digits)} | {ratio} |")
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
