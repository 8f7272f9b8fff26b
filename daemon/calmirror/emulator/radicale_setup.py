"""Radicale configured for the emulator: storage tuned for speed, rights for one account.

Radicale is used as a library here, never as a server: the emulator's own WSGI layer
authenticates, and Radicale only sees requests with REMOTE_USER set to the DSID.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import radicale.config
import radicale.item as radicale_item
from radicale import pathutils
from radicale.rights import BaseRights
from radicale.storage import multifilesystem

from calmirror.emulator.changelog import ChangeLog
from calmirror.emulator.tokens import RADICALE_TOKEN_PREFIX
from calmirror.local import vobject_speed

# The emulator's Radicale parses what it stores too; it got this when every command imported
# the whole local package, and keeps it now that the package loads its parts on first use.
vobject_speed.install()


class FastCollection(multifilesystem.Collection):
    """A Radicale collection whose writes, syncs and multigets cost what they touch, not O(n).

    Stock Radicale scans the whole history folder after every upload or delete to
    expire old entries (quadratic when loading 10,000 events) and writes each file
    through a fresh temporary directory for crash safety. An emulator lives minutes
    and every reader takes the storage lock a writer holds exclusively, so expiry is
    skipped and files are written in place.

    Its `sync` reads every item to hash the collection's state; a calendar of the
    account answers from its change log instead (see `changelog`), on every path that
    asks Radicale for a token (sync-collection with calendar-data, PROPFIND sync-token).
    Its `get_multi` lists the folder and searches that list for each name (to catch
    case-insensitive file systems): 100 names of a 100,000-item calendar cost a 100,000
    entry listing and ten million comparisons per multiget.
    """

    @property
    def folder(self) -> str:
        """The collection's folder on disk, where its change log lives."""
        return self._filesystem_path

    def sync(self, old_token: str = "") -> tuple[str, Iterable[str]]:
        log = _storage_logs(self)
        if log is None:
            return super().sync(old_token)
        position = None
        if old_token:
            position = log.position(old_token.removeprefix(RADICALE_TOKEN_PREFIX))
            if position is None or not old_token.startswith(RADICALE_TOKEN_PREFIX):
                raise ValueError(f"Token not found: {old_token!r}")
        token, changes = log.changes_since(position)
        return RADICALE_TOKEN_PREFIX + token, [name for name, _etag in changes]

    def get_multi(self, hrefs: Iterable[str]) -> Iterator[tuple[str, radicale_item.Item | None]]:
        if not self._is_collision_free:
            yield from super().get_multi(hrefs)
            return
        for href in hrefs:
            if not pathutils.is_safe_filesystem_path_component(href):
                yield href, None
            elif pathutils.file_check_size(str(Path(self._filesystem_path) / href), self._storage._max_resource_size):
                yield href, self._get(href, verify_href=False)

    def _clean_history(self) -> None:
        return None

    @contextlib.contextmanager
    def _atomic_write(self, path: str, mode: str = "w", newline: str | None = None) -> Iterator[IO[Any]]:
        encoding = None if "b" in mode else self._encoding
        with open(path, mode, newline=newline, encoding=encoding) as target:
            yield target


class FastStorage(multifilesystem.Storage):
    _collection_class = FastCollection

    def __init__(
        self, configuration: radicale.config.Configuration, change_log_for: Callable[[str], ChangeLog | None]
    ) -> None:
        super().__init__(configuration)
        # The change log of the collection at a (stripped) path, if it keeps one: the store's
        # and Radicale's application (which loads a storage of its own) both read the store's.
        self.change_log_for = change_log_for


def _storage_logs(collection: FastCollection) -> ChangeLog | None:
    storage = collection._storage
    return storage.change_log_for(collection.path) if isinstance(storage, FastStorage) else None


class AccountRights(BaseRights):
    """Rights for the single emulated account.

    Calendars are `rw` (or `r` when shared read-only); the principal, the home and
    the inbox/outbox/notification collections are readable plain collections that
    clients cannot write to, as on iCloud.
    """

    def __init__(
        self, configuration: radicale.config.Configuration, dsid: str, calendar_access: Callable[[str], str | None]
    ) -> None:
        super().__init__(configuration)
        self._dsid = dsid
        self._calendar_access = calendar_access

    def authorization(self, user: str, user_groups: set[str], path: str) -> str:
        if user != self._dsid:
            return ""
        parts = [p for p in path.split("/") if p]
        if len(parts) <= 2:
            return "R" if not parts or parts[0] == self._dsid else ""
        if len(parts) == 3 and parts[0] == self._dsid and parts[1] == "calendars":
            access = self._calendar_access(parts[2])
            return access if access is not None else "R"
        return ""


def build_configuration(
    folder: str,
    dsid: str,
    calendar_access: Callable[[str], str | None],
    change_log_for: Callable[[str], ChangeLog | None],
) -> radicale.config.Configuration:
    """Defaults only (never /etc or ~/.config), then the emulator's settings."""
    configuration = radicale.config.load([])

    def rights_factory(cfg: radicale.config.Configuration) -> AccountRights:
        return AccountRights(cfg, dsid, calendar_access)

    def storage_factory(cfg: radicale.config.Configuration) -> FastStorage:
        return FastStorage(cfg, change_log_for)

    configuration.update(
        {
            "auth": {"type": "remote_user"},
            "rights": {
                "type": rights_factory,
                "permit_delete_collection": "False",
                "permit_overwrite_collection": "False",
            },
            "storage": {
                "type": storage_factory,
                "filesystem_folder": folder,
                "use_cache_subfolder_for_item": "True",
                "use_cache_subfolder_for_history": "True",
                "use_cache_subfolder_for_synctoken": "True",
                "_filesystem_fsync": "False",
            },
            "reporting": {"max_expand_occurrence": "1000000"},
            "server": {"max_vevent_rrule_occurrence": "100000"},
            "web": {"type": "none"},
            "hook": {"type": "none"},
            "sharing": {"type": "none"},
            "logging": {"mask_passwords": "True"},
        },
        "calmirror-emulator",
        privileged=True,
    )
    quiet_radicale_logger()
    return configuration


def quiet_radicale_logger() -> None:
    """Radicale logs every request at INFO; tests and benchmarks want silence.

    `radicale.log.setup()` is deliberately not called: it replaces the process-wide
    log-record factory.
    """
    logger = logging.getLogger("radicale")
    if logger.level == logging.NOTSET:  # leave a level someone chose deliberately alone
        logger.setLevel(logging.ERROR)
