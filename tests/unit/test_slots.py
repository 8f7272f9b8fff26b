"""Free-slot finding and the parsing of --from/--to/--tz/--slots/--within/--days."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from calmirror.availability import slots
from calmirror.errors import UserError

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")


def z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def iv(a: str, b: str) -> tuple[dt.datetime, dt.datetime]:
    return z(a), z(b)


def starts(found: list[tuple[dt.datetime, dt.datetime]], zone: dt.tzinfo = UTC) -> list[str]:
    return [a.astimezone(zone).strftime("%a %H:%M") for a, _ in found]


# --- parsing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01", z("2026-11-30 23:00")),  # start of the local day in Berlin
        ("20261201", z("2026-11-30 23:00")),
        ("2026-12-01T09:00", z("2026-12-01 08:00")),
        ("2026-12-01 09:00", z("2026-12-01 08:00")),
        ("2026-12-01T09:00:30", z("2026-12-01 08:00:30")),
        ("2026-12-01T09:00+05:30", z("2026-12-01 03:30")),
        ("2026-12-01T09:00Z", z("2026-12-01 09:00")),
        ("2027-07-01T09:00", z("2027-07-01 07:00")),  # summer time
        ("2027-10-31T02:30", z("2027-10-31 00:30")),  # twice that night: the first one
        ("  2026-12-01  ", z("2026-11-30 23:00")),
    ],
)
def test_parse_time(text: str, expected: dt.datetime) -> None:
    got = slots.parse_time(text, BERLIN)
    assert got == expected and got.tzinfo is UTC


@pytest.mark.parametrize(
    "text", ["", "tomorrow", "2026-13-01", "2026-12-32", "2026-12-01T25:00", "12/01/2026", "2026-12-01T09:00+25:00"]
)
def test_parse_time_refuses_with_one_line(text: str) -> None:
    with pytest.raises(UserError) as error:
        slots.parse_time(text, BERLIN, "--from")
    message = str(error.value)
    assert message.startswith(f"--from {text!r}") and "\n" not in message
    assert error.value.exit_code == 2


def test_parse_time_refuses_a_local_time_skipped_by_dst() -> None:
    with pytest.raises(slots.BadInput, match="does not exist in Europe/Berlin"):
        slots.parse_time("2027-03-28T02:30", BERLIN)


def test_a_date_whose_midnight_is_skipped_starts_when_the_day_does() -> None:
    santiago = ZoneInfo("America/Santiago")  # clocks jump 00:00 -> 01:00 on 2026-09-06
    assert slots.parse_time("2026-09-06", santiago) == z("2026-09-06 04:00")


def test_parse_zone() -> None:
    assert slots.parse_zone("Europe/Berlin") == BERLIN
    for bad in ("Mars/Olympus", "", "../../etc/passwd", "Europe/"):
        with pytest.raises(slots.BadInput, match="unknown time zone"):
            slots.parse_zone(bad)


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("30m", 30),
        ("1h", 60),
        ("1h30m", 90),
        ("1h 30m", 90),
        ("90min", 90),
        ("2H", 120),
        ("45 minutes", 45),
        ("24h", 1440),
    ],
)
def test_parse_length(text: str, minutes: int) -> None:
    assert slots.parse_length(text) == dt.timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["", "30", "0m", "0h0m", "1d", "m", "h30", "25h", "-30m", "30s"])
def test_parse_length_refuses(text: str) -> None:
    with pytest.raises(slots.BadInput) as error:
        slots.parse_length(text)
    assert str(error.value).startswith(f"--slots {text!r}:")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:00-17:00", (dt.time(9), dt.time(17))),
        ("9-17", (dt.time(9), dt.time(17))),
        ("08:30 – 12:15", (dt.time(8, 30), dt.time(12, 15))),
        ("22:00-06:00", (dt.time(22), dt.time(6))),
        ("00:00-24:00", (dt.time(0), dt.time(0))),
    ],
)
def test_parse_within(text: str, expected: tuple[dt.time, dt.time]) -> None:
    assert slots.parse_within(text) == expected


@pytest.mark.parametrize("text", ["", "09:00", "9-", "25:00-26:00", "09:60-10:00", "morning", "9-10-11", "24:30-01:00"])
def test_parse_within_refuses(text: str) -> None:
    with pytest.raises(slots.BadInput, match="--within"):
        slots.parse_within(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("mon,wed,fri", {0, 2, 4}),
        ("Monday, Friday", {0, 4}),
        ("fri-mon", {4, 5, 6, 0}),
        ("sa-su", {5, 6}),
        ("weekdays", {0, 1, 2, 3, 4}),
        ("weekend", {5, 6}),
        ("tue", {1}),
        ("mon-fri,sun", {0, 1, 2, 3, 4, 6}),
    ],
)
def test_parse_days(text: str, expected: set[int]) -> None:
    assert slots.parse_days(text) == frozenset(expected)


@pytest.mark.parametrize("text", ["", "m", "t", "funday", "mon-", "mon--fri", "mon-tue-wed", ","])
def test_parse_days_refuses(text: str) -> None:
    with pytest.raises(slots.BadInput, match="--days"):
        slots.parse_days(text)


# --- finding slots ---------------------------------------------------------------------------------------


def test_grid_step_is_gcd_of_length_and_an_hour() -> None:
    assert [slots.grid_step(dt.timedelta(minutes=m)) for m in (30, 60, 90, 45, 25, 120)] == [
        dt.timedelta(minutes=n) for n in (30, 60, 30, 15, 5, 60)
    ]


def test_slots_are_back_to_back_on_clock_boundaries() -> None:
    busy = [iv("2026-12-07 10:07", "2026-12-07 10:50")]
    found = slots.free_slots(busy, z("2026-12-07 09:10"), z("2026-12-07 12:00"), dt.timedelta(minutes=30), UTC)
    assert found == [
        iv("2026-12-07 09:30", "2026-12-07 10:00"),
        iv("2026-12-07 11:00", "2026-12-07 11:30"),
        iv("2026-12-07 11:30", "2026-12-07 12:00"),
    ]


def test_ninety_minute_slots_start_on_half_hours_and_45_on_quarters() -> None:
    window = (z("2026-12-07 09:10"), z("2026-12-07 14:00"))
    assert starts(slots.free_slots([], *window, dt.timedelta(minutes=90), UTC)) == [
        "Mon 09:30",
        "Mon 11:00",
        "Mon 12:30",
    ]
    assert starts(slots.free_slots([], *window, dt.timedelta(minutes=45), UTC))[:3] == [
        "Mon 09:15",
        "Mon 10:00",
        "Mon 10:45",
    ]


def test_alignment_follows_local_clock_in_half_hour_zones() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")  # +05:30: a local full hour is :30 in UTC
    found = slots.free_slots([], z("2026-12-07 03:00"), z("2026-12-07 06:00"), dt.timedelta(hours=1), kolkata)
    assert found == [iv("2026-12-07 03:30", "2026-12-07 04:30"), iv("2026-12-07 04:30", "2026-12-07 05:30")]


def test_within_hours_and_weekdays_in_the_local_zone() -> None:
    # Fri 2026-12-11 .. Tue 2026-12-15, Berlin (UTC+1), 09:00-11:00 on mon-fri only
    busy = [iv("2026-12-14 08:30", "2026-12-14 09:00")]  # Mon 09:30-10:00 local
    found = slots.free_slots(
        busy,
        z("2026-12-11 00:00"),
        z("2026-12-16 00:00"),
        dt.timedelta(minutes=30),
        BERLIN,
        (dt.time(9), dt.time(11)),
        frozenset(range(5)),
    )
    assert starts(found, BERLIN) == [
        "Fri 09:00",
        "Fri 09:30",
        "Fri 10:00",
        "Fri 10:30",
        "Mon 09:00",
        "Mon 10:00",
        "Mon 10:30",
        "Tue 09:00",
        "Tue 09:30",
        "Tue 10:00",
        "Tue 10:30",
    ]


def test_days_without_hours_means_whole_days() -> None:
    found = slots.free_slots(
        [], z("2026-12-11 00:00"), z("2026-12-15 00:00"), dt.timedelta(hours=24), UTC, None, frozenset({5, 6})
    )
    assert found == [iv("2026-12-12 00:00", "2026-12-13 00:00"), iv("2026-12-13 00:00", "2026-12-14 00:00")]


def test_overnight_hours_belong_to_the_day_they_start() -> None:
    found = slots.free_slots(
        [],
        z("2026-12-11 00:00"),
        z("2026-12-14 00:00"),
        dt.timedelta(hours=4),
        UTC,
        (dt.time(22), dt.time(6)),
        frozenset({4}),
    )  # Friday night only
    assert found == [iv("2026-12-11 22:00", "2026-12-12 02:00"), iv("2026-12-12 02:00", "2026-12-12 06:00")]


def test_hours_on_a_dst_day_are_local_hours() -> None:
    # 2027-03-28: Berlin moves from UTC+1 to UTC+2; 09:00-12:00 local is 07:00-10:00Z
    found = slots.free_slots(
        [], z("2027-03-27 00:00"), z("2027-03-29 00:00"), dt.timedelta(hours=1), BERLIN, (dt.time(9), dt.time(12))
    )
    assert found == [
        iv("2027-03-27 08:00", "2027-03-27 09:00"),
        iv("2027-03-27 09:00", "2027-03-27 10:00"),
        iv("2027-03-27 10:00", "2027-03-27 11:00"),
        iv("2027-03-28 07:00", "2027-03-28 08:00"),
        iv("2027-03-28 08:00", "2027-03-28 09:00"),
        iv("2027-03-28 09:00", "2027-03-28 10:00"),
    ]


def test_slots_across_a_dst_night_stay_on_the_local_grid() -> None:
    found = slots.free_slots([], z("2027-03-28 00:00"), z("2027-03-28 03:00"), dt.timedelta(hours=1), BERLIN)
    assert [a.astimezone(BERLIN).strftime("%H:%M") for a, _ in found] == ["01:00", "03:00", "04:00"]


def test_lord_howe_half_hour_dst_shift_realigns() -> None:
    lord_howe = ZoneInfo("Australia/Lord_Howe")  # 2026-10-04 02:00 -> 02:30 (+10:30 -> +11:00)
    found = slots.free_slots([], z("2026-10-03 13:00"), z("2026-10-03 18:00"), dt.timedelta(hours=1), lord_howe)
    local = [a.astimezone(lord_howe).strftime("%H:%M") for a, _ in found]
    assert all(t.endswith(":00") for t in local)
    assert all(a < b and (b - a) == dt.timedelta(hours=1) for a, b in found)
    assert all(found[i][1] <= found[i + 1][0] for i in range(len(found) - 1))


def test_nothing_fits_and_overlapping_unsorted_busy() -> None:
    busy = [
        iv("2026-12-07 10:30", "2026-12-07 11:00"),
        iv("2026-12-07 09:00", "2026-12-07 10:45"),
        iv("2026-12-07 11:20", "2026-12-07 12:00"),
    ]
    window = (z("2026-12-07 09:00"), z("2026-12-07 12:00"))
    assert slots.free_slots(busy, *window, dt.timedelta(minutes=30), UTC) == []
    assert slots.free_intervals(busy, *window) == [iv("2026-12-07 11:00", "2026-12-07 11:20")]
    assert slots.free_slots(busy, *window, dt.timedelta(minutes=20), UTC) == [
        iv("2026-12-07 11:00", "2026-12-07 11:20")
    ]


def test_free_slots_never_overlap_busy_time() -> None:
    origin = z("2026-12-07 00:00")
    busy = [(origin + dt.timedelta(minutes=37 * k), origin + dt.timedelta(minutes=37 * k + 11)) for k in range(60)]
    found = slots.free_slots(busy, z("2026-12-07 00:00"), z("2026-12-09 00:00"), dt.timedelta(minutes=15), BERLIN)
    assert found
    for a, b in found:
        assert a.astimezone(BERLIN).minute % 15 == 0
        assert all(b <= x or a >= y for x, y in busy)
