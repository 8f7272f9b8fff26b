"""Security promises, checked against the real daemon.

- It listens on loopback only unless `server.allow_non_loopback` says otherwise.
- Every request without the right login is answered 401 and learns nothing.
- No write of any kind reaches a mirror, however the path is spelt.
- No secret (the iCloud app-specific password, the local password, or either as a Basic
  header) appears in the logs (debug level), `status`, any `--json` output, the state
  database, the store, the process arguments or the environment of the daemon and of
  every child it starts.
- Config, state and secret files are 0600 and folders 0700, everything in the home is
  private.
- XML with a DOCTYPE or entities is refused by the local server (400) and by the client
  (a multistatus from "iCloud" carrying one is never parsed with it, and nothing external
  is fetched): `test_xml_entities.py`.

More single-purpose checks of the same promises live in `test_local_server.py` (refused
non-loopback hosts, write methods on a mirror, XML bodies) and `test_cli_foundation.py`
(`run` refuses 0.0.0.0, the secret file's mode, no secret in CLI errors).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from calmirror.emulator import Emulator
from calmirror.home import Home
from calmirror.state import State
from tests.helpers import APP_PASSWORD, APPLE_ID, Running, connected_home, engine_for, event, wait_for
from tests.hostile_corpus import good_event

NEW_ICLOUD_PASSWORD = "qrst-qrst-qrst-qrst"


def secrets_of(local_user: str, local_password: str) -> dict[str, bytes]:
    def basic(user: str, password: str) -> bytes:
        return base64.b64encode(f"{user}:{password}".encode())

    return {
        "icloud password": APP_PASSWORD.encode(),
        "icloud password (new)": NEW_ICLOUD_PASSWORD.encode(),
        "local password": local_password.encode(),
        "icloud basic header": basic(APPLE_ID, APP_PASSWORD),
        "local basic header": basic(local_user, local_password),
    }


def leaks(data: bytes | str, secrets: dict[str, bytes]) -> list[str]:
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    return [name for name, secret in secrets.items() if secret in raw]


# --- loopback ---------------------------------------------------------------------------------


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on `port`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                if len(address) == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
                else:
                    words = [bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, 32, 8)]
                    found.add(socket.inet_ntop(socket.AF_INET6, b"".join(words)))
    return found


def test_the_daemon_listens_on_loopback_only(running: Running) -> None:
    port = int(running.url.rsplit(":", 1)[1].strip("/"))
    addresses = listening_addresses(port)
    if not addresses:
        pytest.skip("/proc/net/tcp is not readable here")
    assert addresses == {"127.0.0.1"}
    assert running.daemon.settings.server.allow_non_loopback is False


def test_a_non_loopback_address_needs_the_explicit_opt_in(tmp_path: Path) -> None:
    from calmirror.daemon import Daemon
    from calmirror.errors import CalmirrorError

    home = Home(config_file=tmp_path / "config.toml", data_dir=tmp_path)
    home.ensure()
    home.config_file.write_text("[server]\nhost = '0.0.0.0'\nport = 0\n", encoding="utf-8")
    from calmirror import config

    with pytest.raises(CalmirrorError, match="allow_non_loopback"):
        config.load(home.config_file)
    home.config_file.write_text("[server]\nhost = '0.0.0.0'\nport = 0\nallow_non_loopback = true\n", encoding="utf-8")
    ready: list[str] = []
    daemon = Daemon(home, config.load(home.config_file), on_ready=ready.append)
    import threading

    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: bool(ready), 30)
        port = int(daemon.url.rsplit(":", 1)[1].strip("/"))
        addresses = listening_addresses(port)
        assert not addresses or addresses == {"0.0.0.0"}  # all interfaces, because it was asked for
    finally:
        daemon.stop()
        thread.join(15)


# --- authentication ---------------------------------------------------------------------------


def test_every_request_without_the_right_login_is_401_and_learns_nothing(running: Running) -> None:
    user, password = running.auth
    base = f"{running.url}{user}/"
    assert running.put("secret.ics", event("secret-1", "Secret meeting with Bob")).status_code == 201
    freebusy = (
        '<?xml version="1.0"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
        '<C:time-range start="20261201T000000Z" end="20261202T000000Z"/></C:free-busy-query>'
    )
    query = (
        '<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        '<D:prop><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"/></C:filter>'
        "</C:calendar-query>"
    )
    targets: list[tuple[str, str, str | None]] = [
        ("PROPFIND", running.url, None),
        ("PROPFIND", base, None),
        ("PROPFIND", base + "appointments/", None),
        ("GET", base + "appointments/secret.ics", None),
        ("GET", base + "icloud-home/", None),
        ("REPORT", base + "appointments/", query),
        ("REPORT", base + "appointments/", freebusy),
        ("REPORT", base + "icloud-work/", query),
        ("PUT", base + "appointments/x.ics", event("x", "Intruder")),
        ("PUT", base + "blocked/x.ics", event("y", "Intruder")),
        ("DELETE", base + "appointments/secret.ics", None),
        (
            "PROPPATCH",
            base + "appointments/",
            '<propertyupdate xmlns="DAV:"><set><prop><displayname>Pwned</displayname></prop></set></propertyupdate>',
        ),
        ("MKCALENDAR", base + "evil/", None),
        ("MOVE", base + "appointments/secret.ics", None),
    ]
    logins: list[dict[str, str]] = [
        {},
        {"Authorization": "Basic " + base64.b64encode(f"{user}:wrong".encode()).decode()},
        {"Authorization": "Basic " + base64.b64encode(f"eve:{password}".encode()).decode()},
        {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}x".encode()).decode()},
        {"Authorization": "Basic " + base64.b64encode(f"{user}:".encode()).decode()},
        {"Authorization": "Basic " + base64.b64encode(user.encode()).decode()},
        {"Authorization": "Basic !!!not-base64!!!"},
        {"Authorization": f"Bearer {password}"},
        {"Authorization": "Basic " + base64.b64encode(f"{user.upper()}:{password}".encode()).decode()},
        {"Authorization": "Basic " + base64.b64encode(f"{user}:{password.upper()}".encode()).decode()},
    ]

    def attempt(job: tuple[tuple[str, str, str | None], dict[str, str]]) -> tuple[str, int, str]:
        (method, target, body), headers = job
        extra = {"Depth": "1", "Destination": base + "appointments/moved.ics", **headers}
        answer = requests.request(method, target, data=body, headers=extra, timeout=30)
        return f"{method} {target} {headers}", answer.status_code, answer.text

    jobs = [(t, h) for t in targets for h in logins]
    with ThreadPoolExecutor(max_workers=32) as pool:  # Radicale waits ~1 s before each 401
        results = list(pool.map(attempt, jobs))
    wrong = [(what, code) for what, code, _ in results if code != 401]
    assert not wrong, wrong
    for what, _, text in results:
        assert "Secret meeting" not in text and "BEGIN:VCALENDAR" not in text and "BUSY" not in text, what
    assert requests.get(base + "appointments/secret.ics", auth=running.auth, timeout=10).status_code == 200
    assert requests.get(base + "appointments/x.ics", auth=running.auth, timeout=10).status_code == 404


# --- mirrors ------------------------------------------------------------------------------------


def test_no_spelling_of_a_mirror_path_lets_a_write_through(running: Running) -> None:
    user = running.auth[0]
    store = running.daemon.engine.store
    before = store.etags("icloud-home")
    item = next(iter(before))
    spellings = [
        f"/{user}/icloud-home/new.ics",
        f"/{user}//icloud-home/new.ics",
        f"/{user}/./icloud-home/new.ics",
        f"/{user}/appointments/../icloud-home/new.ics",
        f"/{user}/icloud%2Dhome/new.ics",
        f"/{user}/icloud-home/{item}",
        f"/{user}/icloud-home/%2e%2e/icloud-home/new.ics",
        f"//{user}/icloud-home/new.ics",
        f"/{user}/icloud-home/new.ics?x=1",
    ]
    answers = {}
    for path in spellings:
        target = running.url.rstrip("/") + path
        answers[f"PUT {path}"] = requests.put(
            target,
            data=event("intruder", "Intruder").encode(),
            auth=running.auth,
            headers={"Content-Type": "text/calendar"},
            timeout=10,
        ).status_code
        answers[f"DELETE {path}"] = requests.delete(target, auth=running.auth, timeout=10).status_code
    assert running.put("mine.ics", event("mine-1", "Mine")).status_code == 201
    for destination in (
        f"/{user}/icloud-home/moved.ics",
        f"/{user}/icloud%2Dhome/moved.ics",
        f"/{user}/appointments/../icloud-home/moved.ics",
        f"http://evil.example{running.url[running.url.index('/', 8) :]}{user}/icloud-home/m.ics",
    ):
        answers[f"MOVE -> {destination}"] = requests.request(
            "MOVE",
            running.href("appointments", "mine.ics"),
            auth=running.auth,
            timeout=10,
            headers={
                "Destination": destination if destination.startswith("http") else running.url.rstrip("/") + destination
            },
        ).status_code
    for method in ("PROPPATCH", "MKCOL", "MKCALENDAR", "DELETE", "POST", "LOCK", "ACL"):
        answers[f"{method} collection"] = requests.request(
            method, f"{running.url}{user}/icloud-home/", auth=running.auth, timeout=10
        ).status_code
    allowed = [(what, code) for what, code in answers.items() if code < 400]
    assert not allowed, allowed
    assert store.etags("icloud-home") == before
    assert not [b for b in store.items("appointments").values() if "intruder" in b]


# --- secrets ----------------------------------------------------------------------------------


def cli(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CALMIRROR_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "calmirror", *args], env=env, capture_output=True, text=True, input=stdin, timeout=120
    )


def meta(home: Path, key: str) -> Any:
    state = State(home / "state.db")
    try:
        return state.get_meta(key)
    finally:
        state.close()


def proc_text(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            children = proc_text(current, f"task/{task.name}/children").split()
            for child in children:
                found.append(int(child))
                todo.append(int(child))
    return found


@pytest.fixture(scope="module")
def daemon_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A home set up through the CLI, a `calmirror --verbose run` child with activity of every kind
    (pushes, mirror passes, a 503, a bad local login, a hostile PUT, iCloud revoking the password),
    and everything a user or another process could see collected along the way."""
    home = tmp_path_factory.mktemp("secure") / "home"
    seen: dict[str, bytes] = {}
    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="sample") as emu:
        assert (
            cli(
                home,
                "connect",
                "--apple-id",
                APPLE_ID,
                "--password-stdin",
                "--server",
                emu.url,
                stdin=APP_PASSWORD + "\n",
            ).returncode
            == 0
        )
        assert cli(home, "link", "Work").returncode == 0
        assert cli(home, "conflicts", "add", "Home").returncode == 0
        with (home / "config.toml").open("a", encoding="utf-8") as handle:
            handle.write("\n[server]\nport = 0\n[sync]\ninterval = 5\n[push]\nmax_backoff = 1\n")
        log = home.parent / "daemon.log"
        env = {**os.environ, "CALMIRROR_HOME": str(home)}
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "calmirror", "--verbose", "run"], env=env, stdout=sink, stderr=subprocess.STDOUT
            )
        try:
            assert wait_for(lambda: (home / "daemon.pid").exists() and bool(meta(home, "local_url")), 30, every=0.1)
            account = json.loads(cli(home, "local-account", "--json").stdout)
            auth = (account["username"], account["password"])
            base = f"{account['url']}{auth[0]}/appointments/"

            def put(name: str, body: str, login: tuple[str, str] = auth) -> int:
                return requests.put(
                    base + name, data=body.encode(), auth=login, timeout=30, headers={"Content-Type": "text/calendar"}
                ).status_code

            assert put("a.ics", event("sec-1", "Pushed")) == 201
            assert wait_for(lambda: any("UID:sec-1" in b for b in emu.items(emu.calendar_id("Work")).values()), 10)
            assert put("b.ics", event("sec-2", "Wrong login"), (auth[0], "not-the-password")) == 401
            assert put("c.ics", "BEGIN:VCALENDAR\r\nthis is not iCalendar\r\nEND:VCALENDAR\r\n") == 400
            emu.faults.fail(count=1, status=503, retry_after=1)
            assert cli(home, "sync", "--now").returncode == 0
            time.sleep(2)
            for pid in [proc.pid, *descendants(proc.pid)]:
                seen[f"cmdline of {pid}"] = proc_text(pid, "cmdline")
                seen[f"environ of {pid}"] = proc_text(pid, "environ")
            emu.set_password(NEW_ICLOUD_PASSWORD)  # revoked in iCloud: 401s from now on
            assert put("d.ics", event("sec-3", "After the revocation")) == 201
            assert wait_for(lambda: (meta(home, "health") or {}).get("state") == "auth_failed", 15, every=0.1)
            commands = [
                ("status",),
                ("status", "--json"),
                ("sync", "--json"),
                ("outbox", "list", "--json"),
                ("calendars", "--json", "--cached"),
                ("conflicts", "list", "--json"),
                ("doctor", "--json"),
                ("availability", "--from", "2026-12-01", "--to", "2026-12-02", "--json"),
                ("sync",),
            ]
            with ThreadPoolExecutor(max_workers=3) as pool:
                for args, done in zip(commands, pool.map(lambda a: cli(home, *a), commands), strict=True):
                    seen[f"calmirror {' '.join(args)}"] = (done.stdout + done.stderr).encode()
                    assert "Traceback" not in done.stderr, (args, done.stderr)
            seen["local-account (control: it must show the password)"] = b""
            assert auth[1] in cli(home, "local-account").stdout
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        seen["daemon log"] = log.read_bytes()
        yield {"home": home, "seen": seen, "auth": auth, "log": seen["daemon log"].decode("utf-8", "replace")}


