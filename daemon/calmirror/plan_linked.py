"""Pure decisions about pushed appointments that iCloud changed: snapshots in, a step out.

A pushed appointment has a last agreed version: the local text whose hash is `pushed_etag`
and the iCloud resource whose ETag is `remote_etag`. When a mirror pass sees iCloud hold
another version (or none), `plan_linked` says what happens to it. It never lets one side's
change vanish without a trace: either iCloud's change is brought into `appointments/`
(two-way, local unchanged), or it stays recorded as differing (busy time counts it and
`status` lists it) until a push settles it, keeping the version it overrides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from calmirror.digest import content_hash
from calmirror.errors import BadItem
from calmirror.model import Appointment, LinkedMode, RemoteVersion
from calmirror.transform import mark_cancelled

#: `ignore`: the appointment is gone or lives elsewhere now; `agreed`: iCloud holds what we
#: pushed; `keep`: stays recorded as differing; `apply`: write `text` into appointments/;
#: `finish`: `text` is already there (written before a crash), record it.
LinkedStep = Literal["ignore", "agreed", "keep", "apply", "finish"]


@dataclass(frozen=True)
class LinkedDecision:
    step: LinkedStep
    text: str | None = None
    reason: str = ""


def plan_linked(
    mode: LinkedMode,
    version: RemoteVersion,
    appt: Appointment | None,
    local_body: str | None,
    pending: bool,
) -> LinkedDecision:
    """What to do with iCloud's `version` of a pushed appointment.

    `local_body` is the appointment's text in `appointments/` now (None: deleted there);
    `pending` says a local change waits in the outbox. Both sides changed when the local
    text is not the one last pushed: then the local change wins in iCloud at its push, and
    the push keeps iCloud's version as a conflict (`push.py`); until then both count.
    """
    if appt is None or appt.remote_href != version.href:
        return LinkedDecision("ignore", reason="no longer pushed there")
    if version.body is not None and version.etag == appt.remote_etag:
        return LinkedDecision("agreed")
    local_hash = content_hash(local_body) if local_body is not None else None
    if version.applying is not None:  # a crash cut the write short
        if local_hash == content_hash(version.applying):
            return LinkedDecision("finish", text=version.applying)
        if local_hash is not None and local_hash == appt.local_etag and not pending:
            return LinkedDecision("apply", text=version.applying)
        return LinkedDecision("keep", reason="changed locally while iCloud's change was brought in")
    if mode == "one-way":
        return LinkedDecision("keep", reason="one-way: the local version stays the truth")
    if pending or local_body is None or local_hash != appt.pushed_etag:
        return LinkedDecision("keep", reason="changed on both sides; the local change is pushed")
    if version.body is None:
        try:
            return LinkedDecision("apply", text=mark_cancelled(local_body, appt.local_href or ""))
        except BadItem as bad:
            return LinkedDecision("keep", reason=f"cannot mark it cancelled: {bad.reason}")
    return LinkedDecision("apply", text=version.body)


def pushed_here(appointments: Iterable[Appointment], calendar_url: str) -> dict[str, Appointment]:
    """remote href -> appointment, for the appointments pushed to the calendar at `calendar_url`
    (compared by path: hosts differ in form, a calendar's path does not)."""
    here = folder_of(calendar_url)
    found: dict[str, Appointment] = {}
    for appt in appointments:
        if appt.remote_href and not appt.create_unconfirmed:  # its push settles it
            calendar = appt.remote_calendar or appt.remote_href.rsplit("/", 1)[0] + "/"
            if folder_of(calendar) == here:
                found[appt.remote_href] = appt
    return found


def seen_changes(
    pushed: Mapping[str, Appointment],
    listed: Mapping[str, str],
    deleted: Iterable[str],
    full: bool,
    known: Mapping[str, RemoteVersion],
) -> tuple[list[str], list[str], list[str]]:
    """(hrefs to fetch, hrefs deleted in iCloud, hrefs to confirm) among the pushed
    appointments of one listing.

    Fetched: listed with an ETag that is neither the one we pushed nor one already recorded.
    Deleted: named gone by the server. To confirm: not in a full listing. iCloud lists a
    resource written seconds ago late (ICLOUD.md #17), so an appointment pushed just before
    a first sync or a token reset is missing from its listing: absence is believed only
    when fetching the href answers 404. A full listing that names nothing at all is not
    taken as anything deleted (the empty-calendar rail of the mirror).
    """
    fetch = []
    for href, etag in listed.items():
        appt = pushed.get(href)
        if appt is None or etag == appt.remote_etag:
            continue
        recorded = known.get(appt.uid)
        if recorded is None or recorded.etag != etag or recorded.deleted:
            fetch.append(href)
    gone = {href for href in deleted if href in pushed}
    absent = {href for href in pushed if href not in listed and href not in gone} if full and listed else set()

    def news(href: str) -> bool:  # a deletion already recorded is not news
        return not ((v := known.get(pushed[href].uid)) and v.deleted)

    return sorted(fetch), sorted(filter(news, gone)), sorted(filter(news, absent))


def folder_of(url: str) -> str:
    """A calendar's identity across host forms: the path of its folder."""
    return urlsplit(url).path.rstrip("/") + "/"
