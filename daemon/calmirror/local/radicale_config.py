"""The one place a Radicale configuration is built.

Only Radicale's built-in defaults plus our values: `radicale.config.load([])` never reads
/etc/radicale or ~/.config/radicale, so a stray system config cannot change how the
user's calendar store behaves. The server and the in-process storage API use the same
builder, so both see the same folder layout and caches.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from radicale import config

from calmirror.local import rights

#: Loading this module by name gives an auth plugin without credentials: everyone refused.
AUTH_MODULE = "calmirror.local.auth"

#: Radicale's default (10,000) also caps how many VEVENTs one REPORT may return, so a
#: calendar-query over a 10,000-event mirror would answer 400.
MAX_EXPAND_OCCURRENCE = 1_000_000

SOURCE = "calmirror"


def _hosts_value(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}"


def build_configuration(
    store_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 5232,
    auth_type: str | Callable[[config.Configuration], Any] = AUTH_MODULE,
    storage_type: str | Callable[[config.Configuration], Any] = "multifilesystem",
) -> config.Configuration:
    """A configuration for the store at `store_dir`.

    `auth_type` is the login check; the server passes an `auth.AuthFactory` holding the
    credentials; the server passes `range_query.storage_type(...)` as `storage_type` to answer
    time-range queries on mirrors from an index. `port` 0 (a free port chosen later) leaves `[server] hosts` at its
    default: Radicale only reads it in its own `serve()`, which calmirror does not use.
    """
    configuration = config.load([])
    server: dict[str, Any] = {}
    if 0 < port < 65535:
        server["hosts"] = _hosts_value(host, port)
    configuration.update(
        {
            "server": server,
            "auth": {"type": auth_type, "cache_logins": False},
            "rights": {
                "type": rights.Rights,
                "permit_delete_collection": False,
                "permit_overwrite_collection": False,
            },
            "storage": {
                "type": storage_type,
                "filesystem_folder": str(Path(store_dir).absolute()),
                # Keep caches and sync history outside the collection folders: an atomic
                # collection swap then keeps clients' sync tokens valid, and a watcher on a
                # collection folder sees only item files.
                "use_cache_subfolder_for_item": True,
                "use_cache_subfolder_for_history": True,
                "use_cache_subfolder_for_synctoken": True,
                "hook": "",
                "predefined_collections": "",
            },
            "hook": {"type": "none"},
            "web": {"type": "none"},
            "sharing": {"type": "none"},
            "reporting": {"max_expand_occurrence": MAX_EXPAND_OCCURRENCE},
        },
        SOURCE,
    )
    return configuration
