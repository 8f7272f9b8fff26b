"""Fetching subscribed ICS feeds: one polite, bounded conditional GET.

A feed URL is whatever a school or a rota tool publishes, so the fetch trusts nothing: the
scheme is checked on every hop (no file://, http only when the user allowed it), at most
five redirects are followed by hand, a password in the URL goes only to that URL's own
host, the size limit holds for the bytes sent and again for the bytes once decompressed
(a gzip bomb stops at the limit, not at the memory's), and a deadline covers the whole
answer, not just each read.
"""

from __future__ import annotations

import logging
import re
import time
import zlib
from collections.abc import Iterator
from urllib.parse import unquote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from calmirror.errors import (
    FeedError,
    FeedRedirectRefused,
    FeedTooLarge,
    FeedURLRefused,
    RemoteError,
    Unavailable,
)
from calmirror.model import FeedFetched
from calmirror.remote.http import REDIRECTS, error_for_exception, parse_retry_after, safe_url, where

log = logging.getLogger("calmirror.remote.feed")

MAX_REDIRECTS = 5
_CHUNK = 16 * 1024
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
USER_AGENT = "calmirror (ICS feed subscription)"


def normalise_url(url: str, *, allow_http: bool) -> str:
    """The URL calmirror fetches: webcal(s):// is https://; http:// only when allowed;
    nothing else (file://, ftp://, data:) ever."""
    text = url.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in ("webcal", "webcals"):
        parts = parts._replace(scheme="https")
    elif scheme == "http" and not allow_http:
        raise FeedURLRefused(
            safe_url(text),
            scheme,
            "plain http:// can be read and changed on the way; use https://, or add --allow-http",
        )
    elif scheme not in ("http", "https"):
        shown = scheme or "no scheme"
        raise FeedURLRefused(
            safe_url(text), shown, f"{shown} is not a feed URL calmirror fetches (use https:// or webcal://)"
        )
    if not parts.hostname:
        raise FeedURLRefused(safe_url(text), scheme, "the URL names no host")
    return parts.geturl()


def shown_url(url: str) -> str:
    """The URL as it may be printed or logged: without any user:password@ part."""
    return safe_url(url)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=host).geturl()


