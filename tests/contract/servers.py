"""The CalDAV servers the remote contract runs over, all in-process on 127.0.0.1 with a free port.

- `emulator`: calmirror's own iCloud stand-in (front host plus a partition host).
- `radicale`: a plain Radicale, started the way its own `radicale.server.serve` runs, with
  htpasswd logins and `owner_only` rights; nothing of calmirror's local server in front.
- `xandikos`: Xandikos's WSGI/aiohttp app behind its own Basic-auth middleware (the one its
  `--htpasswd` flag installs), on an aiohttp runner in a thread.

Each server offers `new_calendar()`: a fresh, empty, writable VEVENT calendar, so tests on one
server share nothing but the process. `Quirks` names where a server legitimately differs, so a
contract test states the difference instead of weakening its assertion.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.helpers import APP_PASSWORD, APPLE_ID

SERVERS = ("emulator", "radicale", "xandikos")

MKCALENDAR = """<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop>
    <D:displayname>{name}</D:displayname>
    <C:supported-calendar-component-set><C:comp name="VEVENT"/></C:supported-calendar-component-set>
  </D:prop></D:set>
</C:mkcalendar>"""


@dataclass(frozen=True)
class Quirks:
    """How a server legitimately differs from the others, as the contract tests assert it."""

    #: The calendar home is on another host than the URL the user gives (iCloud's partition).
    home_on_other_host: bool = False


@dataclass
class Server:
    name: str
    url: str
    username: str
    password: str
    new_calendar: Callable[[str], str]
    quirks: Quirks = field(default_factory=Quirks)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_accepting(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port}")


def mkcalendar(url: str, auth: tuple[str, str], name: str) -> str:
    response = requests.request(
        "MKCALENDAR",
        url,
        data=MKCALENDAR.format(name=name).encode(),
        auth=auth,
        headers={"Content-Type": "application/xml; charset=utf-8"},
        timeout=10,
    )
    if response.status_code != 201:
        raise RuntimeError(f"MKCALENDAR {url}: {response.status_code}")
    return url


# --- the three servers -------------------------------------------------------------------------


@contextmanager
def emulator_server() -> Iterator[Server]:
    from calmirror.emulator import Emulator

    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="empty") as emu:

        def new_calendar(name: str) -> str:
            return emu.calendar_url(emu.create_calendar(name))

        quirks = Quirks(home_on_other_host=True)
        yield Server("emulator", emu.url, APPLE_ID, APP_PASSWORD, new_calendar, quirks)


@contextmanager
def radicale_server(root: Path) -> Iterator[Server]:
    """Radicale 3.9 as its own `serve()` runs it: defaults only, htpasswd (plain), owner_only."""
    import radicale.config
    import radicale.server

    user = "contract"
    htpasswd = root / "htpasswd"
    htpasswd.write_text(f"{user}:{APP_PASSWORD}\n", encoding="utf-8")
    port = free_port()
    configuration = radicale.config.load([])
    configuration.update(
        {
            "server": {"hosts": f"127.0.0.1:{port}"},
            "auth": {"type": "htpasswd", "htpasswd_filename": str(htpasswd), "htpasswd_encryption": "plain"},
            "rights": {"type": "owner_only"},
            "storage": {"filesystem_folder": str(root / "collections")},
            "web": {"type": "none"},
        },
        "contract",
    )
    shutdown, shutdown_other = socket.socketpair()
    thread = threading.Thread(
        target=radicale.server.serve, args=(configuration, shutdown_other), name="radicale", daemon=True
    )
    thread.start()
    try:
        wait_accepting(port)
        base = f"http://127.0.0.1:{port}/"

        def new_calendar(name: str) -> str:
            return mkcalendar(f"{base}{user}/{uuid.uuid4()}/", (user, APP_PASSWORD), name)

        yield Server("radicale", base, user, APP_PASSWORD, new_calendar)
    finally:
        shutdown.close()
        thread.join(10)
        shutdown_other.close()


@contextmanager
def xandikos_server(root: Path) -> Iterator[Server]:
    """Xandikos with its own Basic-auth middleware against an htpasswd file ({SHA} entry)."""
    from aiohttp import web
    from xandikos import htpasswd as xandikos_htpasswd
    from xandikos import web as xandikos_web

    user = "contract"
    digest = base64.b64encode(hashlib.sha1(APP_PASSWORD.encode()).digest()).decode()
    htpasswd = root / "htpasswd"
    htpasswd.write_text(f"{user}:{{SHA}}{digest}\n", encoding="utf-8")
    principal = "/user/"
    backend = xandikos_web.SingleUserFilesystemBackend(str(root / "data"))
    backend._mark_as_principal(principal)
    (root / "data").mkdir()
    backend.create_principal(principal, create_defaults=True)
    dav = xandikos_web.XandikosApp(backend, current_user_principal=principal)

    async def handler(request: web.Request) -> web.StreamResponse:
        return await dav.aiohttp_handler(request, "/")  # type: ignore[no-any-return]

    app = web.Application(
        middlewares=[xandikos_web.basic_auth_middleware(xandikos_htpasswd.HtpasswdFile(str(htpasswd)))]
    )
    for path in xandikos_web.WELLKNOWN_DAV_PATHS:
        app.router.add_route("*", path, xandikos_web.RedirectDavHandler("/").__call__)
    app.router.add_route("*", "/{path_info:.*}", handler)

    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = int(runner.addresses[0][1])
    thread = threading.Thread(target=loop.run_forever, name="xandikos", daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}/"

        def new_calendar(name: str) -> str:
            return mkcalendar(f"{base}user/calendars/{uuid.uuid4()}/", (user, APP_PASSWORD), name)

        yield Server("xandikos", base, user, APP_PASSWORD, new_calendar)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextmanager
def start(name: str, root: Path) -> Iterator[Server]:
    if name == "emulator":
        with emulator_server() as server:
            yield server
    elif name == "radicale":
        with radicale_server(root) as server:
            yield server
    elif name == "xandikos":
        with xandikos_server(root) as server:
            yield server
    else:
        raise ValueError(name)
