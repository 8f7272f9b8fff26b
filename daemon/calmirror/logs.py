"""Logging: one line per event that matters, journald-aware, and secret-proof.

Under journald (JOURNAL_STREAM set) lines carry syslog priority prefixes like `<4>` and no
timestamps (the journal adds its own). Every secret the process learns is registered with
`redact()` and replaced by *** in any record, whatever code logged it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

_secrets: set[str] = set()
_lock = threading.Lock()
PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def redact(secret: str | None) -> None:
    if secret and len(secret) >= 4:
        with _lock:
            _secrets.add(secret)


def scrub(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


class _Scrubbing(logging.Formatter):
    def __init__(self, journal: bool) -> None:
        fmt = "%(message)s" if journal else "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
        super().__init__(fmt, datefmt="%Y-%m-%d %H:%M:%S")
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = scrub(super().format(record))
        if self.journal:
            prefix = f"<{PRIORITY.get(record.levelno, 6)}>"
            return "\n".join(prefix + line for line in text.splitlines())
        return text


class _AsCommand(logging.Formatter):
    """A command's own warnings, as the command line writes warnings (`warning: …`): `calmirror
    sync` put daemon-style lines (a timestamp, the level, the logger's name) among its output."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(f"{record.levelname.lower()}: {record.getMessage()}")


class _FromLibraries(logging.Filter):
    """Records sent to the root logger by libraries (a bare `logging.error`): named after the
    library and shown as debug detail, as they add nothing to the reason calmirror gives for
    the same object. vobject's own are sent to the `vobject` logger before they get here
    (`local/vobject_logging.py`); this catches those of a library that does the same."""

    def __init__(self) -> None:
        super().__init__()
        self.verbose = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "root":
            return True
        record.name = _library_of(record.pathname)
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return self.verbose


def _library_of(pathname: str) -> str:
    parts = pathname.replace("\\", "/").split("/")
    if "site-packages" in parts and parts.index("site-packages") + 1 < len(parts):
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    return "library"


_FROM_LIBRARIES = _FromLibraries()

# `extra` of a failure that is also in what the code returns (a calendar's or a feed's
# report): the daemon's journal needs the record, a command prints the report itself.
REPORTED = {"reported": True}


class _Summarised(logging.Filter):
    """Drops the records marked `REPORTED`: `calmirror sync` printed each failed calendar
    twice, once in its summary and once as a timestamped ERROR line on stderr."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "reported", False)


def setup(level: str = "info", verbose: bool = False, *, summarised: bool = False) -> None:
    """`summarised`: the process prints reports of its own (a command, not the daemon), so
    records marked `REPORTED` are left out unless `verbose`."""
    journal = bool(os.environ.get("JOURNAL_STREAM"))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Scrubbing(journal))
    if summarised and not verbose:
        handler.addFilter(_Summarised())
        if not journal:
            handler.setFormatter(_AsCommand())
    root = logging.getLogger("calmirror")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.DEBUG if verbose else getattr(logging, level.upper(), logging.INFO))
    radicale = logging.getLogger("radicale")
    radicale.handlers[:] = [handler]
    radicale.propagate = False
    radicale.setLevel(logging.INFO if verbose else logging.ERROR)
    top = logging.getLogger()
    top.handlers[:] = [handler]
    _FROM_LIBRARIES.verbose = verbose
    if _FROM_LIBRARIES not in top.filters:
        top.addFilter(_FROM_LIBRARIES)
    for noisy in ("urllib3", "requests"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # watchdog logs an error when an observer stops while an event is in flight: harmless noise.
    logging.getLogger("watchdog").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
