"""The content hash of an appointment's text, apart from the detector and the pusher that both
compare it: the pusher needs the hash, not the detector's store scanning."""

from __future__ import annotations

import hashlib


def content_hash(text: str) -> str:
    """What the outbox and the item map record for a version of an appointment's text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
