"""Names and paths of the local store, in one place.

The middleware, the rights plugin and the storage API must agree exactly on which
collection is a mirror: if they disagreed, a client could write into a collection the
daemon believes nobody but itself touches.
"""

from __future__ import annotations

import re

APPOINTMENTS = "appointments"
BLOCKED = "blocked"
#: calmirror's own calendar of every busy block of every source, without titles: read-only.
BUSY = "busy"
MIRROR_PREFIX = "icloud-"
#: Subscribed ICS feeds are mirrors too. A feed's calendar id and its mirror slug are both
#: `feed:<name>` (a colon no iCloud slug has), and its collection is `feed-<name>`.
FEED_PREFIX = "feed-"
FEED_ID_PREFIX = "feed:"

APPOINTMENTS_DISPLAYNAME = "Appointments"
BLOCKED_DISPLAYNAME = "Blocked slots"
BUSY_DISPLAYNAME = "Busy (all calendars)"

#: The collections a client may write into; everything else of the user is read-only.
WRITABLE = frozenset({APPOINTMENTS, BLOCKED})


def mirror_name(slug: str) -> str:
    """The collection name of the mirror with this slug (`work` -> `icloud-work`,
    `feed:rota` -> `feed-rota`)."""
    if is_feed_id(slug):
        return FEED_PREFIX + slug.removeprefix(FEED_ID_PREFIX)
    return MIRROR_PREFIX + slug


def feed_id(name: str) -> str:
    """The calendar id (and mirror slug) of the feed with this short name."""
    return FEED_ID_PREFIX + name


def is_feed_id(calendar_id: str) -> bool:
    return calendar_id.startswith(FEED_ID_PREFIX)


def slug_of(name: str) -> str | None:
    """The mirror slug of a mirror's collection name, or None for any other collection."""
    for prefix, slug_prefix in ((MIRROR_PREFIX, ""), (FEED_PREFIX, FEED_ID_PREFIX)):
        if name.startswith(prefix) and len(name) > len(prefix):
            return slug_prefix + name[len(prefix) :]
    return None


def is_mirror(name: str) -> bool:
    """iCloud mirrors and feed mirrors: collections only calmirror writes."""
    return slug_of(name) is not None


def is_read_only(name: str) -> bool:
    """Calendars only calmirror writes: the mirrors and `busy/`."""
    return name == BUSY or is_mirror(name)


_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def is_valid_slug(slug: str) -> bool:
    """A slug becomes part of one URL path component and one folder name: keep it plain."""
    from radicale import pathutils  # here, not at the top: state and the CLI import layout for its names

    plain = slug.removeprefix(FEED_ID_PREFIX)
    return bool(_SLUG.fullmatch(plain)) and pathutils.is_safe_filesystem_path_component(mirror_name(slug))


def split_path(raw_path: str) -> list[str]:
    """The components of a request path exactly as Radicale sanitizes it."""
    from radicale import pathutils  # loaded once the server runs; see is_valid_slug

    stripped = pathutils.sanitize_path(raw_path).strip("/")
    return stripped.split("/") if stripped else []


def is_item_path(raw_path: str) -> bool:
    return len(split_path(raw_path)) == 3
