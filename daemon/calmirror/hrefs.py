"""Pure helpers on URLs and hrefs, shared by the remote client and the pure planners.

No third-party imports: `plan.py` uses them without pulling in the HTTP stack. The
canonical spelling itself lives with the client (`remote.hrefs`), which re-exports these.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes, urlsplit


def host_of(url: str) -> str:
    """`host:port` as a user would recognise it in an error line."""
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] or url


def path_of(url: str) -> str:
    return urlsplit(url).path or "/"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def as_collection(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def same_resource(one: str, other: str) -> bool:
    """True when two URLs name the same resource, by path, ignoring a trailing slash: hosts
    differ in form (the partition host, with or without its port) but a path does not."""
    return path_of(one).rstrip("/") == path_of(other).rstrip("/")


def last_segment(url: str) -> str:
    """The decoded last path segment: a calendar's id (`home`, a UUID, 64 hex)."""
    segment = path_of(url).rstrip("/").rsplit("/", 1)[-1]
    return unquote_to_bytes(segment).decode("utf-8", errors="replace")
