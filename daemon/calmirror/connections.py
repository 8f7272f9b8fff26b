"""One connection per account: its client, its health and its healer.

Each account is its own server with its own password, so a 401 or a Retry-After from one
holds only that one; the others' mirrors and pushes go on. The first account's client is
owned by the caller (the daemon's loops and `calmirror sync` open and close it, as they did
before there were more); the named accounts' clients are opened here on first use, one per
thread, and kept until a `reset` (a reload may bring new passwords) or `close`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from calmirror import account
from calmirror.config import Settings
from calmirror.health import Health
from calmirror.home import Home
from calmirror.model import PRIMARY
from calmirror.reconnect import Healer
from calmirror.remote import ICloudClient
from calmirror.state import State


@dataclass(frozen=True)
class Connection:
    name: str
    client: ICloudClient
    health: Health
    healer: Healer | None


class Connections:
    def __init__(self, home: Home, settings: Settings, state: State) -> None:
        self.home, self.settings, self.state = home, settings, state
        self._lock = threading.Lock()
        self._health: dict[str, Health] = {}
        self._healers: dict[str, Healer] = {}
        # (account, thread id) -> (generation, client): a session per thread, replaced by its
        # own thread after a reload, so no thread's request in flight is cut by another.
        self._clients: dict[tuple[str, int], tuple[int, ICloudClient]] = {}
        self._generation = 0

    def health(self, name: str = PRIMARY) -> Health:
        with self._lock:
            if name not in self._health:
                self._health[name] = Health(self.state, name)
            return self._health[name]

    def healer(self, name: str = PRIMARY) -> Healer:
        with self._lock:
            if name not in self._healers:
                self._healers[name] = Healer(self.state, account=name)
            return self._healers[name]

    def names(self) -> list[str]:
        return [a.name for a in self.state.accounts()]

    def connection(self, name: str, first: ICloudClient | None) -> Connection | None:
        """The connection to account `name`; for the first account, over `first` (None: not
        available). Raises when a named account's password cannot be loaded."""
        if name == PRIMARY:
            client = first
        else:
            key = (name, threading.get_ident())
            with self._lock:
                held, generation = self._clients.get(key), self._generation
            if held is not None and held[0] != generation:
                held[1].close()
                held = None
            if held is None:
                credentials = self.health(name).generation  # read before the password is loaded
                held = (generation, account.client_for(self.home, self.settings, self.state, name, credentials))
                with self._lock:
                    self._clients[key] = held
            client = held[1]
        if client is None:
            return None
        return Connection(name, client, self.health(name), self.healer(name))

    def account_of_url(self, url: str) -> str:
        """The account whose home holds `url` (an appointment's remote calendar), else the first."""
        for acct in self.state.accounts():
            if acct.home_url and url.startswith(acct.home_url):
                return acct.name
        return PRIMARY

    def renew_credentials(self) -> None:
        """A reconnect may have stored new passwords: from now on a 401 to a request sent
        before is stale (`Health.failed`). Called before any client is renewed, so a client
        made after it always counts as current."""
        with self._lock:
            healths = list(self._health.values())
        for health in healths:
            health.renew_credentials()

    def reset(self) -> None:
        """Have each thread open its named accounts' clients again (a reload may carry new
        passwords) and let each account's health try again after a refused password."""
        with self._lock:
            self._generation += 1
            healths = list(self._health.values())
        for health in healths:
            health.reset_auth()

    def close(self) -> None:
        with self._lock:
            clients, self._clients = [client for _, client in self._clients.values()], {}
        for client in clients:
            client.close()
