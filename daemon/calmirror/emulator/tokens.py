"""Translations between Radicale's identifiers and the shapes iCloud shows clients.

Radicale tags items with a quoted sha256 hex ETag and collections with a
`http://radicale.org/ns/sync/<hex>` sync token. iCloud shows short quoted ETags and an
opaque base64 token that doubles as the ctag. Keeping the translation pure and in
one place lets the layer rewrite responses with regexes and decode tokens clients
send back without holding any per-token state.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading

RADICALE_TOKEN_PREFIX = "http://radicale.org/ns/sync/"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_SHORT_LEN = 8
# A marker byte plus a two-byte epoch before the 32-byte hash: 35 bytes, so every
# token ends in '=' and most contain '+' or '/', the way iCloud's do.
_TOKEN_MAGIC = b"\x1f"


def short_etag(long_etag: str) -> str:
    """Shrink Radicale's `"<sha256>"` ETag to an iCloud-like `"kvj2ru1d"`.

    Deterministic, so every place that sees the long form (PUT, GET, PROPFIND,
    REPORT) produces the same short form without a lookup table.
    """
    hexpart = long_etag.strip().removeprefix("W/").strip('"')
    if not _HEX64.fullmatch(hexpart):
        return long_etag
    return '"' + _base36(int(hexpart[:20], 16))[:_SHORT_LEN] + '"'


def _base36(number: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 36)
        digits.append(_ALPHABET[rest])
    text = "".join(reversed(digits)) or "0"
    return text.rjust(_SHORT_LEN, "0")


def etag_matches(header_value: str, long_etag: str) -> bool:
    """True when an If-Match value names the item's current ETag (short or long form)."""
    wanted = {short_etag(long_etag).strip('"'), long_etag.strip('"')}
    return any(candidate.strip().removeprefix("W/").strip('"') in wanted for candidate in header_value.split(","))


class TokenCodec:
    """Encodes Radicale sync tokens as opaque base64 and back, with an epoch.

    Bumping the epoch (``invalidate``) makes every token issued before unusable,
    which is how the emulator simulates iCloud expiring sync tokens.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._epoch = 0
        self.invalid_mode = "403"
        # False plays a CalDAV server without RFC 6578: sync-collection is refused.
        self.sync_collection = True

    def invalidate(self, mode: str) -> None:
        if mode not in ("403", "full"):
            raise ValueError(f"mode must be '403' or 'full', not {mode!r}")
        with self._lock:
            self._epoch = (self._epoch + 1) % 65536
            self.invalid_mode = mode

    def encode(self, radicale_token: str) -> str:
        hexpart = radicale_token.removeprefix(RADICALE_TOKEN_PREFIX)
        raw = _TOKEN_MAGIC + self._epoch.to_bytes(2, "big") + bytes.fromhex(hexpart)
        return base64.b64encode(raw).decode("ascii")

    def encode_hex(self, hexpart: str) -> str:
        return self.encode(RADICALE_TOKEN_PREFIX + hexpart)

    def decode(self, token: str) -> str | None:
        """The Radicale token behind ``token``, or None when it is unknown or stale."""
        try:
            raw = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        if len(raw) != 35 or not raw.startswith(_TOKEN_MAGIC):
            return None
        if int.from_bytes(raw[1:3], "big") != self._epoch:
            return None
        return RADICALE_TOKEN_PREFIX + raw[3:].hex()
