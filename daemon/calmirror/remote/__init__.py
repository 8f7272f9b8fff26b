"""The only code that talks to iCloud (or any CalDAV server standing in for it).

`ICloudClient` speaks raw CalDAV over one keep-alive `requests.Session` and turns every
failure into a typed `calmirror.errors.RemoteError`; the rest of calmirror receives the
plain dataclasses below and never sees HTTP or XML.

`client` (`ICloudClient`), `http` (the session and where HTTP errors become typed ones),
`discovery` (principal, then calendar home), `calendars` (the calendars in a home),
`changes` (sync-collection), `multiget`, `multistatus` and `xml` (bodies and a parser that
refuses hostile XML), `hrefs` (one spelling for every URL), `models`, and `feed`
(subscribed ICS feeds: one bounded conditional GET).

The names below load on first use, so a command that only checks a URL (`remote.hrefs`)
does not pay for requests, lxml and icalendar.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from calmirror.remote.client import ICloudClient
    from calmirror.remote.hrefs import canonical_url
    from calmirror.remote.models import Account, FetchedItem, SyncChanges

_HOME = {
    "ICloudClient": "client",
    "canonical_url": "hrefs",
    "Account": "models",
    "FetchedItem": "models",
    "SyncChanges": "models",
}


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = ["Account", "FetchedItem", "ICloudClient", "SyncChanges", "canonical_url"]
