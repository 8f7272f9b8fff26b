"""The pure decisions about pushed appointments iCloud changed (`plan_linked`), over generated
snapshots: one-way never writes locally, a local change is never overwritten, our own push is
never taken for a change, and a crash-interrupted write is finished only over the old text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from calmirror.digest import content_hash
from calmirror.model import Appointment, RemoteVersion
from calmirror.plan_linked import plan_linked, pushed_here, seen_changes
from calmirror.testing.ical import event

CAL = "https://p01.example/1/calendars/work/"
HREF = CAL + "a.ics"
TEXTS = [event("a", "v1"), event("a", "v2"), event("a", "v3", "20261201T140000Z", "20261201T150000Z")]

text = st.sampled_from(TEXTS)
maybe_text = st.none() | text
etag = st.sampled_from(['"e1"', '"e2"', '"e3"'])


@st.composite
def snapshots(draw: st.DrawFn) -> tuple[RemoteVersion, Appointment, str | None, bool]:
    pushed = draw(text)
    local = draw(maybe_text)
    appt = Appointment(
        uid="a",
        local_href="a.ics",
        local_etag=content_hash(draw(st.sampled_from([pushed, local or pushed]))),
        remote_calendar=CAL,
        remote_href=draw(st.sampled_from([HREF, CAL + "other.ics"])),
        remote_etag=draw(etag),
        pushed_etag=content_hash(pushed),
    )
    version = RemoteVersion("a", "work", HREF, draw(etag), draw(maybe_text), 0.0, draw(maybe_text))
    return version, appt, local, draw(st.booleans())


@given(snapshots(), st.sampled_from(["two-way", "one-way"]))
def test_decisions_never_lose_a_side(snapshot: tuple[RemoteVersion, Appointment, str | None, bool], mode: str) -> None:
    version, appt, local, pending = snapshot
    decision = plan_linked(mode, version, appt, local, pending)  # type: ignore[arg-type]
    local_hash = content_hash(local) if local is not None else None
    if appt.remote_href != version.href:
        assert decision.step == "ignore"
        return
    if version.body is not None and version.etag == appt.remote_etag:
        assert decision.step == "agreed"  # our own push seen again
        return
    if decision.step == "apply":
        assert local is not None and not pending
        if version.applying is not None:  # finishing a write a crash cut short: only over the old text
            assert local_hash == appt.local_etag and decision.text == version.applying
        else:
            assert mode == "two-way" and local_hash == appt.pushed_etag  # the local side did not change
            if version.body is not None:
                assert decision.text == version.body
            else:
                assert "STATUS:CANCELLED" in (decision.text or "") and "SUMMARY:" in (decision.text or "")
    if decision.step == "finish":
        assert version.applying is not None and local_hash == content_hash(version.applying)
    if mode == "one-way" and version.applying is None:
        assert decision.step == "keep"


@given(
    st.dictionaries(st.sampled_from(["a", "b", "c"]), etag),
    st.lists(st.sampled_from(["a", "b", "c", "x"])),
    st.booleans(),
)
def test_what_a_listing_says_about_pushed_appointments(
    listed_names: dict[str, str], gone: list[str], full: bool
) -> None:
    appts = [Appointment(n, f"{n}.ics", "h", CAL, CAL + f"{n}.ics", '"e1"', "h") for n in ("a", "b")]
    pushed = pushed_here(appts, "https://other-host.example:443/1/calendars/work")
    assert set(pushed) == {CAL + "a.ics", CAL + "b.ics"}
    listed = {CAL + f"{n}.ics": e for n, e in listed_names.items()}
    named = {CAL + f"{n}.ics" for n in gone}
    fetch, deleted, confirm = seen_changes(pushed, listed, sorted(named), full, {})
    assert all(href in pushed and listed[href] != '"e1"' for href in fetch)  # never our own version
    assert set(deleted) == named & set(pushed)  # only what the server named gone
    assert not set(confirm) & set(deleted)
    if full and listed:  # missing from a full listing: fetched to see whether it is gone
        assert {h for h in pushed if h not in listed} - set(deleted) == set(confirm)
    else:
        assert not confirm
