"""Texts whose bytes are not all UTF-8, kept exactly.

An old client can leave bytes in iCloud that are not UTF-8 (a Windows-1252 `é` in a SUMMARY,
an encoded lone surrogate). Busy time is computed from iCloud's exact text (DESIGN.md), so
such an object is read with Python's `surrogateescape`: each byte that is not UTF-8 becomes
one lone surrogate (U+DC80-U+DCFF) in the text and the same byte again when it is written
out (`exact_bytes`). Everything that parses the text works as usual; only what leaves the
process as UTF-8 (SQLite's TEXT, Radicale's files, an answer to a client) needs the bytes
back or a readable stand-in (`shown`).
"""

from __future__ import annotations

import re

_ESCAPED = re.compile("[\udc80-\udcff]+")


def from_bytes(raw: bytes) -> str:
    """The text of `raw`, every byte that is not UTF-8 kept as a lone surrogate."""
    return raw.decode("utf-8", "surrogateescape")


def has_raw_bytes(text: str) -> bool:
    return _ESCAPED.search(text) is not None


def exact_bytes(text: str) -> bytes:
    """The bytes `text` was read from (`from_bytes`)."""
    return text.encode("utf-8", "surrogateescape")


def stored(text: str | None) -> str | bytes | None:
    """A text as SQLite can keep it exactly: itself, or its bytes when some are not UTF-8."""
    return exact_bytes(text) if text is not None and has_raw_bytes(text) else text


def loaded(value: str | bytes | None) -> str | None:
    """A text as `stored` kept it."""
    return from_bytes(value) if isinstance(value, bytes) else value


def as_windows_1252(text: str) -> str:
    """The bytes that are not UTF-8 read as Windows-1252, what the old clients that write
    them use (a byte Windows-1252 leaves undefined as Latin-1): readable, valid UTF-8. A run
    of them that is UTF-8 after all (once unfolded) is read as UTF-8."""

    def decoded(match: re.Match[str]) -> str:
        raw = exact_bytes(match.group(0))
        try:  # a UTF-8 sequence a fold cut in two (folding counts octets), joined again by unfolding
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "".join(_cp1252(byte) for byte in raw)

    return _ESCAPED.sub(decoded, text)


def shown(text: str) -> str:
    """`text` for a person (a summary in the week, a JSON answer): valid UTF-8."""
    return as_windows_1252(text) if has_raw_bytes(text) else text


def _cp1252(byte: int) -> str:
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return bytes([byte]).decode("latin-1")