class FeedFetcher:
    """One session for all feeds; `fetch` is one conditional GET (plus redirect hops)."""

    def __init__(self, *, max_bytes: int = 20 * 1024 * 1024, timeout: float = 30.0) -> None:
        self.max_bytes, self.timeout = max_bytes, timeout
        self.session = requests.Session()
        self.session.trust_env = False  # no ~/.netrc credentials for a feed's host, no proxy surprises
        self.session.mount("http://", HTTPAdapter(max_retries=0))
        self.session.mount("https://", HTTPAdapter(max_retries=0))

    def close(self) -> None:
        self.session.close()

    def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None, allow_http: bool = False
    ) -> FeedFetched:
        start = normalise_url(url, allow_http=allow_http)
        parts = urlsplit(start)
        auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
        origin = _origin(start)
        current = _without_userinfo(start)
        headers = {"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5", "Accept-Encoding": "gzip"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        deadline = time.monotonic() + self.timeout
        for hop in range(MAX_REDIRECTS + 1):
            # Credentials from the URL go to its own scheme, host and port only.
            hop_auth = auth if _origin(current) == origin else None
            response = self._get(current, headers, hop_auth, deadline)
            with response:
                if response.status_code in REDIRECTS:
                    current = self._next_hop(current, response, hop, allow_http)
                    continue
                return self._answer(current, response, hop + 1, deadline)
        raise AssertionError("unreachable")  # pragma: no cover

    def _get(
        self, url: str, headers: dict[str, str], auth: tuple[str, str] | None, deadline: float
    ) -> requests.Response:
        left = max(0.1, deadline - time.monotonic())
        try:
            return self.session.get(
                url, headers=headers, auth=auth, allow_redirects=False, stream=True, timeout=(min(10.0, left), left)
            )
        except requests.RequestException as exc:
            raise error_for_exception("GET", url, exc) from None

    def _next_hop(self, url: str, response: requests.Response, hop: int, allow_http: bool) -> str:
        location = response.headers.get("Location", "")
        target = urljoin(url, location)
        scheme = urlsplit(target).scheme.lower()
        shown = safe_url(target) if scheme in ("http", "https") else f"{scheme}:…"
        what = f"{where('GET', url)}: {response.status_code} to {shown}"
        if hop >= MAX_REDIRECTS:
            raise FeedRedirectRefused(
                f"{what}: more than {MAX_REDIRECTS} redirects",
                url=safe_url(url),
                target=shown,
                status=response.status_code,
            )
        if scheme not in ("http", "https") or (scheme == "http" and not allow_http):
            why = (
                "only http(s) redirects are followed" if scheme != "http" else "a redirect to plain http (--allow-http)"
            )
            raise FeedRedirectRefused(
                f"{what}: refused, {why}", url=safe_url(url), target=shown, status=response.status_code
            )
        return _without_userinfo(target)

    def _answer(self, url: str, response: requests.Response, requests_made: int, deadline: float) -> FeedFetched:
        status = response.status_code
        etag = response.headers.get("ETag")
        last_modified = response.headers.get("Last-Modified")
        max_age = _max_age(response.headers.get("Cache-Control"))
        if status == 304:
            return FeedFetched(None, etag, last_modified, max_age, requests_made, 0)
        if status in (429, 503) or status >= 500:
            retry = parse_retry_after(response.headers.get("Retry-After"))
            raise Unavailable(f"{where('GET', url)}: {status}", url=safe_url(url), status=status, retry_after=retry)
        if status in (401, 403):
            hint = "the publisher wants a user name and password (give them in the URL: https://USER:PASSWORD@host/…)"
            raise FeedError(f"{where('GET', url)}: {status}; {hint}", url=safe_url(url), status=status)
        if status != 200:
            raise FeedError(f"{where('GET', url)}: {status}", url=safe_url(url), status=status)
        body, size = self._read(url, response, deadline)
        return FeedFetched(body, etag, last_modified, max_age, requests_made, size)

    def _read(self, url: str, response: requests.Response, deadline: float) -> tuple[str, int]:
        """The body, decompressed here (not by urllib3) so both sizes are bounded as they grow."""
        encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
            raise FeedError(f"{where('GET', url)}: unsupported Content-Encoding {encoding[:20]!r}", url=safe_url(url))
        inflate = zlib.decompressobj(47) if encoding != "identity" else None  # 47: gzip or zlib header
        limit = self.max_bytes
        received, out, kept = 0, [], 0
        too_large = FeedTooLarge(
            f"{where('GET', url)}: the feed is over the size limit of {limit // (1024 * 1024)} MB "
            "([feeds] max_mb in the config)",
            url=safe_url(url),
            limit_bytes=limit,
        )
        try:
            for chunk in _pieces(response):
                received += len(chunk)
                if received > limit:
                    raise too_large
                if time.monotonic() > deadline:
                    raise FeedError(
                        f"{where('GET', url)}: the answer took longer than {self.timeout:.0f} s", url=safe_url(url)
                    )
                if inflate is None:
                    piece = chunk
                else:
                    piece = inflate.decompress(chunk, limit - kept + 1)
                    if inflate.unconsumed_tail:
                        raise too_large
                kept += len(piece)
                if kept > limit:
                    raise too_large
                out.append(piece)
            if inflate is not None:
                tail = inflate.flush()
                kept += len(tail)
                if kept > limit:
                    raise too_large
                out.append(tail)
        except zlib.error:
            raise FeedError(f"{where('GET', url)}: the compressed answer is damaged", url=safe_url(url)) from None
        except requests.RequestException as exc:
            raise error_for_exception("GET", url, exc) from None
        except RemoteError:
            raise
        except Exception as exc:  # urllib3's own errors while streaming (reset, cut off, timeout)
            raise error_for_exception("GET", url, requests.exceptions.ConnectionError(exc)) from None
        return b"".join(out).decode("utf-8", errors="replace").lstrip("\ufeff"), received


def _pieces(response: requests.Response) -> Iterator[bytes]:
    """The raw body as it arrives (`read1`: whatever one receive brings), so the deadline is
    checked between receives and a publisher trickling bytes cannot stretch it."""
    raw = response.raw
    read1 = getattr(raw, "read1", None)
    if read1 is None:  # pragma: no cover - urllib3 before 2.1
        yield from raw.stream(_CHUNK, decode_content=False)
        return
    while chunk := read1(_CHUNK, decode_content=False):
        yield chunk


def _max_age(value: str | None) -> float | None:
    if not value:
        return None
    if "no-store" in value.lower() or "no-cache" in value.lower():
        return None
    found = _MAX_AGE.search(value)
    return float(found.group(1)) if found else None
