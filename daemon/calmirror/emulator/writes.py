"""PUT and DELETE as iCloud answers them, done through the storage API.

The layer, not Radicale, checks preconditions: ETags the client holds are the short
iCloud form, the same UID may not appear in two calendars of the account, events
need an end, and check and write happen under one lock so two clients racing with
the same If-Match cannot both win.
"""

from __future__ import annotations

import radicale.item as radicale_item
from radicale import pathutils

from calmirror.emulator import xmlbits
from calmirror.emulator.messages import Reply, Request, empty_reply, xml_reply
from calmirror.emulator.objects import InvalidObject, event_without_end, prepare_item
from calmirror.emulator.store import Store
from calmirror.emulator.tokens import etag_matches, short_etag
from calmirror.emulator.xmlbits import CALDAV, clark


def split_item_path(store: Store, path: str) -> tuple[str, str] | None:
    """(calendar id, item name) for `/<dsid>/calendars/<id>/<name>`, else None."""
    prefix = store.home_path
    if not path.startswith(prefix):
        return None
    rest = path[len(prefix) :]
    cal_id, sep, name = rest.partition("/")
    if not sep or not cal_id or not name or "/" in name:
        return None
    return cal_id, name


def put(store: Store, request: Request) -> Reply:
    target = split_item_path(store, request.path)
    if target is None:
        return empty_reply(403 if request.path.startswith(store.home_path) else 404)
    cal_id, name = target
    if not pathutils.is_safe_filesystem_path_component(name):
        return empty_reply(400)
    calendar = store.calendar(cal_id)
    if calendar is None:
        return empty_reply(409)
    if not calendar.writable:
        return empty_reply(403)
    if request.header("Content-Type").split(";", 1)[0].strip().lower() != "text/calendar":
        return empty_reply(415)
    try:
        item = prepare_item(request.body.decode("utf-8"), store.calendar_path(cal_id))
    except (UnicodeDecodeError, InvalidObject):
        return empty_reply(400)
    if item.component_name not in calendar.components:
        return xml_reply(403, xmlbits.error(clark(CALDAV, "supported-calendar-component")))
    if event_without_end(item):
        return empty_reply(404)
    with store.lock:
        refusal = _check_put_preconditions(store, request, cal_id, name, item)
        if refusal is not None:
            return refusal
        ((etag, created),) = store.write_items(cal_id, [(name, item)])
    return empty_reply(201 if created else 204, ("ETag", short_etag(etag)))


def _check_put_preconditions(
    store: Store, request: Request, cal_id: str, name: str, item: radicale_item.Item
) -> Reply | None:
    current = store.get_item(cal_id, name)
    if_match = request.header("If-Match").strip()
    if if_match == "*":
        # iCloud gets `If-Match: *` backwards (ICLOUD.md 23): refuses an existing
        # object, creates a missing one.
        if current is not None:
            return empty_reply(412)
    elif if_match and (current is None or not etag_matches(if_match, current.etag)):
        return empty_reply(412)
    if request.header("If-None-Match").strip() == "*" and current is not None:
        return empty_reply(412)
    if current is not None and current.uid != item.uid:
        return xml_reply(409, xmlbits.error(clark(CALDAV, "no-uid-conflict")))
    for other_cal, other_name in store.uid_locations(item.uid):
        if other_cal != cal_id:
            return xml_reply(
                403,
                xmlbits.error(
                    clark(CALDAV, "no-uid-conflict"), xmlbits.href(store.calendar_path(other_cal) + other_name)
                ),
            )
        if other_name != name:
            return xml_reply(
                409,
                xmlbits.error(
                    clark(CALDAV, "no-uid-conflict"), xmlbits.href(store.calendar_path(other_cal) + other_name)
                ),
            )
    return None


def delete(store: Store, request: Request) -> Reply:
    target = split_item_path(store, request.path)
    if target is None:
        return empty_reply(403 if request.path.startswith(f"/{store.dsid}/") else 404)
    cal_id, name = target
    calendar = store.calendar(cal_id)
    if calendar is None or not pathutils.is_safe_filesystem_path_component(name):
        return empty_reply(404)
    if not calendar.writable:
        return empty_reply(403)
    with store.lock:
        current = store.get_item(cal_id, name)
        if current is None:
            return empty_reply(404)
        if_match = request.header("If-Match").strip()
        if if_match and if_match != "*" and not etag_matches(if_match, current.etag):
            return empty_reply(412)
        store.delete_item(cal_id, name)
    return empty_reply(204)
