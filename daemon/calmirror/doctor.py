"""`calmirror doctor`: one line per check, each with what to do when it fails.

Checks never change anything and never print a secret; they answer "why is it not
working" before a user has to read logs.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from calmirror import account, config, control, credentials, refused
from calmirror.errors import AuthFailed, CalmirrorError, LocalError, RemoteError, Unavailable
from calmirror.home import Home
from calmirror.hrefs import host_of
from calmirror.local import loopback
from calmirror.model import PRIMARY, PRIMARY_SPELLING, Account, account_of
from calmirror.remote import ICloudClient
from calmirror.state import State
from calmirror.state.addresses import shown_addresses

MIN_FREE_BYTES = 200 * 1024 * 1024
UNIT_PLACES = (Path("/etc/systemd/system/calmirror.service"), Path.home() / ".config/systemd/user/calmirror.service")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    account: str | None = None  # the account a network check is about (`default` for the first)

    def line(self) -> str:
        return f"{'ok     ' if self.ok else 'problem'}  {self.name}: {self.detail}"


def _private(path: Path, folder: bool) -> str | None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return f"{path} is mode {mode:o}; run chmod {'700' if folder else '600'} {path}"
    return None


def check_config(home: Home) -> tuple[Check, config.Settings | None]:
    try:
        settings = config.load(home.config_file)
    except CalmirrorError as exc:
        return Check("config", False, exc.message), None
    where = home.config_file if home.config_file.exists() else f"{home.config_file} (absent: defaults)"
    return Check("config", True, f"{where} loaded"), settings


def check_credentials(home: Home, settings: config.Settings, state: State) -> Check:
    acct = state.account()
    if acct is None:
        return Check("credentials", False, "no iCloud account connected; run `calmirror connect --apple-id EMAIL`")
    for each in state.accounts():  # every account's own password
        try:
            credentials.load_icloud_password(home, each.apple_id, settings.icloud.credential, account=each.name)
        except CalmirrorError as exc:
            return Check("credentials", False, f"account {each.label}: {exc.message}")
        secret = home.secrets_dir / credentials.secret_name(each.name)
        if secret.exists() and (problem := _private(secret, folder=False)):
            return Check("credentials", False, problem)
    others = len(state.accounts()) - 1
    more = f" and {others} further account(s)" if others else ""
    return Check(
        "credentials", True, f"app-specific password for {acct.apple_id}{more} stored ({settings.icloud.credential})"
    )


def _label(name: str) -> str:
    return PRIMARY_SPELLING if name == PRIMARY else name


def check_name(name: str) -> str:
    """The first account's check keeps its old name, `iCloud`; a further one is `account NAME`."""
    return "iCloud" if name == PRIMARY else f"account {name}"


def check_icloud(home: Home, settings: config.Settings, state: State, name: str = PRIMARY) -> Check:
    """One account's server: reachable, the password accepted, its linked and conflict
    calendars still there. Each account is checked over its own connection."""
    check = check_name(name)
    acct = state.account(name)
    if acct is None:
        return Check(check, False, "not connected; run `calmirror connect --apple-id EMAIL`", _label(name))
    several = len(state.accounts()) > 1
    who = f"{acct.apple_id} on {host_of(acct.server)}: " if several or name != PRIMARY else ""
    try:
        client = account.client_for(home, settings, state, name)
    except CalmirrorError as exc:
        return Check(check, False, who + exc.message, _label(name))
    again = refused.again(name)
    try:
        calendars = account.refresh_calendars(client, state, name)
        state.set_addresses(client.addresses(acct.principal_url), name)
    except AuthFailed:
        new = (
            "a new app-specific password"
            if refused.is_icloud_login(acct.server, acct.apple_id, name)
            else "its password"
        )
        return Check(check, False, f"{who}the password was refused (revoked?); give {new}: run {again}", _label(name))
    except RemoteError as exc:
        return Check(check, False, who + _why_unreachable(client, acct, exc, again), _label(name))
    finally:
        client.close()
    ids = {cal.id for cal in calendars}
    mine = [c for c in settings.icloud.conflicts if account_of(c) == name]
    if missing := [c for c in mine if c not in ids]:
        return Check(
            check,
            False,
            f"{who}conflict calendar(s) {', '.join(missing)} no longer exist on the server; "
            "run `calmirror conflicts remove …`",
            _label(name),
        )
    linked = settings.icloud.linked
    if linked and account_of(linked) == name and linked not in {c.id for c in calendars if c.writable}:
        return Check(
            check, False, f"{who}the linked calendar is gone or read-only; run `calmirror link CALENDAR`", _label(name)
        )
    invited = shown_addresses(state.addresses(name))
    as_whom = f"; invitations to {', '.join(invited)} are yours" if invited else ""
    return Check(check, True, f"{who}reachable, password accepted, {len(calendars)} calendars{as_whom}", _label(name))


def _why_unreachable(client: ICloudClient, acct: Account, failure: RemoteError, again: str) -> str:
    """Blame the network only when the front door (the server URL) does not answer either:
    the home lives on a partition host that iCloud can change (ICLOUD.md). A 5xx is an answer:
    the server is busy or asks to wait, and the network is not to blame."""
    if isinstance(failure, Unavailable) and failure.retry_after:  # asked to wait: no more requests now
        return (
            f"{failure.message}: the server asked to wait {failure.retry_after:.0f} s, so the network is "
            "fine; calmirror waits that long and tries again by itself"
        )
    try:
        found = client.discover()
    except RemoteError as unanswered:
        if isinstance(unanswered, Unavailable):
            return (
                f"{unanswered.message}: the server answered, so the network is fine; it is busy or down "
                "for now, and calmirror tries again by itself"
            )
        # The stored server URL, not the config's (read only when connecting), is the one asked.
        again = "`calmirror connect --again" + ("" if acct.name == PRIMARY else f" --name {acct.name}")
        return f"{unanswered.message}; check the network, or give the server's new URL: {again} --server URL`"
    front = host_of(acct.server)
    if found.home_url != acct.home_url:
        return (
            f"{failure.message}; {front} now keeps your calendars on {host_of(found.home_url)}: "
            f"the daemon follows it by itself, or run {again}"
        )
    return (
        f"{failure.message}; {front} answers, so your network is fine: the server for your "
        f"calendars ({host_of(acct.home_url)}) has a problem; calmirror retries and asks {front} again"
    )


