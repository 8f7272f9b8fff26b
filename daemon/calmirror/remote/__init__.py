"""The only code that talks to iCloud (or any CalDAV server standing in for it).

`ICloudClient` speaks raw CalDAV over one keep-alive `requests.Session` and turns every
failure into a typed `calmirror.errors.RemoteError`; the rest of calmirror receives the
plain dataclasses below and never sees HTTP or XML.
"""

from calmirror.remote.client import ICloudClient
from calmirror.remote.hrefs import canonical_url
from calmirror.remote.models import Account, FetchedItem, SyncChanges

__all__ = ["Account", "FetchedItem", "ICloudClient", "SyncChanges", "canonical_url"]
