"""One log line for each request Radicale answers 500, saying what failed.

Radicale reports an internal error of a request in three records: `Exception: <message>`
(or `PermissionError: …`) on its logger (which request, it does not say), the traceback
with the `logging` module's own `error` (the root logger: calmirror shows it only with
--verbose), and then the answer's status (`PROPFIND response status for '/…' … : 500
Internal Server Error`, at CRITICAL; which failure, it does not say). An error escaping its
request handler is logged with the traceback at ERROR whatever the verbosity. A user whose
client got a 500 needs one line to report: the method, the path, the exception and where it
was raised. So the message is kept per thread when it is logged, left out of the log, and
written into the status line; tracebacks stay behind --verbose (the `radicale` logger at
INFO), where every record of Radicale is kept as it was. Secrets are scrubbed from every line by `logs`.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from pathlib import PurePath

_STATUS = re.compile(r"^(?P<method>\S+) response status for (?P<path>'[^']*'|\"[^\"]*\").*: (?P<status>5\d\d .*)$")
_EXCEPTION = ("Exception: %s", "PermissionError: %s")  # the request's error, then its status
_ESCAPED = "An exception occurred during %s request on %r: %s"


def what_failed(error: BaseException) -> str:
    """`TypeError: <message> (at dateutil/rrule.py:284 in between)`: the innermost frame."""
    text = f"{type(error).__name__}: {error}"
    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        last = frames[-1]
        where = PurePath(last.filename)
        text += f" (at {where.parent.name}/{where.name}:{last.lineno} in {last.name})"
    return text


class _OneLine(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self._failed = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        verbose = logging.getLogger("radicale").isEnabledFor(logging.INFO)
        if record.msg in _EXCEPTION:
            error = sys.exc_info()[1]
            self._failed.what = what_failed(error) if error is not None else record.getMessage()
            return verbose
        if record.msg == _ESCAPED and record.exc_info and record.exc_info[1] is not None:
            method, path, _ = record.args if isinstance(record.args, tuple) else ("?", "?", None)
            self._failed.what = what_failed(record.exc_info[1])
            if not verbose:
                record.exc_info, record.exc_text = None, None
            record.msg, record.args = "%s %r failed: %s", (method, path, self._failed.what)
            self._failed.what = None
            return True
        what = getattr(self._failed, "what", None)
        if isinstance(record.msg, str) and " response status for " in record.msg:
            self._failed.what = None
            found = _STATUS.match(record.getMessage())
            if found and what:
                record.msg = "%s %s answered %s: %s%s"
                record.args = (
                    found["method"],
                    found["path"],
                    found["status"],
                    what,
                    "" if verbose else " (--verbose shows the traceback)",
                )
                record.levelno, record.levelname = logging.ERROR, "ERROR"
        return True


_FILTER = _OneLine()


def install() -> None:
    """Idempotent; runs when the local server's module is imported."""
    logger = logging.getLogger("radicale")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