def check_store(home: Home) -> Check:
    for folder in (home.data_dir, home.store_dir, home.secrets_dir):
        if not folder.exists():
            return Check("local store", True, f"{folder} will be created at first start")
        if problem := _private(folder, folder=True):
            return Check("local store", False, problem)
    try:
        # An empty file still fits on a full disk; one byte, synced, does not.
        with tempfile.NamedTemporaryFile(dir=home.store_dir) as probe:
            probe.write(b"x")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        return Check("local store", False, f"{home.store_dir} is not writable ({exc.strerror})")
    return Check("local store", True, f"{home.store_dir} private and writable")


def check_watcher(home: Home) -> Check:
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    seen = threading.Event()

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: object) -> None:
            seen.set()

    try:
        folder = tempfile.TemporaryDirectory(dir=home.data_dir if home.data_dir.exists() else None)
    except OSError as exc:  # a read-only or full home: say so, and let the other checks run
        return Check("watcher", False, f"not checked: cannot make a folder to watch ({exc.strerror})")
    with folder as tmp:
        observer = Observer()
        try:
            observer.schedule(Handler(), tmp, recursive=False)
            observer.start()
        except OSError as exc:
            observer.stop()
            return Check("watcher", False, f"cannot watch files ({exc.strerror}); raise fs.inotify.max_user_watches")
        try:
            (Path(tmp) / "probe.ics").write_text("x")
            noticed = seen.wait(3)
        except OSError as exc:  # a full disk, not the watcher: say so rather than blame inotify
            return Check("watcher", False, f"not checked: cannot write a file to watch ({exc.strerror})")
        finally:
            observer.stop()
            observer.join(3)
    if not noticed:
        return Check("watcher", False, "file changes are not noticed; pushes then wait for the periodic scan")
    return Check("watcher", True, "file changes are noticed at once")


def check_disk(home: Home) -> Check:
    target = home.data_dir if home.data_dir.exists() else home.data_dir.parent
    while not target.exists():
        target = target.parent
    free = shutil.disk_usage(target).free
    if free < MIN_FREE_BYTES:
        return Check("disk", False, f"only {free // 2**20} MB free under {target}; free some space")
    return Check("disk", True, f"{free // 2**30} GB free")


def check_daemon(home: Home, state: State) -> Check:
    if control.read_pid(home.pid_file) is None:
        return Check("daemon", True, "not running (start it with `calmirror run` or systemd)")
    url = state.get_meta("local_url")
    answer = loopback.ask("OPTIONS", str(url), timeout=5)
    if answer is None:
        return Check("daemon", False, f"running but {url} does not answer; see the log")
    return Check("daemon", answer.status < 500, f"running, {url} answers")


def check_mirrors(state: State) -> Check:
    """What the mirrors hold that local clients cannot see: withheld objects still count as
    busy (fine, but worth saying why); unreadable ones are not iCalendar at all, so busy time
    may be missing (a problem)."""
    names = state.calendar_names()
    withheld: list[str] = []
    unreadable: list[str] = []
    for row in state.mirrors():
        counts = state.copy_counts(row.calendar_id)
        name = names.get(row.calendar_id, row.calendar_id)
        for kind, found in (("withheld", withheld), ("unreadable", unreadable)):
            for reason, n in sorted(counts[kind].items()):
                found.append(f"{name}: {n} × {reason}")
    if unreadable:
        return Check(
            "mirrors",
            False,
            "not iCalendar, so their busy time may be missing (fix or delete them in iCloud): " + "; ".join(unreadable),
        )
    if withheld:
        return Check("mirrors", True, "withheld from local clients, their busy time counted: " + "; ".join(withheld))
    return Check("mirrors", True, "every mirrored object is shown to local clients")


def check_unit() -> Check:
    for unit in UNIT_PLACES:
        if unit.exists():
            return Check("systemd", True, f"{unit} installed")
    return Check("systemd", True, "no unit installed (see README: systemd)")


def run_checks(home: Home, progress: Callable[[Check], None] | None = None) -> list[Check]:
    checks: list[Check] = []

    def add(check: Check) -> None:
        checks.append(check)
        if progress:
            progress(check)

    first, settings = check_config(home)
    add(first)
    add(check_disk(home))
    add(check_store(home))
    add(check_watcher(home))
    add(check_unit())
    if settings is None:
        return checks
    if not home.state_db.exists():
        add(Check("credentials", False, "nothing set up yet; run `calmirror connect --apple-id EMAIL`"))
        return checks
    try:
        state = State(home.state_db)
    except LocalError as unopened:  # a read-only home: a check that fails, not the end of doctor
        add(Check("state", False, unopened.message))
        return checks
    try:
        add(check_credentials(home, settings, state))
        if state.account() is None:
            add(check_icloud(home, settings, state))
        for acct in state.accounts():  # every account, each by its name
            add(check_icloud(home, settings, state, acct.name))
        add(check_mirrors(state))
        add(check_daemon(home, state))
    finally:
        state.close()
    return checks
