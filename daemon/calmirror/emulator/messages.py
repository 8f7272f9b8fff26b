"""Plain request/reply values passed between the layer's handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

XML_TYPE = "text/xml; charset=utf-8"


@dataclass
class Request:
    method: str
    path: str
    body: bytes
    environ: dict[str, Any]

    def header(self, name: str) -> str:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            return str(self.environ.get(key, ""))
        return str(self.environ.get("HTTP_" + key, ""))

    @property
    def depth(self) -> str:
        return self.header("Depth").strip().lower() or "0"


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def status_line(self) -> str:
        try:
            phrase = HTTPStatus(self.status).phrase
        except ValueError:
            phrase = "Unknown"
        return f"{self.status} {phrase}"

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def set_header(self, name: str, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        self.headers.append((name, value))


def xml_reply(status: int, body: bytes) -> Reply:
    return Reply(status, [("Content-Type", XML_TYPE)], body)


def empty_reply(status: int, *headers: tuple[str, str]) -> Reply:
    return Reply(status, list(headers), b"")
