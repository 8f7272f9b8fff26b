"""The linear replacements for vobject's hot spots give exactly what the originals give."""

from __future__ import annotations

import io

import vobject.base
from hypothesis import given, settings
from hypothesis import strategies as st

from calmirror.local import vobject_speed
from calmirror.local.vobject_speed import _ORIGINAL

_LINE_CHARS = st.sampled_from(list("ab=;,:\\nN Qq-uoted-printable\té€😀\r\n"))
_TEXT = st.text(_LINE_CHARS, max_size=400)


@given(_TEXT)
@settings(max_examples=400, deadline=None)
def test_logical_lines_match_vobject(text: str) -> None:
    try:
        expected = list(_ORIGINAL["getLogicalLines"](io.StringIO(text)))
    except IndexError:
        return  # the original fails on some degenerate inputs; the replacement need not match a crash
    assert list(vobject_speed.get_logical_lines(io.StringIO(text))) == expected


@given(st.text(st.sampled_from(list("ab;,:\\nN Qq-uoted-printable\té€😀\r\n\x0c\u2028")), max_size=400))
@settings(max_examples=400, deadline=None)
def test_logical_lines_without_a_line_ending_in_equals_match_vobject(text: str) -> None:
    """The plain unfolding taken when no line can continue a quoted-printable value."""
    text = text.replace("=", "")
    assert list(vobject_speed.get_logical_lines(io.StringIO(text))) == list(
        _ORIGINAL["getLogicalLines"](io.StringIO(text))
    )


@given(st.text(st.sampled_from(list("abcé€😀 ")), max_size=600), st.integers(10, 90))
@settings(max_examples=300, deadline=None)
def test_folding_matches_vobject(text: str, width: int) -> None:
    ours, theirs = io.StringIO(), io.StringIO()
    vobject_speed.fold_one_line(ours, text, width)
    _ORIGINAL["foldOneLine"](theirs, text, width)
    assert ours.getvalue() == theirs.getvalue()


@given(st.text(st.sampled_from(list("ab,;\\nN:")), max_size=80), st.sampled_from([",", ";"]))
@settings(max_examples=300, deadline=None)
def test_text_values_match_vobject(text: str, separator: str) -> None:
    expected = _ORIGINAL["stringToTextValues"](text, separator)
    assert vobject_speed.string_to_text_values(text, separator) == expected


class _WithProperty(vobject.base.ContentLine):
    """A content line class with a property, as vobject's own components have (`tzinfo`)."""

    def _get_upper(self) -> str:
        return str(self.__dict__.get("_upper", ""))

    def _set_upper(self, value: str) -> None:
        self.__dict__["_upper"] = value.upper()

    upper = property(_get_upper, _set_upper)


_ATTRIBUTES = st.sampled_from(
    ["value", "name", "group", "behavior", "isNative", "encoded", "upper", "tzid_param", "x_a_b_paramlist", "other"]
)


@given(st.lists(st.tuples(_ATTRIBUTES, st.sampled_from(["v", "w"]), st.booleans()), max_size=12))
@settings(max_examples=300, deadline=None)
def test_content_line_attributes_match_vobject(stores: list[tuple[str, str, bool]]) -> None:
    ours = _WithProperty("X", [], "")
    theirs = _WithProperty("X", [], "")
    for name, value, as_list in stores:
        given_value: object = [value] if name.endswith("_paramlist") or (as_list and name != "upper") else value
        vobject_speed.content_line_setattr(ours, name, given_value)
        _ORIGINAL["ContentLine.__setattr__"](theirs, name, given_value)
    assert ours.__dict__ == theirs.__dict__
    assert ours.upper == theirs.upper


def test_the_replacement_is_installed() -> None:
    vobject_speed.install()
    assert vobject.base.ContentLine.__setattr__ is vobject_speed.content_line_setattr


_CONTENT_LINE_TEXT = st.one_of(
    st.text(st.sampled_from(list('aZ9-_.;:=,"xé ')), max_size=40),
    st.builds(
        "{}{}:{}".format,
        st.sampled_from(["DTSTART", "x-apple-a", "g.SUMMARY", "A_B", "UID", ""]),
        st.sampled_from(
            [
                "",
                ";TZID=Europe/Berlin",
                ';X="a:b";Y=c,d',
                ";ENCODING=QUOTED-PRINTABLE",
                ";QUOTED-PRINTABLE",
                ";VALUE=DATE;value=x",
                ";SINGLE",
            ]
        ),
        st.text(st.sampled_from(list("ab:;=\\, é=")), max_size=20),
    ),
)


def _content_line(make: object, text: str) -> tuple[str, object]:
    try:
        line = make(text, 7)  # type: ignore[operator]
    except Exception as error:  # vobject's own failures (a bad line, a bad quoted-printable value)
        return type(error).__name__, str(error)
    return type(line).__name__, line.__dict__


@given(_CONTENT_LINE_TEXT)
@settings(max_examples=500, deadline=None)
def test_content_lines_match_vobject(text: str) -> None:
    assert _content_line(vobject_speed.text_line_to_content_line, text) == _content_line(
        _ORIGINAL["textLineToContentLine"], text
    )


def test_corpus_lines_match_vobject() -> None:
    """Every logical line of Apple-shaped corpus events, attribute for attribute and in order."""
    from calmirror.testing.corpus import generate_events

    for _, text in generate_events(300):
        for line, number in vobject_speed.get_logical_lines(io.StringIO(text)):
            ours = vobject_speed.text_line_to_content_line(line, number)
            theirs = _ORIGINAL["textLineToContentLine"](line, number)
            assert list(ours.__dict__.items()) == list(theirs.__dict__.items())


def test_content_line_reader_is_installed() -> None:
    vobject_speed.install()
    assert vobject.base.textLineToContentLine is vobject_speed.text_line_to_content_line


def _read_with(transform: object, text: str) -> tuple[str, str]:
    """What vobject makes of `text` with `transform` as `VBase.transformToNative`: its
    serialization, or the error it raises."""
    installed = vobject.base.VBase.transformToNative
    vobject.base.VBase.transformToNative = transform  # type: ignore[method-assign]
    try:
        return "ok", "".join(component.serialize() for component in vobject.readComponents(text, allowQP=True))
    except Exception as error:
        return type(error).__name__, str(error)
    finally:
        vobject.base.VBase.transformToNative = installed  # type: ignore[method-assign]


_BROKEN = [
    "DTSTART:2026-13-45",
    "DTSTART;TZID=Nowhere/Atlantis:20260101T100000",
    "DURATION:PXYZ",
    "RRULE:FREQ=SOMETIMES",
    "EXDATE;VALUE=DATE:2026x",
    "TRIGGER:-PT1H",
]


def test_native_values_and_their_errors_match_vobject() -> None:
    from calmirror.testing.corpus import generate_events

    texts = [text for _, text in generate_events(150)]
    head, tail = texts[0].split("END:VEVENT", 1)
    texts += [f"{head}{line}\r\nEND:VEVENT{tail}" for line in _BROKEN]
    for text in texts:
        theirs = _read_with(_ORIGINAL["VBase.transformToNative"], text)
        assert _read_with(vobject_speed.transform_to_native, text) == theirs
    assert any(_read_with(vobject_speed.transform_to_native, t)[0] == "ParseError" for t in texts[-len(_BROKEN) :])
