"""Radicale auth plugin for the one local login.

Choice: the credentials reach Radicale as an object in `[auth] type` (Radicale 3.9 accepts
a callable there and calls it with the configuration), not through a file or a global
registry. Nothing secret is written to disk (an htpasswd file would need a hash Radicale
checks on every request: sha512-crypt costs ~0.5 s per request without login caching), two
servers in one process (tests, the emulator) cannot see each other's logins, and the
password is held only as a SHA-256 digest. The factory's repr is what Radicale logs as the
auth type, so it names the user and never the password.

Loaded by module name (`[auth] type = calmirror.local.auth`) the plugin has no credentials
and refuses everyone: a misconfiguration fails closed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from radicale import auth, config


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class Credentials:
    """The expected login, compared in constant time (no early exit on user or length)."""

    def __init__(self, username: str, password: str) -> None:
        if not username or not password:
            raise ValueError("the local login needs a username and a password")
        self.username = username
        self._user_digest = _digest(username)
        self._password_digest = _digest(password)

    def check(self, login: str, password: str) -> bool:
        user_ok = hmac.compare_digest(_digest(login), self._user_digest)
        password_ok = hmac.compare_digest(_digest(password), self._password_digest)
        return user_ok & password_ok

    def check_basic_header(self, header: str) -> bool:
        """Check an `Authorization: Basic ...` header, decoded as Radicale decodes it."""
        if not header.startswith("Basic"):
            return False
        try:
            raw = base64.b64decode(header[len("Basic") :].strip().encode("ascii"))
        except (UnicodeError, binascii.Error, ValueError):
            return False
        for charset in ("utf-8", "iso8859-1"):
            try:
                decoded = raw.decode(charset)
            except UnicodeDecodeError:
                continue
            login, sep, password = decoded.partition(":")
            return bool(sep) and self.check(login, password)
        return False

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r})"


class Auth(auth.BaseAuth):
    def __init__(self, configuration: config.Configuration, credentials: Credentials | None = None) -> None:
        super().__init__(configuration)
        self._credentials = credentials

    def _login(self, login: str, password: str) -> str:
        if self._credentials is not None and self._credentials.check(login, password):
            return login
        return ""


class AuthFactory:
    """What goes into `[auth] type`: Radicale calls it with the configuration."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def __call__(self, configuration: config.Configuration) -> Auth:
        return Auth(configuration, self.credentials)

    def __repr__(self) -> str:
        return f"calmirror.local.auth(user={self.credentials.username!r})"

    __str__ = __repr__
