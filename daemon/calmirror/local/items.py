"""Checking calendar objects before they enter a mirror.

Each object goes through the same steps Radicale applies to a client's PUT
(`read_components`, `check_and_sanitize_items`, then the cache fields of `Item.prepare`),
so a mirror never holds something Radicale itself would refuse or later skip as broken.
The result is plain data (`PreparedItem`), which lets big batches be checked in worker
processes.

Speed: vobject spends most of its 3 ms per Apple-shaped event turning the event's
VTIMEZONE blocks into tzinfo objects and comparing them with the ones it already knows,
and re-serializing the object. Every event of a calendar carries the same few blocks, so
each distinct block is parsed once (`_timezones_known`), which registers its zone in
vobject's process-wide registry exactly as parsing the whole object would, and the
object is then checked without its blocks (0.8 ms). The stored text is the original, not
vobject's re-serialization, so the mirror is an exact copy. Whenever the light check
cannot vouch for the result (a block that does not parse alone, Radicale's sanitizer
changing something, any error) the object takes the full path, which gives the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from radicale import config as radicale_config
from radicale import item as radicale_item
from radicale import pathutils

from calmirror.local import vobject_speed

vobject_speed.install()  # before Radicale parses an object

log = logging.getLogger("calmirror.local")


@dataclass(frozen=True)
class PreparedItem:
    """A checked object with everything Radicale caches about it, ready to store."""

    href: str
    text: str
    etag: str
    uid: str
    name: str
    component_name: str
    time_range: tuple[int, int]

    @classmethod
    def from_item(cls, item: radicale_item.Item) -> PreparedItem:
        assert item.href is not None
        return cls(
            href=item.href,
            text=item.serialize(),
            etag=item.etag,
            uid=item.uid,
            name=item.name,
            component_name=item.component_name,
            time_range=item.time_range,
        )


@dataclass(frozen=True)
class Limits:
    """Radicale's limits on one object (the defaults are calmirror's Radicale configuration)."""

    max_resource_size: int = 10_000_000
    max_rrule_occurrence: int = 10_000
    component: str = "VEVENT"

    @classmethod
    def of(cls, configuration: radicale_config.Configuration) -> Limits:
        """The limits a Radicale configuration sets."""
        return cls(
            max_resource_size=configuration.get("server", "max_resource_size"),
            max_rrule_occurrence=configuration.get("server", "max_vevent_rrule_occurrence"),
        )


def check_href(href: str) -> str | None:
    """Why `href` cannot name an item file, or None. Dot-names are Radicale's own files."""
    if not pathutils.is_safe_filesystem_path_component(href) or href != href.strip():
        return "unsafe href"
    if len(href.encode("utf-8")) > 200:
        return "href too long"
    return None


def prepare_one(href: str, ics: str, limits: Limits) -> PreparedItem | str:
    """The prepared object, or a short reason why it cannot be stored."""
    problem = check_href(href)
    if problem:
        return problem
    if len(ics.encode("utf-8")) > limits.max_resource_size:
        return "object too large"
    light = _prepare_light(href, ics, limits)
    return light if light is not None else _prepare_full(href, ics, limits)


def _prepare_light(href: str, ics: str, limits: Limits) -> PreparedItem | None:
    """The cache fields Radicale would compute, from the object without its VTIMEZONEs;
    None when only the full path can decide."""
    stripped, blocks, depth = split_timezones(ics)
    if depth > _LIGHT_MAX_DEPTH or (blocks and not _timezones_known(blocks)):
        return None
    try:
        components = radicale_item.read_components(stripped)
        before = _sanitizer_view(components)
        radicale_item.check_and_sanitize_items(
            components, max_vevent_rrule_occurrence=limits.max_rrule_occurrence, tag="VCALENDAR"
        )
        if _sanitizer_view(components) != before:
            return None  # Radicale would store its changed version: let the full path make it
        vobject_item = components[0]
        tag = radicale_item.find_tag(vobject_item)
        if tag != limits.component:
            return None
        return PreparedItem(
            href=href,
            text=ics,
            etag=radicale_item.get_etag(ics),
            uid=radicale_item.get_uid_from_object(vobject_item),
            name=vobject_item.name or "",
            component_name=tag,
            time_range=radicale_item.find_time_range(vobject_item, tag),
        )
    except Exception:
        return None


