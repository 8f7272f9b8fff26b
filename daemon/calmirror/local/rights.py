"""Radicale rights plugin: who may do what in the local store.

Passed to Radicale as a class object (`[rights] type`), so no module name can be
misspelled into a silent fallback. Only the authenticated user's own collections are
reachable; the mirrors and `busy/` are read-only because a client write would be lost on
the next mirror pass (or busy refresh) and must never be pushed anywhere.
"""

from __future__ import annotations

from radicale import pathutils, rights

from calmirror.local import layout


def collection_rights(name: str) -> str:
    """Rights letters for one calendar of the user (`r`/`w` apply to calendars)."""
    if name in layout.WRITABLE:
        return "rw"
    if layout.is_read_only(name):
        return "r"
    return ""


class Rights(rights.BaseRights):
    def authorization(self, user: str, user_groups: set[str], path: str) -> str:
        if not user:
            return ""
        stripped = pathutils.strip_path(pathutils.sanitize_path(path))
        if not stripped:
            return "R"  # the root, so clients can discover their principal
        parts = stripped.split("/")
        if parts[0] != user:
            return ""
        if len(parts) == 1:
            return "R"  # the principal: readable, but clients cannot create calendars
        if len(parts) == 2:
            # An unknown name is readable so that it answers 404 (it does not exist) at once
            # rather than 403 after Radicale's deliberate delay; nothing can be created there.
            return collection_rights(parts[1]) or "r"
        return ""  # items inherit their collection's rights
