"""The daemon: local server, change watcher, push worker and mirror loop in one process.

Threads, each with one job: Radicale's request threads (clients), the push worker (wakes
on every local change, drains the outbox), the mirror loop (every interval, or at once on
SIGUSR1), the `busy/` keeper (wakes on any change, debounced, and when its horizon moves),
the time-range index keeper (warms a mirror's index once its changes settle), and the main
thread (signals, systemd watchdog). A stop lets the write in flight finish for up to 8 s;
anything cut short is retried at the next start.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable

from calmirror import config, control, interpreter, logs
from calmirror.arenas import limit_malloc_arenas
from calmirror.availability.busy_calendar import BusyCalendar
from calmirror.availability.far_checks import FarChecks
from calmirror.availability.guard import GuardNotes, make_freebusy, make_guard
from calmirror.availability.sources import BusySources
from calmirror.engine import Engine
from calmirror.errors import CalmirrorError, NotConnected
from calmirror.feeds import FeedPoller
from calmirror.home import Home
from calmirror.local.layout import APPOINTMENTS, mirror_name
from calmirror.local.range_keeper import RangeKeeper
from calmirror.local.server import LocalServer
from calmirror.local.watcher import AppointmentWatcher
from calmirror.remote import ICloudClient
from calmirror.sdnotify import Notifier
from calmirror.signal_inbox import SignalInbox
from calmirror.state import State
from calmirror.state.ranges import RangeIndex
from calmirror.sync_report import LoggedProgress
from calmirror.web.app import page_for

log = logging.getLogger("calmirror.daemon")
STOP_GRACE_S = 8.0
NOT_CONNECTED_EVERY_S = 60.0
NOT_CONNECTED = "not connected: run `calmirror connect --apple-id EMAIL`"


class Daemon:
    def __init__(
        self,
        home: Home,
        settings: config.Settings,
        notifier: Notifier | None = None,
        on_ready: Callable[[str], None] | None = None,
    ) -> None:
        self.home, self.settings = home, settings
        self.notifier = notifier or Notifier()
        self.on_ready = on_ready
        self.stopping = threading.Event()
        self.push_wake = threading.Event()
        self.mirror_wake = threading.Event()
        self.feeds_wake = threading.Event()
        self.reload_requested = threading.Event()
        self._inbox: SignalInbox | None = None
        self._client_generation = 0
        self.url = ""
        self.not_connected_every = NOT_CONNECTED_EVERY_S
        self._said_not_connected: float | None = None  # monotonic time of the last warning
        self.progress = LoggedProgress(log.info)  # a long pass says how far it got

    # --- lifecycle -------------------------------------------------------------------------

    def run(self) -> int:
        limit_malloc_arenas()  # before the server's threads (`arenas`)
        interpreter.hand_over_often()  # a PUT's lane is not held through others' 5 ms turns
        self.home.ensure()
        self._lock = control.HomeLock(self.home.lock_file, self.home.pid_file, self.home.data_dir)
        self._lock.acquire()  # before anything touches the state or the store
        try:
            return self._run_locked()
        finally:
            self._lock.release()

    def _run_locked(self) -> int:
        self.state = State(self.home.state_db)
        recovered = self.state.recover_in_flight()
        if recovered:
            log.info("retrying %d write(s) a previous run left in flight", recovered)
        self.engine = Engine(self.home, self.settings, self.state)
        self.ranges = RangeIndex(self.home.ranges_db)
        acct = self.engine.local_account
        logs.redact(acct.password)
        s = self.settings.server
        self.server = LocalServer(
            self.home.store_dir,
            host=s.host,
            port=s.port,
            allow_non_loopback=s.allow_non_loopback,
            username=acct.username,
            password=acct.password,
            max_body_bytes=s.max_body_mb * 1024 * 1024,
            range_store=self.ranges,
        )
        self.server.on_change = self._local_change
        self.engine.linked.on_change = self._local_change  # iCloud's change written into appointments/
        self.busy = BusySources(self.engine.store, self.state, self.settings, notified=True)
        self.busy_calendar = BusyCalendar(self.busy, self.engine.store)
        self.engine.mirror.on_change = self._mirror_change
        self.range_keeper = RangeKeeper(self.server.warm_ranges)
        self.guard_notes = GuardNotes(self.state)  # the guard's warnings, written off the request path
        self.guard_notes.start()
        self.far_checks = FarChecks()  # checks of bookings past the busy index's horizon, in mode warn
        self.server.guard = make_guard(
            self.busy, self.state, lambda: self.settings.availability.guard, self.guard_notes, self.far_checks
        )
        self.server.bookings_one_at_a_time = lambda: self.settings.availability.guard == "reject"
        self.far_checks.resume(self.state.far_checks_owed())  # those a stop or crash interrupted: still owed
        self.server.freebusy = make_freebusy(self.busy)
        self.server.web = page_for(self)  # the page under /.calmirror/
        # Served before the first mirror pass, so local appointments work at once; every known
        # mirror exists by then (empty until the pass fills it), so none answers 404 meanwhile.
        self.engine.prepare_mirrors()
        self.feeds = FeedPoller(self.state, self.engine.store, self.settings)  # subscribed ICS feeds
        self.feeds.mirror.on_change = self._mirror_change
        self.feeds.prepare()
        self.url = self.server.start()
        self.state.set_meta("local_url", self.url)
        # Signals first: the record tells the world (systemd's helpers, scripts, tests) that
        # this process is the daemon, and a SIGTERM sent on seeing it must stop it cleanly.
        self._install_signals()
        control.write_record(self.home.pid_file, self.url)
        try:
            self.engine.linked.resume()  # before the detector could take a half-written change for a client's
            self.engine.detector.reconcile()
            self.watcher = AppointmentWatcher(
                self.engine.store.collection_dir(APPOINTMENTS), on_change=lambda: self._local_change(APPOINTMENTS)
            )
            self.watcher.start()
            threading.Thread(target=self._guard(self.busy.warm), name="busy-warm", daemon=True).start()
            threading.Thread(target=self._guard(self.busy_calendar.run), name="busy-calendar", daemon=True).start()
            threading.Thread(target=self._guard(self.range_keeper.run), name="ranges-warm", daemon=True).start()
            mirrors = {mirror_name(slug) for slug in self.engine.store.list_mirrors()}
            self.ranges.keep_only(mirrors)
            for name in mirrors:
                self.range_keeper.mark_changed(name)
            self._first_mirror_pass()
            threads = [
                threading.Thread(target=self._guard(self._push_loop), name="push", daemon=True),
                threading.Thread(target=self._guard(self._mirror_loop), name="mirror", daemon=True),
                threading.Thread(
                    target=self._guard(lambda: self.feeds.run(self.stopping, self.feeds_wake)),
                    name="feeds",
                    daemon=True,
                ),
            ]
            for t in threads:
                t.start()
            self.push_wake.set()
            self.notifier.send("READY=1", f"STATUS=Serving {self.url}")
            log.info("calmirror serving %s", self.url)
            self._say_if_not_connected()
            if self.on_ready:
                self.on_ready(self.url)
            self._main_loop(threads)
        finally:
            self._shutdown()
        return 0

    def _guard(self, loop: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                loop()
            except Exception:
                log.exception("worker crashed")

        return run

    def _main_loop(self, threads: list[threading.Thread]) -> None:
        interval = self.notifier.watchdog_interval() or 5.0
        while not self.stopping.is_set():
            if self._inbox is not None:
                self._act_on(self._inbox.wait(min(interval, 1.0)))
            else:
                self.stopping.wait(min(interval, 1.0))
            if self.stopping.is_set():
                break
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self._reload()
            self._say_if_not_connected()
            if all(t.is_alive() for t in threads):
                self.notifier.send("WATCHDOG=1")

    def _say_if_not_connected(self) -> None:
        """With no account the daemon still serves local calendars; a warning a minute (and
        systemd's STATUS) says why nothing reaches iCloud, so a service set up without
        `connect` is not silently useless."""
        now = time.monotonic()
        if self.state.account() is not None:
            if self._said_not_connected is not None:
                self._said_not_connected = None
                self.notifier.send(f"STATUS=Serving {self.url}")
            return
        if self._said_not_connected is not None and now - self._said_not_connected < self.not_connected_every:
            return
        self._said_not_connected = now
        log.warning("%s; serving local calendars only on %s", NOT_CONNECTED, self.url)
        self.notifier.send(f"STATUS=Serving {self.url}; {NOT_CONNECTED}")

    def _shutdown(self) -> None:
        self.notifier.send("STOPPING=1")
        self.stopping.set()
        self.push_wake.set()
        self.mirror_wake.set()
        self.feeds_wake.set()
        busy_calendar = getattr(self, "busy_calendar", None)
        if busy_calendar is not None:
            busy_calendar.stop()
        range_keeper = getattr(self, "range_keeper", None)
        if range_keeper is not None:
            range_keeper.stop()
        deadline = time.monotonic() + STOP_GRACE_S
        for name in ("push", "mirror", "feeds", "busy-calendar", "ranges-warm"):
            for t in threading.enumerate():
                if t.name == name:
                    t.join(max(0.0, deadline - time.monotonic()))
        watcher = getattr(self, "watcher", None)
        if watcher:
            watcher.stop()
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.connections.close()
        self.server.stop(timeout=max(0.5, deadline - time.monotonic()))
        left = self.far_checks.close(timeout=max(0.5, deadline - time.monotonic()))
        self.state.leave_far_checks(left)  # checked again at the next start
        self.guard_notes.close(timeout=max(0.5, deadline - time.monotonic()))  # before the state closes
        self.ranges.close()
        control.remove_record(self.home.pid_file)
        self.state.close()
        log.info("calmirror stopped")

    def stop(self) -> None:
        self.stopping.set()
        if self._inbox is not None:
            self._inbox.poke()

    # --- signals and reload ----------------------------------------------------------------

    def _install_signals(self) -> None:
        """Only on the main thread (an in-thread daemon in tests is stopped with `stop()`)."""
        if threading.current_thread() is threading.main_thread():
            self._inbox = SignalInbox((signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1))

    def _act_on(self, received: list[int]) -> None:
        for signum in received:
            if signum in (signal.SIGTERM, signal.SIGINT):
                self.stopping.set()
            elif signum == signal.SIGHUP:
                self.reload_requested.set()
            elif signum == signal.SIGUSR1:
                self.mirror_wake.set()
                self.feeds_wake.set()
                self.push_wake.set()

    def _reload(self) -> None:
        try:
            settings = config.load(self.home.config_file)
        except CalmirrorError as exc:
            log.error("reload refused, keeping the running config: %s", exc.message)
            return
        self.settings = settings
        # Clients are renewed before anything lifts a refused password's hold (engine.reload,
        # reset_auth), and a drain gives up a stale client as soon as it sees that (`_drain`):
        # a request sent with the old password once the hold is lifted would be refused again
        # and hold the account until the next reconnect. A request already in flight with the
        # old password is another matter: its 401 may arrive after all this, and is stale
        # (`Health.failed`) because every account's credentials generation moves first.
        self.engine.connections.renew_credentials()
        self._client_generation += 1
        self.engine.reload(settings)
        self.feeds.settings = settings
        self.busy.settings = settings
        self.busy_calendar.mark_changed()  # the busy rules may have changed
        self.engine.health.reset_auth()
        self.state.retry_pending_now()  # rows held for a calendar that is gone may have one now
        log.info("configuration reloaded")
        self.mirror_wake.set()
        self.feeds_wake.set()  # a feed added or removed by the CLI
        self.push_wake.set()

    def _local_change(self, collection: str) -> None:
        if collection == APPOINTMENTS:
            self.push_wake.set()
        self.busy.mark_changed(collection)  # indexed as it lands: the next guard check counts it
        self.busy_calendar.mark_changed(collection)

    def _mirror_change(self, collection: str) -> None:
        self.range_keeper.mark_changed(collection)
        self.busy.mark_changed(collection)
        self.busy_calendar.mark_changed(collection)

    # --- workers ---------------------------------------------------------------------------

    def _client(self, current: tuple[int, ICloudClient] | None) -> tuple[int, ICloudClient] | None:
        if current and current[0] == self._client_generation:
            return current
        if current:
            current[1].close()
        try:
            return self._client_generation, self.engine.client()
        except NotConnected:
            return None
        except CalmirrorError as exc:
            log.error("%s", exc.message)
            return None

    def _drain(self, held: tuple[int, ICloudClient] | None) -> None:
        """Push what is due over `held`, until a reload makes it stale (it may carry a new
        password) or the daemon stops."""

        def should_stop() -> bool:
            return self.stopping.is_set() or (held is not None and held[0] != self._client_generation)

        self.engine.pusher.drain(held[1] if held else None, should_stop=should_stop)

    def _shortest_hold(self) -> float:
        """The mirror loop waits out a Retry-After only when every account asked for one."""
        connections = self.engine.connections
        return min((connections.health(name).wait_time() for name in connections.names()), default=0.0)

    def _first_mirror_pass(self) -> None:
        if self.state.account() is None:
            return
        held = self._client(None)
        try:
            self.engine.mirror_pass(held[1] if held else None, progress=self.progress)
        finally:
            if held:
                held[1].close()

    def _push_loop(self) -> None:
        held: tuple[int, ICloudClient] | None = None
        while not self.stopping.is_set():
            self.push_wake.clear()
            try:
                self.engine.detector.scan()
                held = self._client(held)
                if self.state.account() is not None:
                    self._drain(held)
            except CalmirrorError as exc:
                log.error("push: %s", exc.message)
            due = self.state.next_due()
            wait = 5.0 if due is None else min(5.0, max(0.05, due - time.time()))
            wait = max(wait, self.engine.health.wait_time()) if due is not None else wait
            self.push_wake.wait(wait)
        if held:
            held[1].close()

    def _mirror_loop(self) -> None:
        held: tuple[int, ICloudClient] | None = None
        while not self.stopping.is_set():
            s = self.settings.sync
            delay = s.interval * random.uniform(1 - s.jitter, 1 + s.jitter)
            delay = max(delay, self._shortest_hold())
            self.mirror_wake.wait(delay)
            self.mirror_wake.clear()
            if self.stopping.is_set():
                break
            held = self._client(held)
            if self.state.account() is None:
                self.engine.mirror.prune()  # a disconnect leaves the account's mirrors to go
                continue
            try:
                self.engine.mirror_pass(held[1] if held else None, progress=self.progress)
            except CalmirrorError as exc:
                log.error("mirror: %s", exc.message)
        if held:
            held[1].close()
