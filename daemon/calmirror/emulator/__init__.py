"""A loopback emulator of Apple's iCloud CalDAV service (see ICLOUD.md).

A real Radicale store behind a WSGI layer that answers like caldav.icloud.com:
discovery across a front and a partition host, Basic auth with app-specific
passwords, opaque sync tokens, short ETags, iCloud's refusals, and scripted faults.
Objects are kept exactly as sent, also those Radicale itself refuses (see `objects`).

`emulator` (the `Emulator` itself), `server` (the front and partition listeners), `layer`
(the WSGI layer), `discovery`, `reports` (REPORT requests), `writes` (PUT and DELETE),
`rewrite` (Radicale's answers into iCloud's shapes), `tokens`, `changelog` (sync tokens
as positions), `objects`, `store` and `radicale_setup` (its Radicale store), `seed` (the
account it starts with), `faults` (scripted misbehaviour), `messages` and `xmlbits`.
"""

from calmirror.emulator.emulator import Emulator
from calmirror.emulator.faults import Faults
from calmirror.emulator.server import LoggedRequest

__all__ = ["Emulator", "Faults", "LoggedRequest"]
