"""Pure sync decisions: snapshots in, actions out. No I/O, no clock, no database.

The executors (`mirror.py`, `push.py`) carry the actions out. Keeping the decisions here
means the property tests can run thousands of histories against them in seconds, and
the safety rails (an emptied calendar, a write to a read-only mirror, our own pushed
appointments seen again) are visible in one place.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from calmirror import compat
from calmirror.availability.engine import CalendarParseError, parse_calendar
from calmirror.availability.rid_forms import may_have_midnight_rids
from calmirror.compat_dates import needs_date_fixes
from calmirror.compat_floating import binds, has_floating_times
from calmirror.compat_overrides import may_have_override_rules, may_repeat_overrides
from calmirror.compat_scales import needs_scale_fixes
from calmirror.compat_series import needs_series_fixes
from calmirror.compat_zones import has_empty_zones, has_tzid_parameters
from calmirror.errors import BadItem
from calmirror.hrefs import path_of
from calmirror.model import Appointment, MirrorEntry, PushKind
from calmirror.transform import (
    extract_uid,
    has_marker,
    icloud_body,
    is_cancelled,
    local_name,
    mirror_copy,
    remote_name,
)

# --- mirror ------------------------------------------------------------------------------

log = logging.getLogger("calmirror.mirror")


@dataclass(frozen=True)
class MirrorPolicy:
    source: str  # the iCloud calendar id, written into the marker
    details: str = "full"
    me: frozenset[str] = frozenset()
    exclude_uids: frozenset[str] = frozenset()  # our own appointments: never mirrored back
    exclude_hrefs: frozenset[str] = frozenset()
    skipped_hrefs: frozenset[str] = frozenset()  # bad items known to exist remotely (not mirrored)
    accept_empty: bool = False
    horizon: dt.date | None = None  # of compatible copies (`compat.horizon_for`); None: exact copies only
    max_occurrences: int = 10_000  # Radicale's occurrence limit, which compatible copies stay under
    floating_zone: str = ""  # the configured zone: compatible copies bind floating times to it


@dataclass(frozen=True)
class MirrorPlan:
    writes: list[tuple[str, str]] = field(default_factory=list)  # (local href, body)
    local_deletes: list[str] = field(default_factory=list)
    entries: list[MirrorEntry] = field(default_factory=list)  # new or changed map rows
    gone: list[str] = field(default_factory=list)  # remote hrefs to drop from the map
    skipped: dict[str, str] = field(default_factory=dict)  # remote href -> reason
    unskipped: list[str] = field(default_factory=list)  # skipped items that are gone remotely
    held_empty: bool = False  # safety rail: deletions withheld, token must not advance

    @property
    def changed(self) -> bool:
        return bool(self.writes or self.local_deletes or self.gone or self.skipped)


def _any_left(removed: set[str], excluded: frozenset[str], *hrefs: Iterable[str]) -> bool:
    """Whether any href survives; stops at the first, so a batch of a big calendar stays O(batch).
    Callers name what they hold in memory before what may be read from the database."""
    return any(href not in removed and href not in excluded for href in itertools.chain(*hrefs))


def looks_like_full_listing(
    known: Mapping[str, MirrorEntry], changed: Mapping[str, str], deleted: Sequence[str]
) -> bool:
    """Some servers answer a stale token with a full listing instead of 403 (ICLOUD.md #11).

    A true incremental answer never lists items whose ETag we already hold; when at least
    half of what we know comes back unchanged, it is a full listing, and whatever it does
    not name is gone.
    """
    if deleted or len(known) < 2:
        return False
    unchanged = sum(1 for href, etag in changed.items() if href in known and known[href].etag == etag)
    return unchanged * 2 >= len(known)


def hrefs_to_fetch(
    known: Mapping[str, MirrorEntry],
    changed: Mapping[str, str],
    policy: MirrorPolicy,
    skipped_etags: Mapping[str, str] | None = None,
) -> list[str]:
    """Changed hrefs whose ETag differs from what the mirror already holds."""
    skipped_etags = skipped_etags or {}
    return [
        href
        for href, etag in changed.items()
        if href not in policy.exclude_hrefs
        and (href not in known or known[href].etag != etag)
        and skipped_etags.get(href) != etag
    ]


def plan_removals(
    known: Mapping[str, MirrorEntry],
    *,
    changed: Mapping[str, str],
    deleted: Sequence[str],
    full: bool,
    policy: MirrorPolicy,
) -> MirrorPlan:
    """What one remote listing removes from the mirror (or `held_empty`: the safety rail).

    `changed` is href -> etag from the listing; on a full listing everything known but not
    listed is gone.
    """
    return _plan(known, changed, deleted, full, {}, (), policy)


def plan_batch(
    known: Mapping[str, MirrorEntry],
    *,
    listed: Mapping[str, str],
    fetched: Mapping[str, tuple[str, str]],
    missing: Sequence[str],
    policy: MirrorPolicy,
) -> MirrorPlan:
    """How the mirror follows one fetched batch: `fetched` is href -> (etag, body) of what
    was downloaded, `missing` the hrefs that vanished between listing and fetch."""
    return _plan(known, listed, (), False, fetched, missing, policy)


def _plan(
    known: Mapping[str, MirrorEntry],
    changed: Mapping[str, str],
    deleted: Sequence[str],
    full: bool,
    fetched: Mapping[str, tuple[str, str]],
    missing: Sequence[str],
    policy: MirrorPolicy,
) -> MirrorPlan:
    plan = MirrorPlan()
    named_gone = set(deleted) | set(missing)
    gone = {href for href in named_gone if href in known}
    if full:
        gone.update(href for href in known if href not in changed)

    skipped_gone = (policy.skipped_hrefs & named_gone) | (
        {href for href in policy.skipped_hrefs if href not in changed} if full else set()
    )
    removed = gone | skipped_gone | set(missing)
    if (
        known
        and not policy.accept_empty
        and not _any_left(removed, policy.exclude_hrefs, changed, known, policy.skipped_hrefs)
    ):
        return MirrorPlan(held_empty=True)
    plan.unskipped.extend(sorted(skipped_gone))

    for href in sorted(gone):
        plan.local_deletes.append(known[href].local_href)
        plan.gone.append(href)

    for href, (etag, body) in sorted(fetched.items()):
        if href in gone or href in policy.exclude_hrefs:
            continue
        try:
            uid, copy, made = mirror_write(body, href, policy)
        except BadItem as bad:
            _no_copy(plan, known, href, body, bad.reason, policy)
            continue
        if uid in policy.exclude_uids:
            if href in known:
                plan.local_deletes.append(known[href].local_href)
                plan.gone.append(href)
            continue
        local_href = known[href].local_href if href in known else local_name(href)
        plan.writes.append((local_href, copy))
        entry = MirrorEntry(href=href, etag=etag, uid=uid, local_href=local_href, body=body)
        if made is not None:
            entry = _compatible_entry(entry, made)
        plan.entries.append(entry)
    return plan


def _no_copy(
    plan: MirrorPlan,
    known: Mapping[str, MirrorEntry],
    href: str,
    body: str,
    reason: str,
    policy: MirrorPolicy,
) -> None:
    """An object with no local copy keeps its busy time: withheld with iCloud's exact text
    whenever the engine can read it, and unreadable (skipped, its busy time unknown) only
    when the text is not iCalendar at all. One holding no event at all has no busy time to
    keep and is skipped with its reason, as before."""
    old = known.get(href)
    if old is not None and old.in_mirror:  # a once-good item turned bad: do not keep a stale copy
        plan.local_deletes.append(old.local_href)
    uid = extract_uid(body) or ""
    unreadable = why_unreadable(body)
    if unreadable is not None or uid in policy.exclude_uids or "BEGIN:VEVENT" not in body.upper():
        if unreadable is not None:
            plan.skipped[href] = reason if unreadable in reason else f"{reason} ({unreadable})"
        elif uid not in policy.exclude_uids:  # no event in it (a to-do): no busy time to keep
            plan.skipped[href] = reason
        if old is not None:
            plan.gone.append(href)
        return
    # No ETag: the next full listing fetches it again, as for an object Radicale refused.
    local_href = old.local_href if old is not None else local_name(href)
    plan.entries.append(MirrorEntry(href, "", uid, local_href, "withheld", reason, body))


def why_unreadable(text: str) -> str | None:
    """Why the engine cannot read an object, or None when its busy time counts (only an
    object that is not iCalendar at all is unreadable)."""
    try:
        parse_calendar(text)
    except CalendarParseError as error:
        return str(error)
    return None


def mirror_write(
    body: str, href: str, policy: MirrorPolicy, *, refused: str | None = None
) -> tuple[str, str, compat.Compatible | None]:
    """(uid, local text, the compatible copy it was made from or None) of one remote object.

    Without `refused` the exact text is used unless it defines a custom time zone (which
    Radicale would take but place by another object's rules), names a Windows zone it does
    not define (which Radicale cannot place), or holds a series readers disagree on
    (`compat_series`): a cheap text look for 10,000 ordinary events.
    With `refused` (Radicale's reason for the exact text), the compatible
    copy or BadItem. Privacy and the marker apply to either, in `mirror_copy`.
    """
    made = None
    if policy.horizon is not None and (
        refused is not None
        or compat.has_custom_zones(body)
        or compat.has_unstorable_text(body)
        or compat.has_undefined_windows_zones(body)
        or needs_series_fixes(body)
        or needs_scale_fixes(body)
        or needs_date_fixes(body)
        or has_empty_zones(body)
        or has_tzid_parameters(body)
        or may_have_midnight_rids(body)
        or may_repeat_overrides(body)
        or may_have_override_rules(body)
        or (binds(policy.floating_zone) and has_floating_times(body))
    ):
        made = compat.compatible_copy(
            body,
            href,
            policy.horizon,
            policy.max_occurrences,
            refused=refused or "",
            floating_zone=policy.floating_zone,
        )
    if refused is not None and made is None:
        raise BadItem(href, refused)
    try:
        uid, copy = mirror_copy(made.text if made else body, href, policy.source, policy.details, policy.me)
    except BadItem:
        raise
    except Exception as exc:  # a fault on one object must not stop its calendar's pass
        log.warning("%s could not be copied into the mirror", href, exc_info=True)
        raise BadItem(href, f"could not be copied ({type(exc).__name__})") from exc
    return uid, copy, made


def _compatible_entry(entry: MirrorEntry, made: compat.Compatible) -> MirrorEntry:
    return MirrorEntry(
        entry.href, entry.etag, entry.uid, entry.local_href, "compatible", made.reason, entry.body, made.horizon
    )


def fallback_entry(entry: MirrorEntry, policy: MirrorPolicy, refused: str) -> tuple[MirrorEntry, str] | None:
    """The entry and local text of the compatible copy, for an exact text Radicale refused
    (`refused`); None when there is none (the object is then withheld, its busy time kept)."""
    if entry.body is None or entry.copy != "exact":
        return None
    try:
        _, copy, made = mirror_write(entry.body, entry.href, policy, refused=refused)
    except BadItem:
        return None
    return (_compatible_entry(entry, made), copy) if made is not None else None


# --- push --------------------------------------------------------------------------------


LINKED_GONE = "the linked iCloud calendar no longer exists; link another with `calmirror link CALENDAR`"


@dataclass(frozen=True)
class PushAction:
    kind: PushKind
    href: str | None = None
    body: str | None = None
    etag: str | None = None
    reason: str = ""
    forget_after: bool = False  # drop the appointment row after the remote delete


def plan_push(
    uid: str,
    local_body: str | None,
    local_etag: str | None,
    appt: Appointment | None,
    linked_url: str | None,
    cancel_mode: str,
    local_href: str = "",
    calendars: frozenset[str] | None = None,
    linked_missing: bool = False,
) -> PushAction:
    """What the linked iCloud calendar needs so it matches one local appointment.

    Appointments already pushed keep living where they were created (their stored href),
    even after the linked calendar changes; only new ones go to the new linked calendar.
    `calendars`, when known, are the URLs of the calendars iCloud has now: an appointment
    whose calendar was deleted lost its iCloud copy with it, so it is created afresh in
    the linked calendar, or held (with the reason) while the linked one is gone too.
    `linked_missing`: a calendar is linked but iCloud no longer lists it (`linked_url` is
    then None); new appointments wait for another to be linked.
    """
    remote = appt.remote_href if appt else None
    remote_etag = appt.remote_etag if appt else None
    if remote and calendars is not None and not _listed(_calendar_of(appt, remote), calendars):
        remote = remote_etag = None

    if local_body is None:  # deleted locally
        if not remote:
            return PushAction("forget")
        if cancel_mode == "mark-cancelled" and appt and appt.pushed_etag:
            return PushAction("cancel", href=remote, etag=remote_etag, forget_after=True)
        return PushAction("delete", href=remote, etag=remote_etag, forget_after=True)

    if has_marker(local_body):
        return PushAction("refuse", reason="carries the mirror marker; mirrored events are never pushed")
    if appt and appt.pushed_etag == local_etag and remote:
        return PushAction("nothing")

    cancelled = is_cancelled(local_body)
    if cancelled and cancel_mode == "delete":
        if remote:
            return PushAction("delete", href=remote, etag=remote_etag, forget_after=False)
        return PushAction("nothing", reason="cancelled before it was ever pushed")

    try:
        body = icloud_body(local_body, local_href)
    except BadItem as bad:
        return PushAction("refuse", reason=bad.reason)
    if remote and appt is not None and appt.create_unconfirmed:
        return PushAction("create", href=remote, body=body)  # again, at the same href (412: overwrite)
    if remote:
        return PushAction("update", href=remote, etag=remote_etag, body=body)
    if not linked_url and linked_missing:
        return PushAction("hold", reason=LINKED_GONE)
    if not linked_url:
        return PushAction("refuse", reason="no linked iCloud calendar; run `calmirror link CALENDAR`")
    if calendars is not None and not _listed(linked_url, calendars):
        return PushAction("hold", reason=LINKED_GONE)
    return PushAction("create", href=linked_url.rstrip("/") + "/" + remote_name(uid), body=body)


def _calendar_of(appt: Appointment | None, remote_href: str) -> str:
    """The calendar an appointment was pushed to: recorded, or else its href's folder."""
    recorded = appt.remote_calendar if appt else None
    return recorded or remote_href.rsplit("/", 1)[0] + "/"


def _listed(url: str, calendars: frozenset[str]) -> bool:
    """Whether the calendar at `url` is among `calendars`, by path: hosts differ in form
    (the partition host, with or without its port) but a calendar's path does not."""
    return _path(url) in {_path(calendar) for calendar in calendars}


def _path(url: str) -> str:
    return path_of(url).rstrip("/") + "/"
