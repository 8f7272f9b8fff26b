"""Names and paths of the local store, in one place.

The middleware, the rights plugin and the storage API must agree exactly on which
collection is a mirror: if they disagreed, a client could write into a collection the
daemon believes nobody but itself touches.
"""

from __future__ import annotations

import re

from radicale import pathutils

APPOINTMENTS = "appointments"
BLOCKED = "blocked"
#: calmirror's own calendar of every busy block of every source, without titles: read-only.
BUSY = "busy"
MIRROR_PREFIX = "icloud-"

APPOINTMENTS_DISPLAYNAME = "Appointments"
BLOCKED_DISPLAYNAME = "Blocked slots"
BUSY_DISPLAYNAME = "Busy (all calendars)"

#: The collections a client may write into; everything else of the user is read-only.
WRITABLE = frozenset({APPOINTMENTS, BLOCKED})


def mirror_name(slug: str) -> str:
    """The collection name of the mirror with this slug (`work` -> `icloud-work`)."""
    return MIRROR_PREFIX + slug


def is_mirror(name: str) -> bool:
    return name.startswith(MIRROR_PREFIX) and len(name) > len(MIRROR_PREFIX)


def is_read_only(name: str) -> bool:
    """Calendars only calmirror writes: the mirrors and `busy/`."""
    return name == BUSY or is_mirror(name)


_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def is_valid_slug(slug: str) -> bool:
    """A slug becomes part of one URL path component and one folder name: keep it plain."""
    return bool(_SLUG.fullmatch(slug)) and pathutils.is_safe_filesystem_path_component(mirror_name(slug))


def split_path(raw_path: str) -> list[str]:
    """The components of a request path exactly as Radicale sanitizes it."""
    stripped = pathutils.sanitize_path(raw_path).strip("/")
    return stripped.split("/") if stripped else []


def is_item_path(raw_path: str) -> bool:
    return len(split_path(raw_path)) == 3
