"""Regex rewriting of Radicale's answers into iCloud's shapes.

Responses over 10,000-item calendars run to megabytes, so they are patched as bytes
with compiled patterns instead of being parsed and rebuilt. The patterns rely on how
Radicale serialises (DAV: as the default namespace, `CS:` for calendarserver.org).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from calmirror.emulator.objects import open_calendar_data
from calmirror.emulator.tokens import TokenCodec, short_etag

_GETETAG = re.compile(rb'<getetag>"([0-9a-f]{64})"</getetag>')
_SYNC_TOKEN = re.compile(rb"<sync-token>http://radicale\.org/ns/sync/([0-9a-f]{64})</sync-token>")
_PROP_SYNC_TOKEN = re.compile(rb"<sync-token>([^<]*)</sync-token>|<sync-token ?/>")
_MULTISTATUS_OPEN = re.compile(rb"<multistatus[^>]*>")
_RESPONSE = re.compile(rb"<response>\s*<href>([^<]*)</href>.*?</response>", re.DOTALL)
_CTAG_OPEN = b'<getctag xmlns="http://calendarserver.org/ns/">'


class Rewriter:
    """Rewrites for one account: its principal href, its token epoch."""

    def __init__(self, dsid: str, tokens: TokenCodec) -> None:
        self._tokens = tokens
        self._radicale_principal = f"<href>/{dsid}/</href>".encode()
        self._icloud_principal = f"<href>/{dsid}/principal/</href>".encode()

    def multistatus(self, body: bytes, *, ctag_from_sync_token: bool = False, keep_sync_token: bool = True) -> bytes:
        """Short ETags, opaque tokens, iCloud principal hrefs, exact texts out of envelopes.

        With ``ctag_from_sync_token`` (a PROPFIND that asked for getctag, which the
        layer turned into a sync-token request), each sync-token becomes a getctag
        carrying the same string, and is kept beside it only if it was asked for.
        """
        body = _GETETAG.sub(lambda m: b"<getetag>" + short_etag(m.group(1).decode()).encode() + b"</getetag>", body)
        body = _SYNC_TOKEN.sub(
            lambda m: b"<sync-token>" + self._tokens.encode_hex(m.group(1).decode()).encode() + b"</sync-token>", body
        )
        body = body.replace(self._radicale_principal, self._icloud_principal)
        body = open_calendar_data(body)
        if ctag_from_sync_token:
            body = _PROP_SYNC_TOKEN.sub(lambda m: _ctag(m, keep_sync_token), body)
        return body

    def etag_header(self, value: str) -> str:
        return short_etag(value)


def _ctag(match: re.Match[bytes], keep_sync_token: bool) -> bytes:
    token = match.group(1)
    ctag = _CTAG_OPEN + token + b"</getctag>" if token else b'<getctag xmlns="http://calendarserver.org/ns/"/>'
    return match.group(0) + ctag if keep_sync_token else ctag


def prepend_response(body: bytes, response: bytes) -> bytes:
    """Insert one DAV:response as the first child of the multistatus."""
    match = _MULTISTATUS_OPEN.search(body)
    if match is None:
        return body
    return body[: match.end()] + response + body[match.end() :]


def drop_responses(body: bytes, paths: set[str]) -> bytes:
    """The multistatus without the responses for `paths` (items a lagging listing misses)."""
    if not paths:
        return body

    def keep(match: re.Match[bytes]) -> bytes:
        return b"" if unquote(match.group(1).decode("utf-8", "replace")) in paths else match.group(0)

    return _RESPONSE.sub(keep, body)