#: Deeper nesting than this (VCALENDAR > VEVENT > VALARM is 3) takes the full path, whose
#: re-serialization refuses what Radicale could not serialize either (recursion limit).
_LIGHT_MAX_DEPTH = 8


def split_timezones(ics: str) -> tuple[str, list[str], int]:
    """The object without its top-level VTIMEZONE blocks, those blocks, and the deepest
    component nesting."""
    kept: list[str] = []
    blocks: list[str] = []
    block: list[str] | None = None
    depth = deepest = 0
    for line in ics.splitlines(keepends=True):
        head = line[:16].upper()
        if block is not None:
            block.append(line)
            if head.startswith("BEGIN:"):
                depth += 1
                deepest = max(deepest, depth)
            elif head.startswith("END:"):
                depth -= 1
                if depth == 1:
                    blocks.append("".join(block))
                    block = None
            continue
        if head.startswith("BEGIN:"):
            depth += 1
            deepest = max(deepest, depth)
            if depth == 2 and head.rstrip("\r\n") == "BEGIN:VTIMEZONE":
                block = [line]
                continue
        elif head.startswith("END:"):
            depth -= 1
        kept.append(line)
    if block is not None:
        return ics, [], deepest  # unterminated block: the full path reports it
    return "".join(kept), blocks, deepest


_TIMEZONE_CACHE_LIMIT = 512
_known_timezones: dict[str, bool] = {}


def _timezones_known(blocks: list[str]) -> bool:
    """Parse each distinct VTIMEZONE block once; False if one does not parse on its own."""
    for block in blocks:
        known = _known_timezones.get(block)
        if known is None:
            ending = "" if block.endswith("\n") else "\r\n"
            wrapped = f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{block}{ending}END:VCALENDAR\r\n"
            try:
                parsed = radicale_item.read_components(wrapped)
                known = len(parsed) == 1 and all(c.name == "VTIMEZONE" for c in parsed[0].components())
            except Exception:
                known = False
            if len(_known_timezones) >= _TIMEZONE_CACHE_LIMIT:
                _known_timezones.clear()
            _known_timezones[block] = known
        if not known:
            return False
    return True


def _sanitizer_view(components: Sequence[Any]) -> str:
    """What `check_and_sanitize_items` may change in an object, as text to compare."""
    parts = []
    for component in components[0].components() if components else ():
        contents = component.contents
        parts.append(
            repr(
                [
                    component.name,
                    [(d.value, d.params) for d in contents.get("duration", [])],
                    [(list(d.value), d.params) for key in ("exdate", "rdate") for d in contents.get(key, [])],
                ]
            )
        )
    return "\n".join(parts)


def _prepare_full(href: str, ics: str, limits: Limits) -> PreparedItem | str:
    """Radicale's own way: parse everything, check, re-serialize."""
    try:
        components = radicale_item.read_components(ics)
    except Exception:
        return "not valid iCalendar"
    try:
        radicale_item.check_and_sanitize_items(
            components, max_vevent_rrule_occurrence=limits.max_rrule_occurrence, tag="VCALENDAR"
        )
    except Exception as error:
        return _short(f"refused by Radicale: {error}")
    try:
        item = radicale_item.Item(collection_path="calmirror", href=href, vobject_item=components[0])
        item.prepare()
    except Exception as error:
        return _short(f"cannot be stored: {error}")
    if item.component_name != limits.component:
        return f"not a {limits.component} (found {item.component_name or 'nothing'})"
    return PreparedItem.from_item(item)


def _short(reason: str, limit: int = 160) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def prepare_chunk(pairs: Sequence[tuple[str, str]], limits: Limits) -> list[PreparedItem | str]:
    return [prepare_one(href, ics, limits) for href, ics in pairs]
