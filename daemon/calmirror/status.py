"""What `calmirror status` reports, gathered from the state database only, so it works
whether or not the daemon runs and never needs a secret."""

from __future__ import annotations

import time
from typing import Any

from calmirror import control, health
from calmirror.config import Settings
from calmirror.home import Home
from calmirror.hrefs import host_of
from calmirror.local.layout import feed_id, is_feed_id, mirror_name
from calmirror.me import my_addresses
from calmirror.model import PRIMARY_SPELLING, account_of
from calmirror.state import State
from calmirror.state.addresses import shown_addresses


def _age(ts: float | None, now: float) -> float | None:
    return None if not ts else round(now - ts, 1)


def copies_of(state: State, calendar_id: str) -> dict[str, Any]:
    """What the mirror holds for a calendar, honestly: how many objects are exact copies,
    compatible copies and withheld (busy time counted, not shown to clients), by reason,
    and how many are unreadable (not iCalendar at all: their busy time is unknown)."""
    counts = state.copy_counts(calendar_id)
    unreadable = sum(counts["unreadable"].values())
    return {
        "copies": {
            "exact": sum(counts["exact"].values()),
            "compatible": sum(counts["compatible"].values()),
            "withheld": sum(counts["withheld"].values()),
            "unreadable": unreadable,
        },
        "copy_reasons": {kind: counts[kind] for kind in ("compatible", "withheld", "unreadable") if counts[kind]},
        "availability_incomplete": unreadable > 0,
    }


def gather(home: Home, settings: Settings, state: State, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    acct = state.account()
    names = state.calendar_names()  # includes calendars deleted in iCloud, by their last name
    mirrors = []
    feeds = {feed_id(f.name): f for f in state.feeds()}
    for row in state.mirrors():
        cal_id = row.calendar_id
        feed = feeds.get(cal_id)
        mirrors.append(
            {
                "id": cal_id,
                "name": names.get(cal_id, cal_id),
                "account": None if feed else (account_of(cal_id) or PRIMARY_SPELLING),
                "local_collection": mirror_name(str(row.slug)),
                "items": row.item_count,
                "skipped": row.skipped,
                "last_sync": row.last_sync,
                "last_sync_age_s": _age(row.last_sync, now),
                "held_empty": row.held_empty,
                "last_error": row.last_error,
                "details": feed.privacy if feed else settings.calendar(cal_id).details,
                "kind": "feed" if is_feed_id(cal_id) else "icloud",
                **copies_of(state, cal_id),
            }
        )
    # A chosen conflict calendar has no mirror row before its first pass (a new choice, or
    # one held by the server asking to wait): named, so status does not leave it out silently.
    have = {m["id"] for m in mirrors}
    not_yet = [
        {"id": cal_id, "name": names.get(cal_id, cal_id)} for cal_id in settings.icloud.conflicts if cal_id not in have
    ]
    pending = state.outbox(("pending", "in_flight"))
    failed = state.outbox(("failed",))
    return {
        "local_url": state.get_meta("local_url"),
        "daemon_running": control.read_pid(home.pid_file) is not None,
        "account": acct.apple_id if acct else None,
        "connection": health.describe(state, now)
        if acct
        else {"state": "not connected", "text": "run `calmirror connect --apple-id EMAIL`"},
        "accounts": accounts_of(state, now),
        # Whose answer to an invitation decides its busy time: logins, the servers' addresses, aliases
        "me": sorted(shown_addresses(tuple(my_addresses(state, settings)))),
        "linked": {"id": settings.icloud.linked, "name": names.get(settings.icloud.linked or "")},
        "mirrors": mirrors,
        "not_mirrored_yet": not_yet,
        "outbox": {
            "depth": len(pending),
            "oldest_pending_age_s": _age(min((r.enqueued_at for r in pending), default=None), now),
            "failed": [{"uid": r.uid, "reason": r.last_error, "attempts": r.attempts} for r in failed],
            "last_push": state.get_meta("last_push"),
            "retrying": [
                {"uid": r.uid, "attempts": r.attempts, "last_error": r.last_error} for r in pending if r.attempts
            ],
        },
        "guard": {"mode": settings.availability.guard, "warnings": state.guard_warnings()},
        "skipped_items": [
            {"calendar": names.get(r["calendar_id"], r["calendar_id"]), "href": r["href"], "reason": r["reason"]}
            for r in state.skipped_items()
        ][:50],
        "linked_changes": _linked_changes(settings, state),
        "recent_errors": [
            {"ts": e.ts, "kind": e.kind, "level": e.level, "message": e.message} for e in state.events(10)
        ],
    }


def accounts_of(state: State, now: float) -> list[dict[str, Any]]:
    """Every account with its own health: one account refusing its password, or asking to
    wait, says nothing about the others."""
    return [
        {
            "name": acct.label,
            "apple_id": acct.apple_id,
            "server": host_of(acct.server),
            "connection": health.describe(state, now, acct.name),
            # what the server says the user is invited under (its calendar-user-address-set)
            "addresses": shown_addresses(state.addresses(acct.name)),
        }
        for acct in state.accounts()
    ]


def _linked_changes(settings: Settings, state: State) -> dict[str, Any]:
    """Pushed appointments whose iCloud version differs from the local one (listed, since in
    one-way mode nothing else shows them), and the versions a change on both sides overrode,
    with both texts: nothing is lost silently."""
    return {
        "mode": settings.push.linked,
        "differing": [
            {"uid": v.uid, "deleted_in_icloud": v.deleted, "seen_at": v.seen_at, "icloud_text": v.body}
            for v in state.differing_remote_versions()
        ],
        "conflicts": [
            {"uid": c.uid, "reason": c.reason, "ts": c.ts, "local_text": c.local_body, "icloud_text": c.remote_body}
            for c in state.conflicts()[:50]
        ],
    }
