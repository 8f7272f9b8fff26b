"""The running daemon's local server, asked over loopback HTTP the way any CalDAV client would:
`doctor` checks that it answers, `week` and `availability` ask it for what it keeps parsed,
`demo` writes an appointment into it.

A handful of one-off requests need no session, retries or redirects, so this is the standard
library's urllib: `requests` stays the iCloud client's, and ruff holds it to `remote/`. The
opener never goes through a proxy, whatever the environment says: the address is loopback.
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> object:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.body)


def ask(
    method: str,
    url: str,
    *,
    auth: tuple[str, str] | None = None,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Answer | None:
    """The server's answer, whatever its status; None when nothing answers (no server, a
    refused or cut connection, a timeout, a URL that is not one)."""
    if params:
        url = f"{url}?{urlencode(params)}"
    try:
        request = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            request.add_header("Authorization", f"Basic {token}")
        with _OPENER.open(request, timeout=timeout) as reply:
            return Answer(reply.status, reply.read())
    except urllib.error.HTTPError as error:  # a 4xx/5xx is an answer, not a failure
        with error:
            return Answer(error.code, error.read())
    except (OSError, http.client.HTTPException, ValueError):  # URLError and timeouts are OSErrors
        return None
