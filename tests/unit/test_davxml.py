"""The free-busy-query's time range as the middleware reads it (RFC 4791 §7.10, §9.9)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from calmirror.local import davxml


def query(start: str | None, end: str | None) -> bytes:
    attrs = "".join(f' {name}="{value}"' for name, value in (("start", start), ("end", end)) if value is not None)
    return (
        '<?xml version="1.0" encoding="utf-8"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
        f"<C:time-range{attrs}/></C:free-busy-query>"
    ).encode()


def test_a_utc_range_is_read() -> None:
    found = davxml.free_busy_query(davxml.parse(query("20261201T000000Z", " 20261231T235959Z ")))
    assert found == davxml.FreeBusyQuery(
        datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    "start",
    [
        "20261201T000000",  # floating: not UTC
        "2026-12-01T00:00:00Z",
        "20261301T000000Z",  # month 13
        "20260229T000000Z",  # not a leap year
        "20261201T240000Z",
        "2026121T000000Z",
        "\u0662\u0660\u0662\u06601201T000000Z",  # digits of another script
        "",
        None,
    ],
)
def test_anything_but_a_utc_date_time_is_refused(start: str | None) -> None:
    with pytest.raises(davxml.XMLRefused) as refused:
        davxml.free_busy_query(davxml.parse(query(start, "20261231T000000Z")))
    assert "start and end" in refused.value.reason


def test_an_end_before_the_start_is_refused() -> None:
    with pytest.raises(davxml.XMLRefused, match="after its start"):
        davxml.free_busy_query(davxml.parse(query("20261231T000000Z", "20261201T000000Z")))


def test_another_report_is_not_a_free_busy_query() -> None:
    root = davxml.parse(b'<C:calendar-query xmlns:C="urn:ietf:params:xml:ns:caldav"/>')
    assert davxml.free_busy_query(root) is None
