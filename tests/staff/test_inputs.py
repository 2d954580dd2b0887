"""Every staff page GET parameter takes odd input without a 500: a bad value is ignored, and the preview says
why (issue #14: the profile search 500ed on `?q=%C2%B2` and on a NUL byte)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.urls import reverse

from staff.preview import preview_query_parse
from tests.factories.users import ProfileFactory
from users.models import ViewingEvent

ODD_VALUES = [
    "²",  # isdigit() but not int()
    "١٢",  # Arabic-Indic digits: int() reads them
    "\x00",
    "a\x00b",
    "\x1b[31m",  # NUL, control characters
    "\ud800",
    "x\udfffy",  # lone surrogates (sent as their UTF-8-like bytes, invalid UTF-8)
    "9" * 30,
    "9" * 5000,  # beyond bigint; beyond int()'s 4300-digit limit
    "-1",
    "0",
    "1e3",
    "0x10",
    " 7 ",
    "1_000",
    "+3",
    "x" * 10_000,
    "🙂" * 60,
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%",
    "",
]
RAW_QUERIES = ["q=%ff%fe", "profile=%C0%80", "device=%ED%A0%80", "q=%00&profile=%00", "country=%E2%80%AE"]
PREVIEW_PARAMETERS = ["q", "profile", "device", "hour", "country", "compare", "after"]
OTHER_PAGES = {"staff:jobs": ["before"], "staff:experiments": ["page"], "staff:models": ["x"], "staff:index": ["x"]}


def _query(name: str, value: str) -> str:
    return f"{name}={quote(value.encode('utf-8', 'surrogatepass'), safe='')}"


@pytest.mark.parametrize("name", PREVIEW_PARAMETERS)
def test_every_preview_parameter_takes_odd_values_without_a_500(editor_client, name):
    ProfileFactory(name="Maya")
    for value in ODD_VALUES:
        response = editor_client.get(f"{reverse('staff:preview')}?{_query(name, value)}")
        assert response.status_code in (200, 404), (name, value[:20], response.status_code)


@pytest.mark.parametrize("page", sorted(OTHER_PAGES))
def test_every_other_staff_page_parameter_takes_odd_values_without_a_500(editor_client, page):
    for name in OTHER_PAGES[page]:
        for value in ODD_VALUES:
            response = editor_client.get(f"{reverse(page)}?{_query(name, value)}")
            assert response.status_code == 200, (page, name, value[:20], response.status_code)


def test_raw_undecodable_queries_are_no_500_either(editor_client):
    for raw in RAW_QUERIES:
        for page in ["staff:preview", *OTHER_PAGES]:
            assert editor_client.get(f"{reverse(page)}?{raw}").status_code in (200, 404), (page, raw)


def test_the_searches_the_issue_names_find_nothing_and_say_so(editor_client):
    for raw in ("q=%C2%B2", "q=%00", "q=Maya%00"):
        response = editor_client.get(f"{reverse('staff:preview')}?{raw}")
        assert response.status_code == 200
    superscript = editor_client.get(f"{reverse('staff:preview')}?q=%C2%B2")
    assert superscript.context["search"].hits == ()
    assert "No profile with id or name “²”" in superscript.content.decode()
    nul = editor_client.get(f"{reverse('staff:preview')}?q=Maya%00")
    assert "Ignored q: it contains control characters." in nul.content.decode()


def test_bad_values_are_ignored_with_a_message_and_good_ones_kept(db):
    codes = ["FR", "JP"]
    parsed = preview_query_parse(
        {
            "profile": "²",
            "device": "99",
            "hour": "24",
            "country": "zz",
            "compare": "nope",
            "after": "9" * 30,
            "q": "x" * 51,
        },
        country_codes=codes,
    )
    assert (parsed.profile_id, parsed.hour, parsed.country, parsed.compare, parsed.after, parsed.query) == (
        None,
        None,
        None,
        "",
        0,
        "",
    )
    assert len(parsed.problems) == 7
    assert any("profile '²'" in p for p in parsed.problems)
    good = preview_query_parse(
        {
            "profile": "42",
            "device": "2",
            "hour": "0",
            "country": "fr",
            "compare": "no_rules",
            "after": "7",
            "q": " Maya ",
        },
        country_codes=codes,
    )
    assert (good.profile_id, good.device, good.hour, good.country, good.compare, good.after, good.query) == (
        42,
        2,
        0,
        "FR",
        "no_rules",
        7,
        "Maya",
    )
    assert good.problems == ()
    assert preview_query_parse({"profile": "١٢"}, country_codes=codes).profile_id is None  # ASCII digits only


def test_odd_context_values_beside_a_real_profile_still_draw_its_page(editor_client, serving_world):
    profile_id = ViewingEvent.objects.order_by("-profile_id").values_list("profile_id", flat=True)[0]
    response = editor_client.get(
        f"{reverse('staff:preview')}?profile={profile_id}&{_query('device', '²')}&"
        f"{_query('hour', '9' * 5000)}&{_query('country', 'a' + chr(0))}&compare=%00"
    )
    assert response.status_code == 200
    assert response.context["preview"].page.rows
    assert len(response.context["problems"]) == 4
