"""The addresses each account's server names for the user (CalDAV's
calendar-user-address-set on the principal): iCloud lists every alias an invitation can be
addressed to, which is often not the Apple ID used to log in. Whose answer to an invitation
decides its busy time ("me") is the Apple IDs, these and the configured aliases together.
"""

from __future__ import annotations

import json
import time

from calmirror.model import PRIMARY
from calmirror.state.base import StateBase


class AddressTables(StateBase):
    def set_addresses(self, addresses: tuple[str, ...], account: str = PRIMARY, *, now: float | None = None) -> bool:
        """Remember what the server said now; returns whether the set differs from before."""
        before = self.addresses(account)
        with self.transaction() as db:
            db.table("account_addresses").upsert(
                {
                    "account": account,
                    "addresses": json.dumps(list(addresses)),
                    "read_at": time.time() if now is None else now,
                },
                pk="account",
            )
        return set(before) != set(addresses)

    def addresses(self, account: str = PRIMARY) -> tuple[str, ...]:
        rows = self._rows("SELECT addresses FROM account_addresses WHERE account = ?", (account,))
        return tuple(json.loads(rows[0]["addresses"])) if rows else ()

    def addresses_read_at(self, account: str = PRIMARY) -> float | None:
        rows = self._rows("SELECT read_at FROM account_addresses WHERE account = ?", (account,))
        return float(rows[0]["read_at"]) if rows else None

    def forget_addresses(self, account: str | None = None) -> None:
        """One account's addresses, or every account's (None)."""
        with self.transaction() as db:
            if account is None:
                db.execute("DELETE FROM account_addresses")
            else:
                db.execute("DELETE FROM account_addresses WHERE account = ?", (account,))

    def my_addresses(self) -> frozenset[str]:
        """Every account's login and the mailto: addresses its server names, lower-cased and
        without the scheme (what an ATTENDEE line is compared with). Other forms the server
        lists (the principal's own URL, urn:uuid:, tel:) name no attendee by e-mail, and are
        kept as they are: an ATTENDEE written in that form matches them."""
        logins = self._rows("SELECT apple_id FROM account UNION SELECT apple_id FROM accounts")
        found = {str(r["apple_id"] or "").strip().lower() for r in logins}
        for row in self._rows("SELECT addresses FROM account_addresses"):
            for address in json.loads(row["addresses"]):
                found.add(normal_address(address))
        return frozenset(a for a in found if a)


def normal_address(value: str) -> str:
    """As `availability.rules.normalise_address` (which the state must not import): lower
    case, no `mailto:`."""
    text = value.strip()
    if text[:7].lower() == "mailto:":
        text = text[7:]
    return text.lower()


def shown_addresses(addresses: tuple[str, ...]) -> list[str]:
    """The addresses a person recognises (e-mail, tel:, urn:), without the principal's own
    URL or path that servers list among them too."""
    shown = (normal_address(a) for a in addresses if not a.startswith(("/", "http://", "https://")))
    return list(dict.fromkeys(a for a in shown if a))
