"""vobject made linear in the size of an object, with byte-identical results.

Radicale reads and re-serializes every PUT with vobject 0.9.9, which has three hot spots
on one long property (an 8.7 MB DESCRIPTION took 17.7 s, most of it in the first):

- `getLogicalLines` copies the whole logical line on every folded physical line, to see
  whether it ends a quoted-printable line: quadratic in the property's length;
- `foldOneLine` folds character by character, converting each one twice;
- `stringToTextValues` walks a TEXT value one character at a time even when it holds no
  escape and no separator.

And one cost on every object: `ContentLine.__setattr__` looks the name up on the class
(`getattr` through the MRO, then `isinstance`) on each of the ten or so attribute stores of
every content line, a tenth of checking an Apple-shaped event; the answer per class and
name is kept instead (vobject never adds properties to its classes after import). And
`textLineToContentLine`, a quarter of that check, runs its line regex and then those stores
for every line: most lines of an event are a plain `NAME:value`, which is split at its first
colon, and every line's content line is filled in one dictionary update.
`VBase.transformToNative` copies every line it converts (`copy.copy`, through the pickle
protocol) only to name it in an error message: the attributes are kept instead, and the copy
made from them when there is an error to report.

The replacements below keep each function's contract and output exactly (a unit test
compares them with the originals on generated input); `install()` is idempotent and runs
when the local package is imported, before anything parses an object. It also sends
vobject's bare `logging.error` calls to a logger of their own (`vobject_logging`), and an IANA
TZID without a VTIMEZONE resolved with zoneinfo rather than pytz (`vobject_zones`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import IO, Any

import vobject.base
import vobject.icalendar
import vobject.vcard

from calmirror.local import vobject_logging, vobject_zones

_QP = "quoted-printable"
_ORIGINAL = {
    "getLogicalLines": vobject.base.getLogicalLines,
    "foldOneLine": vobject.base.foldOneLine,
    "stringToTextValues": vobject.icalendar.stringToTextValues,
    "ContentLine.__setattr__": vobject.base.ContentLine.__setattr__,
    "textLineToContentLine": vobject.base.textLineToContentLine,
    "VBase.transformToNative": vobject.base.VBase.transformToNative,
}


def get_logical_lines(fp: IO[str], allowQP: bool = True) -> Iterator[tuple[str, int]]:
    """vobject's `getLogicalLines`, keeping the parts of a logical line in a list and the
    quoted-printable test on its last characters only; a text with no line ending in '='
    (every calendar object from iCloud, nearly) is simply unfolded."""
    if not allowQP:
        yield from _ORIGINAL["getLogicalLines"](fp, allowQP)
        return
    if isinstance(fp, io.StringIO) and fp.tell() == 0:
        text = fp.getvalue()
        if _QP_CONTINUES.search(text) is None:
            fp.seek(0, io.SEEK_END)
            yield from _unfolded(text)
            return
    quoted_printable = False
    parts: list[str] = []
    size = 0
    seen_qp = False  # 'quoted-printable' occurs in the logical line so far (case-insensitive)
    tail = ""  # its last len(_QP) - 1 characters, lowered, for a match across parts
    line_number = 0
    start_number = 0

    def add(piece: str) -> None:
        nonlocal size, seen_qp, tail
        parts.append(piece)
        size += len(piece)
        if not seen_qp:
            window = tail + piece.lower()
            seen_qp = _QP in window
            tail = window[-(len(_QP) - 1) :]

    def reset() -> None:
        nonlocal size, seen_qp, tail
        parts.clear()
        size, seen_qp, tail = 0, False, ""

    while True:
        line = fp.readline()
        if line == "":
            break
        line = line.rstrip("\r\n")
        line_number += 1
        if line.rstrip() == "":
            if size > 0:
                yield "".join(parts), start_number
            start_number = line_number
            reset()
            quoted_printable = False
            continue
        if quoted_printable:
            add("\n")
            add(line)
            quoted_printable = False
        elif line[0] in " \t":
            add(line[1:])
        elif size > 0:
            yield "".join(parts), start_number
            start_number = line_number
            reset()
            add(line)
        else:
            reset()
            add(line)
        last = next((p for p in reversed(parts) if p), "")
        if last.endswith("=") and seen_qp:
            quoted_printable = True
    if size > 0:
        yield "".join(parts), start_number


#: A physical line ending in '=', the only way a quoted-printable value continues.
_QP_CONTINUES = re.compile(r"=\r*(?:\n|\Z)")


def _unfolded(text: str) -> Iterator[tuple[str, int]]:
    """`get_logical_lines` of a text none of whose lines ends in '=' (so no line continues
    a quoted-printable value): plain unfolding, in one pass over the text's lines."""
    pieces = text.split("\n")  # what readline() splits at: a lone CR is not a line end
    if pieces[-1] == "":
        pieces.pop()
    parts: list[str] = []
    size = start = 0
    for number, piece in enumerate(pieces, 1):
        line = piece.rstrip("\r\n")
        if line.rstrip() == "":
            if size > 0:
                yield "".join(parts), start
            start, parts, size = number, [], 0
        elif line[0] in " \t":
            parts.append(line[1:])
            size += len(line) - 1
        elif size > 0:
            yield "".join(parts), start
            start, parts, size = number, [line], len(line)
        else:
            parts, size = [line], len(line)
    if size > 0:
        yield "".join(parts), start


