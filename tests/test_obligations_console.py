"""The console's obligations page (issue 17): overdue, due in the next 3 working days, per
party; a department's account sees only its own. A real `gateway serve` on a real home
(tests/console_helpers.py), pages fetched over HTTP."""

from __future__ import annotations

import re

import pytest
from console_helpers import scan_text, served  # noqa: F401 - served: the shared fixture


def section(html: str, table_id: str) -> str:
    match = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert match, table_id
    return match.group(1)


def test_the_obligations_page(served):
    # The specimens were processed by `gateway run --once` on the real clock: the
    # departments' scheduled files of the statistical months begun are obligations; the
    # civil-affairs office sent nothing, so last month's file is overdue.
    overdue = served.query("SELECT party, subject FROM obligation WHERE kind = 'submission' AND status = 'open' AND party = 'civil-affairs'")
    assert overdue, "the run opened the submissions"
    url = served.console.url
    operator, _ = served.console.session("op")
    page = operator.get(url + "/obligations", timeout=30)
    assert page.status_code == 200
    scan_text("console page /obligations", page.text)
    assert "义务与时限" in page.text and "三个工作日内到期" in page.text
    assert "civil-affairs" in section(page.text, "obligations-overdue")
    parties = section(page.text, "obligations-parties")
    assert "civil-affairs" in parties and "police" in parties
    only = operator.get(url + "/obligations", params={"party": "police", "overdue": "true"}, timeout=30).text
    assert "civil-affairs" not in section(only, "obligations-overdue") and 'id="obligations-later"' not in only

    clerk, _ = served.console.session("clerk")  # the hospital's account
    mine = clerk.get(url + "/obligations", params={"party": "civil-affairs"}, timeout=30).text
    body = section(mine, "obligations-overdue") + section(mine, "obligations-soon") + section(mine, "obligations-later")
    assert "civil-affairs" not in body and "police" not in body
    assert "hospital" in section(mine, "obligations-parties")
    assert 'name="party"' not in mine  # no choice of party for a department
