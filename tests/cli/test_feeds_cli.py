"""`calmirror feeds …` as a user runs it, against a real publisher on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from calmirror.local.layout import feed_id
from calmirror.model import FeedRow
from calmirror.state import State
from calmirror.testing.feed_server import FeedServer, feed_text
from tests.conftest import Cli
from tests.helpers import wait_for

ROTA = [("shift-1", "20261202T090000Z", "20261202T120000Z"), ("shift-2", "20261203T130000Z", "20261203T170000Z")]


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def test_add_list_sync_remove(cli: Cli, server: FeedServer) -> None:
    server.publish("/rota.ics", feed_text(ROTA), auth=("ann", "s3cret"))
    url = server.url("/rota.ics", userinfo="ann:s3cret")
    refused = cli("feeds", "add", url)
    assert refused.returncode == 2 and "--allow-http" in one_line(refused) and "s3cret" not in refused.stderr
    added = cli("feeds", "add", url, "--allow-http", "--name", "rota", "--interval", "30m", "--privacy", "busy")
    assert added.returncode == 0, added.stderr
    assert "feed-rota/" in added.stdout and "2 event(s)" in added.stdout
    again = cli("feeds", "add", url, "--allow-http")
    assert again.returncode == 2 and "already subscribed" in one_line(again)
    listed = json.loads(cli("feeds", "list", "--json").stdout)["feeds"]
    assert [(f["name"], f["events"], f["privacy"], f["interval_s"]) for f in listed] == [("rota", 2, "busy", 1800.0)]
    assert "s3cret" not in json.dumps(listed) and listed[0]["requests"] == 1
    week = json.loads(cli("week", "2026-11-30", "--json").stdout)
    shown = [e for day in week["days"] for e in day["events"] if e["source"] == "feed-rota"]
    assert len(shown) == 2 and {e["title"] for e in shown} == {"Busy"}  # --privacy busy: no titles anywhere
    opened = cli("feeds", "privacy", "rota", "full")
    assert opened.returncode == 0 and "2 event(s) rewritten" in opened.stdout, opened.stderr
    week = json.loads(cli("week", "2026-11-30", "--json").stdout)
    shown = [e for day in week["days"] for e in day["events"] if e["source"] == "feed-rota"]
    assert {e["title"] for e in shown} == {"Shift shift-1", "Shift shift-2"}
    synced = cli("sync", "--json")  # no iCloud account: the feeds alone
    assert synced.returncode == 0, synced.stderr
    assert [(f["name"], f["outcome"], f["requests"]) for f in json.loads(synced.stdout)["feeds"]] == [
        ("rota", "unchanged", 1)
    ]
    server.change("/rota.ics", feed_text([]))
    held = cli("feeds", "poll")
    assert held.returncode == 0 and "--accept-empty" in held.stdout
    assert json.loads(cli("feeds", "list", "--json").stdout)["feeds"][0]["events"] == 2
    accepted = cli("feeds", "poll", "rota", "--accept-empty")
    assert accepted.returncode == 0 and "2 deleted" in accepted.stdout
    removed = cli("feeds", "remove", "rota")
    assert removed.returncode == 0 and "feed-rota/" in removed.stdout
    assert json.loads(cli("feeds", "list", "--json").stdout)["feeds"] == []


def test_refusals_point_the_way(cli: Cli, server: FeedServer) -> None:
    for url in ("file:///etc/passwd", "ftp://example.com/a.ics"):
        result = cli("feeds", "add", url)
        assert result.returncode == 2 and "https://" in one_line(result)
    missing = cli("feeds", "add", server.url("/nothing.ics"), "--allow-http")
    assert missing.returncode == 2 and "404" in one_line(missing) and "not subscribed" in one_line(missing)
    assert json.loads(cli("feeds", "list", "--json").stdout)["feeds"] == []
    recent = json.loads(cli("status", "--json").stdout)["recent_errors"]
    assert not any("nothing.ics" in e["message"] for e in recent)  # the refused add left no trace
    webcal = cli("conflicts", "add", "webcal://example.com/school.ics")
    assert webcal.returncode == 2 and "calmirror feeds add" in one_line(webcal)
    unknown = cli("feeds", "remove", "nope")
    assert unknown.returncode == 2 and "no such feed" in one_line(unknown)


def test_feed_and_feeds_say_which_direction_each_is_and_point_at_the_other(cli: Cli) -> None:
    top = " ".join(cli("--help").stdout.split())
    assert "feed Outbound: publish your busy times" in top and "feeds Inbound: subscribe to ICS feeds" in top
    outbound = " ".join(cli("feed", "--help").stdout.split())
    inbound = " ".join(cli("feeds", "--help").stdout.split())
    assert outbound.count("Outbound:") == 1 and "calmirror publishes" in outbound and "`calmirror feeds`" in outbound
    assert inbound.count("Inbound:") == 1 and "you subscribe to" in inbound and "`calmirror feed`" in inbound


@pytest.mark.parametrize("command", [("feeds", "poll", "--json"), ("sync", "--json")])
def test_a_hanging_publisher_does_not_hold_up_the_other_feeds(
    home: Path, server: FeedServer, command: tuple[str, ...]
) -> None:
    """`feeds poll` and `sync` fetch feeds over the daemon's pool of workers: the other feed is
    fetched and mirrored while the hanging publisher still holds its worker."""
    (home / "config.toml").write_text("[feeds]\ntimeout = 10\n")
    server.publish("/hang.ics", feed_text(ROTA), delay=60.0)  # answers only past the timeout
    server.publish("/rota.ics", feed_text(ROTA))
    with closing(State(home / "state.db")) as state:
        # Named to come first: fetched one after the other, the hanging one would hold up the rota.
        state.add_feed(FeedRow("a-hang", server.url("/hang.ics"), "Hang", 900.0, "full", True), feed_id("a-hang"))
        state.add_feed(FeedRow("rota", server.url("/rota.ics"), "Rota", 900.0, "full", True), feed_id("rota"))
        env = {**os.environ, "CALMIRROR_HOME": str(home), "COLUMNS": "200"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "calmirror", *command],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:

            def rota_mirrored_while_the_other_hangs() -> bool:
                if len(state.mirror_items(feed_id("rota"))) < len(ROTA):
                    return False
                hanging = state.feed("a-hang")
                assert hanging is not None and hanging.last_poll is None, "the rota waited for the hanging feed"
                return True

            assert wait_for(rota_mirrored_while_the_other_hangs, 30)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    reports = json.loads(out)["feeds"]
    assert [(r["name"], r["outcome"]) for r in reports] == [("a-hang", "failed"), ("rota", "changed")], err
    assert "timed out" in reports[0]["error"] and proc.returncode != 0


def test_the_list_says_interval_and_last_poll_as_a_person_reads_them(cli: Cli, server: FeedServer) -> None:
    """`feeds list` said `0:15:00` and `7200s ago`, where `status` says `2h ago`."""
    server.publish("/rota.ics", feed_text(ROTA))
    assert cli("feeds", "add", server.url("/rota.ics"), "--allow-http", "--name", "rota").returncode == 0
    with closing(State(cli.home / "state.db")) as state:
        state.update_feed("rota", last_poll=time.time() - 7200)
    shown = cli("feeds", "list").stdout
    assert "15m" in shown and "2h ago" in shown and "0:15:00" not in shown, shown
