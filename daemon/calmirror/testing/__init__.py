"""Builders shared by the test suite and the benchmarks, so neither tree imports the other.

Test support ships in the package for the same reason the iCloud emulator does: the
benchmarks and the tests must feed calmirror the same data, accounts and homes, and both
run from a plain install. This module and `ical` import nothing heavy (the availability
benchmark reports its own peak RSS); `homes` pulls in the daemon. `corpus` is the
benchmark corpus, `feed_server` a small ICS publisher on loopback.
"""

from __future__ import annotations

#: The one test account: the emulator is started with it, homes connect with it.
APPLE_ID = "me@example.com"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
#: The one login for a local server a test starts itself (a daemon makes its own).
LOCAL_USER = "calmirror"
LOCAL_PASSWORD = "local-secret-1"
