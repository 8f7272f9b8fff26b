"""Property: whatever the remote does between syncs, and wherever a sync is cut short, the
mirror converges to the remote once a sync completes; the planner never plans a remote write."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from calmirror.model import MirrorEntry
from calmirror.plan import MirrorPolicy, hrefs_to_fetch, plan_mirror
from calmirror.transform import local_name, mark_mirrored

BASE = "https://p01-caldav.example/1/calendars/work/"


def body(uid: str, version: int, bad: bool) -> str:
    uid_line = "" if bad else f"UID:{uid}\r\n"
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n{uid_line}"
        f"DTSTAMP:20261101T000000Z\r\nDTSTART:20261201T{version % 24:02d}0000Z\r\n"
        f"DTEND:20261201T{version % 24:02d}3000Z\r\nSUMMARY:v{version}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


@dataclass
class Remote:
    items: dict[str, tuple[str, str]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)  # href changed at position i
    valid_from: int = 0
    version: int = 0

    def put(self, n: int, bad: bool) -> None:
        self.version += 1
        href = f"{BASE}item{n}.ics"
        self.items[href] = (f'"e{self.version}"', body(f"uid-{n}", self.version, bad))
        self.log.append(href)

    def delete(self, n: int) -> None:
        href = f"{BASE}item{n}.ics"
        if self.items.pop(href, None):
            self.log.append(href)

    def sync(self, token: int | None) -> tuple[int, dict[str, str], list[str], bool]:
        if token is None or token < self.valid_from:
            return len(self.log), {h: e for h, (e, _) in self.items.items()}, [], True
        touched = set(self.log[token:])
        changed = {h: self.items[h][0] for h in touched if h in self.items}
        return len(self.log), changed, sorted(touched - set(self.items)), False


@dataclass
class Mirror:
    local: dict[str, str] = field(default_factory=dict)
    known: dict[str, MirrorEntry] = field(default_factory=dict)
    token: int | None = None
    held: bool = False
    skipped: set[str] = field(default_factory=set)

    def apply(self, plan) -> None:  # type: ignore[no-untyped-def]
        for href in plan.local_deletes:
            self.local.pop(href, None)
        for href, text in plan.writes:
            self.local[href] = text
        for href in plan.gone:
            self.known.pop(href, None)
        for entry in plan.entries:
            self.known[entry.href] = entry
        self.skipped = (self.skipped | set(plan.skipped)) - set(plan.unskipped) - {e.href for e in plan.entries}

    def sync(self, remote: Remote, policy: MirrorPolicy, fail_after: int | None) -> None:
        policy = replace(policy, skipped_hrefs=frozenset(self.skipped))
        new_token, changed, deleted, full = remote.sync(self.token)
        removal = plan_mirror(self.known, changed, deleted, full, {}, [], policy)
        self.held = removal.held_empty
        if removal.held_empty:
            return
        wanted = hrefs_to_fetch(self.known, changed, policy)
        for i in range(0, len(wanted), 2):
            if fail_after is not None and i // 2 >= fail_after:
                return  # a 503 in the middle: the token is not saved
            chunk = wanted[i : i + 2]
            fetched = {h: remote.items[h] for h in chunk if h in remote.items}
            missing = [h for h in chunk if h not in remote.items]
            self.apply(plan_mirror(self.known, changed, [], False, fetched, missing, policy))
        self.apply(removal)
        self.token = new_token


ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 7), st.just(False)),
        st.tuples(st.just("bad"), st.integers(0, 7), st.just(True)),
        st.tuples(st.just("delete"), st.integers(0, 7), st.just(False)),
        st.tuples(st.just("sync"), st.one_of(st.none(), st.integers(0, 3)), st.just(False)),
        st.tuples(st.just("invalidate"), st.just(0), st.just(False)),
    ),
    max_size=40,
)


def expected(remote: Remote) -> dict[str, str]:
    good = {h: b for h, (_, b) in remote.items.items() if "\r\nUID:" in b}
    return {local_name(h): mark_mirrored(b, "work") for h, b in good.items()}


@settings(max_examples=300, deadline=None)
@given(ops)
def test_mirror_converges_to_remote(history: list[tuple[str, int | None, bool]]) -> None:
    remote, mirror = Remote(), Mirror()
    policy = MirrorPolicy(source="work", accept_empty=True)
    for op, arg, flag in history:
        if op == "put" or op == "bad":
            remote.put(arg or 0, bad=flag)
        elif op == "delete":
            remote.delete(arg or 0)
        elif op == "sync":
            mirror.sync(remote, policy, fail_after=arg)
        else:
            remote.valid_from = len(remote.log) + 1
    mirror.sync(remote, policy, fail_after=None)
    assert mirror.local == expected(remote)
    assert {h: e.etag for h, e in mirror.known.items()} == {
        h: e for h, (e, b) in remote.items.items() if "\r\nUID:" in b
    }


@settings(max_examples=200, deadline=None)
@given(ops)
def test_emptied_remote_never_wipes_a_mirror_without_consent(history: list[tuple[str, int | None, bool]]) -> None:
    remote, mirror = Remote(), Mirror()
    policy = MirrorPolicy(source="work", accept_empty=False)
    for op, arg, flag in history:
        if op in ("put", "bad"):
            remote.put(arg or 0, bad=flag)
        elif op == "delete":
            remote.delete(arg or 0)
        elif op == "sync":
            mirror.sync(remote, policy, fail_after=arg)
    before = dict(mirror.local)
    mirror.sync(remote, policy, fail_after=None)
    if before and not remote.items:  # the calendar lists nothing at all: keep the mirror
        assert mirror.held and mirror.local == before
    else:
        assert mirror.local == expected(remote)
