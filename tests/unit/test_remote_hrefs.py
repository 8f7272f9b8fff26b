"""Rebasing an href that is canonical already takes a shortcut; it must give what the full
parse gives for every href, canonical or not."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from calmirror.remote import hrefs

_ORIGINS = st.sampled_from(
    [
        "https://p07-caldav.icloud.com:443/123/calendars/work/",
        "https://P07-CalDAV.icloud.com/123/calendars/work",
        "http://127.0.0.1:8080/dav/",
    ]
)
_HREFS = st.one_of(
    st.text(st.sampled_from(list("/abZ09-._~!$&'()*+,=:@%;?# é\t")), max_size=30),
    st.builds(
        "/{}/{}".format,
        st.text(st.sampled_from(list("abc0-._")), min_size=1, max_size=8),
        st.text(st.sampled_from(list("abc0-._~@:%2F;")), max_size=12),
    ),
)


@given(_ORIGINS, _HREFS)
@settings(max_examples=600, deadline=None)
def test_rebase_matches_the_full_parse(origin: str, href: str) -> None:
    assert hrefs.rebase(origin, href) == hrefs._rebase(origin, href.strip())


def test_a_canonical_href_keeps_its_path_on_the_origins_host() -> None:
    origin = "https://P07-CalDAV.icloud.com:443/123/calendars/work/"
    assert hrefs.rebase(origin, " /123/calendars/work/AB-12.ics") == (
        "https://p07-caldav.icloud.com:443/123/calendars/work/AB-12.ics"
    )
    assert hrefs.rebase(origin, "/123/calendars/work/a%40b.ics") == (
        "https://p07-caldav.icloud.com:443/123/calendars/work/a@b.ics"
    )
