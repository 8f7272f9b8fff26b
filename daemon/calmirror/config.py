"""One frozen settings model, loaded from one TOML file.

Validation happens here, once, so that every other module can trust its settings and a
user with a typo gets a single line naming the file, the key and what is allowed.
Linked and conflict calendars live in the file too (written by `calmirror link` and
`calmirror conflicts`), so a SIGHUP re-reads everything the daemon acts on.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calmirror.errors import ConfigError
from calmirror.model import LINKED_MODES, LinkedMode

ICLOUD_SERVER = "https://caldav.icloud.com/"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

T = TypeVar("T")


@dataclass(frozen=True)
class LocalServerSettings:
    host: str = "127.0.0.1"
    port: int = 5232
    allow_non_loopback: bool = False
    max_body_mb: int = 10


@dataclass(frozen=True)
class CalendarSettings:
    """Per-mirror choices; keyed by the iCloud calendar id in the file."""

    details: str = "full"  # "full" | "busy"
    allday_busy: bool | None = None  # None: follow [availability] allday_busy


@dataclass(frozen=True)
class ICloudSettings:
    server: str = ICLOUD_SERVER
    linked: str | None = None
    conflicts: tuple[str, ...] = ()
    timeout: float = 60.0
    credential: str = "file"  # "file" | "systemd" | "keyring"


@dataclass(frozen=True)
class SyncSettings:
    interval: float = 60.0
    jitter: float = 0.1
    batch: int = 100
    full_listing_hours: float = 24.0  # how often a pass lists every ETag instead of the changes since its token


@dataclass(frozen=True)
class PushSettings:
    cancel: str = "delete"  # "delete" | "mark-cancelled"
    max_backoff: float = 300.0
    linked: LinkedMode = "two-way"  # what a change made in iCloud to a pushed appointment does


@dataclass(frozen=True)
class FeedSettings:
    """Limits for every subscribed ICS feed (each feed's interval and privacy are set with
    `calmirror feeds add`)."""

    max_mb: int = 20  # a feed over this, as sent or once decompressed, is refused whole
    timeout: float = 30.0  # seconds for a whole answer, redirects included


@dataclass(frozen=True)
class AvailabilitySettings:
    timezone: str = "UTC"
    aliases: tuple[str, ...] = ()
    tentative_busy: bool = True
    allday_busy: bool = True
    guard: str = "warn"  # "off" | "warn" | "reject"
    travel_time: bool = True  # Apple's travel time (X-APPLE-TRAVEL-DURATION) blocks time too

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Settings:
    file: Path
    server: LocalServerSettings = field(default_factory=LocalServerSettings)
    icloud: ICloudSettings = field(default_factory=ICloudSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    push: PushSettings = field(default_factory=PushSettings)
    availability: AvailabilitySettings = field(default_factory=AvailabilitySettings)
    feeds: FeedSettings = field(default_factory=FeedSettings)
    calendars: Mapping[str, CalendarSettings] = field(default_factory=dict)
    log_level: str = "info"

    def calendar(self, calendar_id: str) -> CalendarSettings:
        return self.calendars.get(calendar_id, CalendarSettings())


class _Reader:
    """Reads one table, remembering the dotted key path for error messages."""

    def __init__(self, file: Path, table: Mapping[str, Any], prefix: str) -> None:
        self.file, self.table, self.prefix = file, table, prefix
        self.seen: set[str] = set()

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(str(self.file), f"{self.prefix}{key}", problem)

    def get(self, key: str, kind: type[T], default: T, check: Callable[[T], str | None] | None = None) -> T:
        self.seen.add(key)
        if key not in self.table:
            return default
        value = self.table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(key, f"must be {_kind_name(kind)}, not {_describe(value)}")
        problem = check(value) if check else None
        if problem:
            raise self.fail(key, problem)
        return value

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        return self.get(key, str, default, lambda v: None if v in allowed else _one_of(allowed, v))

    def strings(self, key: str) -> tuple[str, ...]:
        values = self.get(key, list, [])
        if not all(isinstance(v, str) and v for v in values):
            raise self.fail(key, "must be a list of non-empty strings")
        return tuple(values)

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.seen)
        if unknown:
            import difflib  # only for a config that does not load

            # A typo (`[availabilty]`, `portt`) is the usual unknown key: name the one meant.
            close = difflib.get_close_matches(unknown[0], sorted(self.seen), n=1, cutoff=0.75)
            meant = f"; did you mean {close[0]!r}?" if close else ""
            raise self.fail(unknown[0], f"unknown key{meant} (allowed: {', '.join(sorted(self.seen))})")


def _kind_name(kind: type) -> str:
    return {
        bool: "true or false",
        int: "a whole number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(kind, kind.__name__)


def _describe(value: object) -> str:
    return {
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _one_of(allowed: tuple[str, ...], value: str) -> str:
    return f"must be one of {', '.join(repr(a) for a in allowed)}, not {value!r}"


def _positive(v: float) -> str | None:
    return None if v > 0 else "must be greater than 0"


def _port(v: int) -> str | None:
    return None if 0 <= v <= 65535 else "must be a port number from 0 to 65535 (0 picks a free one)"


def _http_url(v: str) -> str | None:
    return None if v.startswith(("https://", "http://")) else "must be an http(s):// URL"


def _zone(v: str) -> str | None:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {v!r} (use an IANA name such as 'Europe/Berlin' or 'UTC')"
    return None


def _table(reader: _Reader, key: str) -> _Reader:
    sub = reader.get(key, dict, {})
    return _Reader(reader.file, sub, f"{reader.prefix}{key}.")


def parse(file: Path, data: Mapping[str, Any]) -> Settings:
    """Build Settings from parsed TOML; every key is checked, unknown keys are errors."""
    root = _Reader(file, data, "")
    log_level = root.choice("log_level", "info", ("debug", "info", "warning", "error"))

    r = _table(root, "server")
    server = LocalServerSettings(
        host=r.get("host", str, "127.0.0.1"),
        port=r.get("port", int, 5232, _port),
        allow_non_loopback=r.get("allow_non_loopback", bool, False),
        max_body_mb=r.get("max_body_mb", int, 10, _positive),
    )
    r.finish()
    if server.host not in LOOPBACK_HOSTS and not server.allow_non_loopback:
        raise ConfigError(
            str(file),
            "server.host",
            f"{server.host!r} is not a loopback address; "
            "set server.allow_non_loopback = true to expose the calendar on the network",
        )

    r = _table(root, "icloud")
    icloud = ICloudSettings(
        server=r.get("server", str, ICLOUD_SERVER, _http_url),
        linked=r.get("linked", str, "") or None,
        conflicts=r.strings("conflicts"),
        timeout=r.get("timeout", float, 60.0, _positive),
        credential=r.choice("credential", "file", ("file", "systemd", "keyring")),
    )
    r.finish()

    r = _table(root, "sync")
    sync = SyncSettings(
        interval=r.get("interval", float, 60.0, lambda v: None if v >= 5 else "must be at least 5 (seconds)"),
        jitter=r.get("jitter", float, 0.1, lambda v: None if 0 <= v <= 1 else "must be between 0 and 1"),
        batch=r.get("batch", int, 100, lambda v: None if 1 <= v <= 1000 else "must be from 1 to 1000"),
        full_listing_hours=r.get(
            "full_listing_hours", float, 24.0, lambda v: None if v >= 1 else "must be at least 1 (hours)"
        ),
    )
    r.finish()

    r = _table(root, "push")
    push = PushSettings(
        cancel=r.choice("cancel", "delete", ("delete", "mark-cancelled")),
        max_backoff=r.get("max_backoff", float, 300.0, _positive),
        linked=cast(LinkedMode, r.choice("linked", "two-way", LINKED_MODES)),
    )
    r.finish()

    r = _table(root, "availability")
    availability = AvailabilitySettings(
        timezone=r.get("timezone", str, "UTC", _zone),
        aliases=tuple(a.lower().removeprefix("mailto:") for a in r.strings("aliases")),
        tentative_busy=r.get("tentative_busy", bool, True),
        allday_busy=r.get("allday_busy", bool, True),
        guard=r.choice("guard", "warn", ("off", "warn", "reject")),
        travel_time=r.get("travel_time", bool, True),
    )
    r.finish()

    r = _table(root, "feeds")
    feeds = FeedSettings(
        max_mb=r.get("max_mb", int, 20, _positive),
        timeout=r.get("timeout", float, 30.0, _positive),
    )
    r.finish()

    calendars: dict[str, CalendarSettings] = {}
    cal_root = _table(root, "calendars")
    for cal_id in list(cal_root.table):
        c = _table(cal_root, cal_id)
        calendars[cal_id] = CalendarSettings(
            details=c.choice("details", "full", ("full", "busy")),
            allday_busy=c.get("allday_busy", bool, True) if "allday_busy" in c.table else None,
        )
        c.finish()
    root.finish()
    return Settings(
        file=file,
        server=server,
        icloud=icloud,
        sync=sync,
        push=push,
        availability=availability,
        feeds=feeds,
        calendars=calendars,
        log_level=log_level,
    )


def read_text(file: Path) -> str:
    """The config file's text. A leading UTF-8 byte-order mark is dropped: Windows editors
    (Notepad) write one, and TOML parsers refuse it as a stray character."""
    try:
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(str(file), None, "not UTF-8 text") from None
    except PermissionError:
        raise ConfigError(str(file), None, "cannot be read (permission denied)") from None
    except IsADirectoryError:
        raise ConfigError(str(file), None, "is a folder, not a file") from None


def load(file: Path) -> Settings:
    """Read the config file; a missing file means all defaults."""
    if not file.exists():
        return Settings(file=file)
    text = read_text(file)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(file), None, f"not valid TOML ({exc})") from None
    return parse(file, data)