def fold_one_line(outbuf: Any, input: str, lineLength: int = 75) -> None:
    """vobject's `foldOneLine`: lines of at most `lineLength` UTF-8 bytes, continuation
    lines starting with a space, never splitting a character."""
    if len(input) < lineLength:
        folded = input
    else:
        data = input.encode("utf-8")
        pieces: list[bytes] = []
        start, budget = 0, lineLength
        while start < len(data):
            end = min(start + budget, len(data))
            while end < len(data) and end > start and (data[end] & 0xC0) == 0x80:
                end -= 1  # back off to the start of the character that would not fit
            if end == start:  # one character wider than a line: it goes alone, as vobject does
                end += 1
                while end < len(data) and (data[end] & 0xC0) == 0x80:
                    end += 1
            pieces.append(data[start:end])
            start, budget = end, lineLength - 1
        folded = b"\r\n ".join(pieces).decode("utf-8")
    try:
        outbuf.write(bytes(folded + "\r\n", "UTF-8"))
    except Exception:
        outbuf.write(folded + "\r\n")


def string_to_text_values(
    s: str,
    listSeparator: str = ",",
    charList: str | None = None,
    strict: bool = False,
) -> list[str]:
    """vobject's `stringToTextValues`, answering at once for a value with nothing to unescape or split."""
    if "\\" not in s and listSeparator not in s:
        return [s]
    result: list[str] = _ORIGINAL["stringToTextValues"](s, listSeparator, charList, strict)
    return result


_plain: dict[tuple[type, str], bool] = {}  # (class, name) -> stored as a plain attribute


def content_line_setattr(self: Any, name: str, value: Any) -> None:
    """vobject's `ContentLine.__setattr__`, deciding once per class and name whether the
    name is a plain attribute (not a parameter alias, not a property)."""
    key = (type(self), name)
    plain = _plain.get(key)
    if plain is None:
        plain = _plain[key] = not (
            name.endswith("_param") or name.endswith("_paramlist") or isinstance(getattr(key[0], name, None), property)
        )
    if plain:
        object.__setattr__(self, name, value)
    else:  # a parameter alias or a property: vobject's own way
        _ORIGINAL["ContentLine.__setattr__"](self, name, value)


#: A content line name vobject keeps as it is: no group (`group.NAME`), no underscore (which
#: it turns into a dash), ASCII only like its own pattern.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9-]+")


def text_line_to_content_line(text: str, n: int | None = None) -> Any:
    """vobject's `textLineToContentLine`: the same `ContentLine`, attribute for attribute.

    A `NAME:value` line needs no regex (vobject's pattern matches the name up to the first
    colon, no parameters, the rest as the value); any other goes through vobject's
    `parseLine`. A quoted-printable line is left to vobject's `ContentLine` whole."""
    head, colon, value = text.partition(":")
    if colon and _PLAIN_NAME.fullmatch(head):
        name, params, group = head, [], None
    else:
        name, params, value, group = vobject.base.parseLine(text, n)
    by_name: dict[str, list[str]] = {}
    singletons: list[str] = []
    for param in params:
        if len(param) == 1:
            singletons += param
        else:
            by_name.setdefault(param[0].upper(), []).extend(param[1:])
    if "ENCODING" in by_name or "QUOTED-PRINTABLE" in singletons:
        return vobject.base.ContentLine(name, params, value, group, encoded=True, lineNumber=n)
    line = _new_content_line(vobject.base.ContentLine)
    # The order vobject's two __init__s store them in (VBase's, then ContentLine's).
    line.__dict__.update(
        group=group,
        behavior=None,
        parentBehavior=None,
        isNative=False,
        name=name.upper(),
        encoded=True,
        params=by_name,
        singletonparams=singletons,
        lineNumber=n,
        value=value,
    )
    return line


_new_content_line = object.__new__


def transform_to_native(self: Any) -> Any:
    """vobject's `VBase.transformToNative`, with the same result and the same errors."""
    if self.isNative or not self.behavior or not self.behavior.hasNative:
        return self
    state = dict(self.__dict__)  # all that copy.copy(self) keeps of it (no vobject class has its own copy)
    try:
        return self.behavior.transformToNative(self)
    except Exception as error:
        line_number = getattr(self, "lineNumber", None)
        if isinstance(error, vobject.base.ParseError):
            if line_number is not None:
                error.lineNumber = line_number
            raise
        original = object.__new__(type(self))  # as copy.copy makes it: no vobject class has its own __new__
        original.__dict__.update(state)
        message = f"In transformToNative, unhandled exception on line {line_number}: {type(error)}: {error}"
        raise vobject.base.ParseError(f"{message} ({original})", line_number) from error


def install() -> None:
    vobject_logging.install()
    vobject_zones.install()
    vobject.base.VBase.transformToNative = transform_to_native
    vobject.base.textLineToContentLine = text_line_to_content_line
    vobject.base.ContentLine.__setattr__ = content_line_setattr
    vobject.base.getLogicalLines = get_logical_lines
    vobject.base.foldOneLine = fold_one_line
    vobject.icalendar.foldOneLine = fold_one_line
    vobject.icalendar.stringToTextValues = string_to_text_values
    vobject.vcard.stringToTextValues = string_to_text_values
