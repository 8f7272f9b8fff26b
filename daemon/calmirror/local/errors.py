"""Errors of the local store and server, as subclasses of the shared `LocalError` tree."""

from __future__ import annotations

from calmirror.errors import LocalError, LocalServerError

ALLOW_NON_LOOPBACK_KEY = "server.allow_non_loopback"


class StoreError(LocalError):
    """The Radicale store folder cannot be opened, read or written."""


class CollectionMissing(LocalError):
    """A collection the caller expected (a mirror not yet created, say) does not exist."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the local calendar {name!r} does not exist")
        self.name = name


class NonLoopbackHost(LocalServerError):
    """A listen address off this machine was asked for without the explicit opt-in."""

    def __init__(self, host: str) -> None:
        super().__init__(
            f"refusing to serve the calendar store on non-loopback address {host!r}; "
            f"set {ALLOW_NON_LOOPBACK_KEY} = true to allow it"
        )
        self.host = host
        self.key = ALLOW_NON_LOOPBACK_KEY


class AddressInUse(LocalServerError):
    def __init__(self, host: str, port: int) -> None:
        super().__init__(f"cannot listen on {host}:{port}: the address is already in use")
        self.host = host
        self.port = port
