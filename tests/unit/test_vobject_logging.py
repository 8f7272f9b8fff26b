"""Checking an odd object must leave no record on the root logger.

vobject reports an unknown TZID with a bare `logging.error`; on the root logger that printed
`ERROR:root:'Mars/Olympus'` in any process whose logging was not set up yet, and installed a
stderr handler that printed every later record of the process again.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from calmirror.local.items import Limits, PreparedItem, prepare_chunk

#: A zone no other test names: vobject remembers a TZID once any object defined it (another
#: test's VTIMEZONE for "Mars/Olympus"), and a known one is never reported.
ZONE = f"Mars/Unknown-{uuid.uuid4().hex[:12]}"
MARS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:mars-1\r\n"
    f"DTSTAMP:20261101T000000Z\r\nDTSTART;TZID={ZONE}:20261201T100000\r\n"
    f"DTEND;TZID={ZONE}:20261201T110000\r\nSUMMARY:On Mars\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[_Kept]:
    """Every record that reaches the root logger's handlers, vobject's debug ones included."""
    handler, root, vobject_logger = _Kept(), logging.getLogger(), logging.getLogger("vobject")
    level = vobject_logger.level
    root.addHandler(handler)
    vobject_logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        vobject_logger.setLevel(level)


def test_a_check_of_an_unknown_tzid_leaves_no_root_record(kept: _Kept) -> None:
    [result] = prepare_chunk([("mars.ics", MARS)], Limits())
    assert isinstance(result, PreparedItem) and result.uid == "mars-1"  # the check itself is unchanged
    assert [r for r in kept.records if r.name == "root"] == []
    routed = [r for r in kept.records if r.name == "vobject"]
    assert routed and all(r.levelno == logging.DEBUG for r in routed)
    assert ZONE in routed[0].getMessage()


def test_a_fresh_process_prints_nothing_and_gains_no_root_handler() -> None:
    """Before `logs.setup` (a check worker, a script using the store), the first bare
    `logging.error` used to install a stderr handler on the root logger."""
    script = (
        "import logging\n"
        "from calmirror.local.items import Limits, prepare_chunk\n"
        "from tests.unit.test_vobject_logging import MARS\n"
        "prepare_chunk([('mars.ics', MARS)], Limits())\n"
        "assert logging.getLogger().handlers == [], logging.getLogger().handlers\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
