"""`Emulator`: a loopback stand-in for caldav.icloud.com, for tests, benchmarks and demos.

Two listeners share one Radicale store: the front (`http://127.0.0.1:<p>/`, playing
caldav.icloud.com) and the partition (`http://localhost:<p2>/`, playing
`pNN-caldav.icloud.com`). The methods below the HTTP surface are "iCloud-side"
edits: they change the store the way another Apple device would, bypassing the
layer's rules and the request log.

Two iCloud behaviours are opt-in: `addresses` (aliases the principal's
calendar-user-address-set lists beside the Apple ID) and `listing_lag_s` (eventual
consistency: listings miss a just-written item while a GET or multiget of its href finds it).
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterable
from types import TracebackType

from calmirror.emulator import seed as seeding
from calmirror.emulator.faults import Faults
from calmirror.emulator.layer import Credentials, ICloudLayer
from calmirror.emulator.objects import prepare_item, prepare_unchecked
from calmirror.emulator.server import (
    Listener,
    ListenerContext,
    LoggedRequest,
    PartitionFate,
    RequestLog,
    elsewhere,
    localhost_families,
)
from calmirror.emulator.store import CalendarInfo, Store
from calmirror.emulator.tokens import TokenCodec, short_etag
from calmirror.raw_text import from_bytes

_LOOPBACK: dict[int, str] = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}


class Emulator:
    def __init__(
        self,
        apple_id: str = "me@example.com",
        password: str = "abcd-efgh-ijkl-mnop",
        data_dir: str | None = None,
        port: int = 0,
        seed: str = "sample",
        *,
        dsid: str = "10000001",
        partition_port: int = 0,
        addresses: Iterable[str] = (),
        listing_lag_s: float = 0.0,
    ) -> None:
        """`addresses`: the account's aliases (`alias@icloud.com`, `mailto:…`, `tel:…`),
        served in the principal's calendar-user-address-set beside `mailto:<apple_id>`.
        `listing_lag_s`: iCloud's eventual consistency (ICLOUD.md #17), see `listing_lag_s`."""
        if seed not in seeding.SEEDS:
            raise ValueError(f"seed must be one of {seeding.SEEDS}, not {seed!r}")
        if not dsid.isdigit():
            raise ValueError("dsid must be numeric")
        self.apple_id = apple_id
        self.dsid = dsid
        self.faults = Faults()
        self._credentials = Credentials(apple_id, password, tuple(addresses))
        self._tokens = TokenCodec()
        self._log = RequestLog()
        self._data_dir = data_dir
        self._owns_data_dir = data_dir is None
        self._port = port
        self._partition_port = partition_port
        self._seed = seed
        self._listing_lag_s = listing_lag_s
        self._store: Store | None = None
        self._front = Listener()
        self._partition = Listener()
        self._retired: list[Listener] = []  # partitions moved away from, still answering (see move_partition)
        self._layer: ICloudLayer | None = None
        self.url = ""
        self.partition_url = ""

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._store is not None:
            raise RuntimeError("emulator already started")
        if self._data_dir is None:
            self._data_dir = tempfile.mkdtemp(prefix="calmirror-emulator-")
        try:
            store = Store(self._data_dir, self.dsid)
            self._store = store
            if not store.calendars():
                self._seed_account(store)
            store.listing_lag_s = self._listing_lag_s  # after the seed: its events are old news
            layer = ICloudLayer(store, self._credentials, self._tokens)
            front_context = ListenerContext(layer, "front", self.faults, self._log)
            front_port = self._front.bind("127.0.0.1", self._port, front_context)
            self._partition = self._bind_partition(ListenerContext(layer, "partition", self.faults, self._log))
            partition_port = self._partition.port
        except BaseException:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{front_port}/"
        self.partition_url = f"http://localhost:{partition_port}/"
        layer.partition_url = self.partition_url
        self._layer = layer
        self._front.start("emulator-front")
        self._partition.start("emulator-partition")
        return self

    def stop(self) -> None:
        self._front.stop()
        self._partition.stop()
        for retired in self._retired:
            retired.stop()
        self._retired.clear()
        self._store = None
        self._layer = None
        if self._owns_data_dir and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def move_partition(self, port: int = 0, *, old: PartitionFate = "closed") -> str:
        """Serve the account from another partition port, as when iCloud moves an account to
        another `pNN-caldav` host; the front door names the new home from now on.

        The old port then refuses connections (`closed`), answers every request with a 301
        to the same path on the new one (`redirect`), or 404 (`gone`). Returns the new
        partition URL.
        """
        if self._layer is None:
            raise RuntimeError("emulator not started")
        layer = self._layer
        previous, self._partition_port = self._partition, port
        moved = self._bind_partition(ListenerContext(layer, "partition", self.faults, self._log))
        self._partition = moved
        self.partition_url = f"http://localhost:{moved.port}/"
        layer.partition_url = self.partition_url
        moved.start("emulator-partition")
        if old == "closed":
            previous.stop()
        else:
            previous.retarget(elsewhere(self.partition_url, old), "old-partition")
            self._retired.append(previous)
        return self.partition_url

    def _bind_partition(self, context: ListenerContext) -> Listener:
        """Bind every address `localhost` resolves to, on one port, so any client reaches it."""
        families = localhost_families()
        last_error: OSError | None = None
        for _attempt in range(20):
            listener = Listener()
            try:
                port = listener.bind(_LOOPBACK[families[0]], self._partition_port, context, families[0])
                for family in families[1:]:
                    listener.bind(_LOOPBACK[family], port, context, family)
            except OSError as exc:
                listener.stop()
                last_error = exc
                if self._partition_port:
                    break
                continue
            return listener
        raise OSError(f"cannot bind the partition listener: {last_error}")

    def _seed_account(self, store: Store) -> None:
        for info in seeding.calendar_plan(self.apple_id):
            store.create_calendar(info)
            if self._seed == "sample":
                self.bulk_load(info.cal_id, seeding.sample_items(info.name))

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("emulator not started")
        return self._store

    # --- addresses --------------------------------------------------------------------

    def calendar_id(self, name: str) -> str:
        for info in self.store.calendars():
            if info.name == name:
                return info.cal_id
        raise KeyError(name)

    def calendar_url(self, cal_id: str) -> str:
        return self.partition_url.rstrip("/") + self.store.calendar_path(cal_id)

    # --- iCloud-side edits ------------------------------------------------------------

    def put_item(
        self, cal_id: str, name: str, ics_text: str | bytes, *, unchecked: bool = False, past_tokens: bool = False
    ) -> str:
        """Store ``ics_text`` as another Apple device would: kept exactly (CRLF aside), even
        what Radicale refuses. Raises InvalidObject for text that is not a calendar object,
        unless ``unchecked`` (bytes that got into the account some other way). With
        ``past_tokens`` no sync token ever reports the write, only a full listing shows it:
        what a token that moved past a write listed late would do."""
        path = self.store.calendar_path(cal_id)
        if isinstance(ics_text, bytes):  # bytes that are not all UTF-8 are kept as they are
            ics_text = from_bytes(ics_text)
        item = prepare_unchecked(ics_text, name, path) if unchecked else prepare_item(ics_text, path)
        self.store.write_items(cal_id, [(name, item)], past_tokens=past_tokens)
        return self.store.calendar_path(cal_id) + name

    def delete_item(self, cal_id: str, name: str) -> None:
        if not self.store.delete_item(cal_id, name):
            raise KeyError(f"{cal_id}/{name}")

    def items(self, cal_id: str) -> dict[str, str]:
        return self.store.items(cal_id)

    def item_etag(self, cal_id: str, name: str) -> str:
        item = self.store.get_item(cal_id, name)
        if item is None:
            raise KeyError(f"{cal_id}/{name}")
        return short_etag(item.etag)

    def bulk_load(self, cal_id: str, items: Iterable[tuple[str, str]]) -> None:
        """Parse everything first, then write under one storage lock."""
        path = self.store.calendar_path(cal_id)
        prepared = [(name, prepare_item(text, path)) for name, text in items]
        self.store.write_items(cal_id, prepared)

    def create_calendar(
        self,
        name: str,
        cal_id: str | None = None,
        components: Iterable[str] = ("VEVENT",),
        writable: bool = True,
        color: str = "#FF2968FF",
    ) -> str:
        new_id = cal_id or str(uuid.uuid4()).upper()
        self.store.create_calendar(CalendarInfo(new_id, name, tuple(components), writable, color))
        return new_id

    def delete_calendar(self, cal_id: str) -> None:
        self.store.delete_calendar(cal_id)

    def set_writable(self, cal_id: str, writable: bool) -> None:
        self.store.set_writable(cal_id, writable)

    @property
    def listing_lag_s(self) -> float:
        """Eventual consistency (ICLOUD.md #17): an item written (by a client or an iCloud-side
        edit) less than this many seconds ago is missing from every listing: sync-collection,
        calendar-query and a Depth-1 PROPFIND, and ctags and sync tokens do not move past it
        until it shows, so a later sync still reports it. A GET or calendar-multiget of its
        href answers at once: a direct read of one resource is the reliable read, on iCloud
        too, so that is how a client confirms a resource a listing missed. Deletions show at
        once. Only writes made while it is set are held back."""
        return self._listing_lag_s

    @listing_lag_s.setter
    def listing_lag_s(self, seconds: float) -> None:
        self._listing_lag_s = seconds
        if self._store is not None:
            self._store.listing_lag_s = seconds

    def set_addresses(self, addresses: Iterable[str]) -> None:
        """Replace the aliases served in calendar-user-address-set (as when the user adds one)."""
        self._credentials.addresses = tuple(addresses)

    def set_password(self, new: str) -> None:
        self._credentials.set_password(new)

    def invalidate_sync_tokens(self, mode: str = "403") -> None:
        self._tokens.invalidate(mode)

    def set_sync_collection(self, enabled: bool) -> None:
        """Off: answer sync-collection REPORTs 403 (supported-report), as a server without RFC 6578."""
        self._tokens.sync_collection = enabled

    # --- request log ------------------------------------------------------------------

    @property
    def requests(self) -> list[LoggedRequest]:
        return self._log.snapshot()

    def clear_requests(self) -> None:
        self._log.clear()