def test_no_secret_in_logs_status_json_arguments_or_environment(daemon_home: dict[str, Any]) -> None:
    user, password = daemon_home["auth"]
    secrets = secrets_of(user, password)
    seen: dict[str, bytes] = daemon_home["seen"]
    assert "DEBUG" in daemon_home["log"] and "push create sec-1" in daemon_home["log"]  # it did log, verbosely
    assert "iCloud refused the password" in daemon_home["log"] or "401" in daemon_home["log"]
    assert any(name.startswith("environ of") and data for name, data in seen.items())
    found = {name: leaks(data, secrets) for name, data in seen.items() if leaks(data, secrets)}
    assert not found, found


def test_no_secret_in_any_file_but_the_secrets_folder(daemon_home: dict[str, Any]) -> None:
    home: Path = daemon_home["home"]
    user, password = daemon_home["auth"]
    secrets = secrets_of(user, password)
    found = {}
    for path in home.rglob("*"):
        if path.is_file() and "secrets" not in path.relative_to(home).parts:
            hits = leaks(path.read_bytes(), secrets)
            if hits:
                found[str(path.relative_to(home))] = hits
    assert not found, found
    assert (home / "secrets" / "icloud-password").read_text().strip() == APP_PASSWORD


def test_config_state_and_secret_files_are_0600_and_folders_0700(daemon_home: dict[str, Any]) -> None:
    home: Path = daemon_home["home"]
    for name in ("config.toml", "state.db", "secrets/icloud-password", "secrets/local-account.json"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name
    for name in (".", "secrets", "store"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o700, name
    loose = [
        (str(p.relative_to(home)), oct(stat.S_IMODE(p.lstat().st_mode)))
        for p in [home, *home.rglob("*")]
        if not p.is_symlink() and stat.S_IMODE(p.lstat().st_mode) & 0o077
    ]
    assert not loose, loose


def test_children_get_no_secret(tmp_path: Path, emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The only children calmirror starts are `calmirror.local.items_worker` processes that check a
    big batch of mirrored objects (`check_pool.WORTH_A_POOL` or more in one `apply_mirror`).
    Started from an engine that holds both passwords, their argv and environment, as actually passed, hold no secret."""
    home = connected_home(tmp_path, emu, conflicts=("Home",))
    started: list[tuple[Any, dict[str, str] | None]] = []
    original = subprocess.Popen.__init__

    def spy(self: subprocess.Popen[Any], args: Any, *rest: Any, **kw: Any) -> None:
        started.append((args, kw.get("env")))
        original(self, args, *rest, **kw)

    monkeypatch.setattr(subprocess.Popen, "__init__", spy)
    engine = engine_for(home)
    client = engine.client()  # the iCloud password is loaded
    try:
        assert engine.mirror_pass(client)[0].error is None
        writes = [(f"bulk-{n}.ics", good_event(n).replace("good-", "bulk-")) for n in range(1600)]
        assert engine.store.apply_mirror("home", writes, []) == []
    finally:
        client.close()
        engine.state.close()
    assert started, "no child process was started; the test proves nothing"
    secrets = secrets_of(engine.local_account.username, engine.local_account.password)
    for args, env in started:
        text = json.dumps([list(args) if not isinstance(args, str) else args, env or dict(os.environ)])
        assert not leaks(text, secrets), args
    assert not leaks(json.dumps(dict(os.environ)), secrets)
