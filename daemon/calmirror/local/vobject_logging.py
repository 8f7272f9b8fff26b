"""vobject's bare `logging.error(...)` calls, sent to a logger of its own.

vobject reports an unknown TZID (and a few other oddities) with the `logging` module's own
`error`, which writes to the root logger and, in a process whose root logger has no handler
yet, first installs one on stderr (`basicConfig`): one check of an odd object then printed
`ERROR:root:'Mars/Olympus'` and left every later record of the process printed twice. The
reason calmirror gives for the same object says more, so these go to the `vobject` logger as
debug detail (shown with `--verbose`), and the root logger never sees them.
"""

from __future__ import annotations

import logging

import vobject.icalendar

_LOGGER = logging.getLogger("vobject")


class _RoutedLogging:
    """Stands in for the `logging` module inside `vobject.icalendar`; anything but `error`
    is the real module's."""

    def error(self, msg: object, *args: object) -> None:
        _LOGGER.debug(msg, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(logging, name)


def install() -> None:
    """Idempotent; runs with `vobject_speed.install()`, before anything parses an object."""
    vobject.icalendar.logging = _RoutedLogging()
