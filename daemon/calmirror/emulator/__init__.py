"""A loopback emulator of Apple's iCloud CalDAV service (see ICLOUD.md).

A real Radicale store behind a WSGI layer that answers like caldav.icloud.com:
discovery across a front and a partition host, Basic auth with app-specific
passwords, opaque sync tokens, short ETags, iCloud's refusals, and scripted faults.
Objects are kept exactly as sent, also those Radicale itself refuses (see `objects`).
"""

from calmirror.emulator.emulator import Emulator
from calmirror.emulator.faults import Faults
from calmirror.emulator.server import LoggedRequest

__all__ = ["Emulator", "Faults", "LoggedRequest"]
