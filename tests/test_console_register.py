"""The register in the console (人口库, issue 18): an operator picks a township and a village and
sees the village's 育龄妇女花名册 masked, the counts per village, the register's disagreements
(多元校核) masked and the unmatched addresses counted; downloads the roster (CSV, XLSX, masked);
reveals one woman's full name and ID number with a reason (refused without one). The
population office's account reads the page without the operator's buttons; any other
department, and a security officer, gets 403. Every view is an audit entry.

A real `gateway serve` (tests/console_helpers.py) on a real home: the specimens of the other
console tests plus a generated month (gateway/devkit/sample_month.py), whose manifest says how
many women each village of the example divisions.csv holds; Debian's chromium headless.
Every page and answer is scanned for unmasked identifiers, but for the one reveal answer,
by design."""

from __future__ import annotations

import csv
import io
import re
from html import unescape

import pytest
import requests
from console_helpers import Served, scan_text
from conftest import BACKEND, PRIVACY
from openpyxl import load_workbook
from test_console import Visit, browser  # noqa: F401 - the browser fixture and page helper
from test_console_i18n import chrome_problems

from gateway.masking import mask_id

pytestmark = pytest.mark.slow

OFFICE = ("office", "lantern-ferry-census-9")  # the population office's account (人口办)
WRONG_NAME = "钱某某"  # what the hand-imported 育龄妇女 table says of one mother: a disagreement


@pytest.fixture(scope="module")
def served(template_home, request, tmp_path_factory):
    """The console's home with the example divisions.csv and a generated month folded into the
    register (as `gateway run` does; the page itself never folds), one mother's name
    contradicted by the 育龄妇女 table, and the population office's account."""
    from gateway.devkit.sample_month import VILLAGES, generate_month
    from gateway.register.divisions import EXAMPLE
    from gateway.web.accounts import add_user

    postgres_server = request.getfixturevalue("postgres_server") if BACKEND == "postgresql" else None
    home = Served(template_home, postgres_server)
    try:
        (home.home / "divisions.csv").write_text(EXAMPLE, encoding="utf-8")
        month = generate_month(2026, 8)
        month.drop(home.settings.mailbox_root)
        home.run("run", "--once")
        home.run("register", "update")
        register = month.manifest()["counts"]["register"]
        code = max(register["women_by_village"], key=register["women_by_village"].get)
        town, name = next((t, n) for t, listed in VILLAGES.items() for c, n in listed if c == code)
        rows = [line.split(",") for line in month.files["hospital"][0][1].decode("gb18030").splitlines()[1:]]
        mothers = sorted({row[9] for row in rows if row[15] == "440781" and f"{town}{name}" in row[14]})
        assert len(mothers) == register["women_by_village"][code] >= 2
        table = tmp_path_factory.mktemp("wcba") / "wcba.csv"
        table.write_text(f"公民身份号码,姓名,类别,内容,登记日期\n{mothers[0]},{WRONG_NAME},01,户籍在本县,2026-08-25\n", encoding="utf-8")
        home.run("assist-checks", "import", "wcba", str(table))
        engine = home.engine()
        try:
            add_user(engine, OFFICE[0], "department", OFFICE[1], "population-office", list(home.settings.departments))
        finally:
            engine.dispose()
        home.village = {"code": code, "town": town, "township": code[:9] + "000", "name": name, "mothers": mothers}  # type: ignore[attr-defined]
        home.register = register  # type: ignore[attr-defined]
        home.villages = VILLAGES[town]  # type: ignore[attr-defined]
        yield home
    finally:
        home.close()


def signed_in(served: Served, name: str, password: str | None = None) -> tuple[requests.Session, str]:
    if password is None:
        return served.console.session(name)
    http = requests.Session()
    answer = http.post(served.console.url + "/api/session", json={"name": name, "password": password}, timeout=30)
    assert answer.status_code == 200, answer.text
    return http, answer.json()["csrf_token"]


def cells(html: str, table: str) -> list[list[str]]:
    """The body rows of the table with this id, as text."""
    found = re.search(rf'<table id="{table}">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert found, f"no table #{table}"
    return [[unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", found.group(1), re.S)]


def audit(served: Served, action: str) -> list[str]:
    return [entry.detail for entry in served.audit(action=action)]


def test_an_operator_sees_the_village_masked_with_the_counts_and_downloads_it(served):
    console, village, as_of = served.console, served.village, served.register["as_of"]
    http, _ = signed_in(served, "op")
    folded = served.query("SELECT count(*) FROM registerfolded")

    first = http.get(console.url + "/register", timeout=30)
    scan_text("GET /register", first.text)
    assert first.status_code == 200 and 'href="/register">人口库</a>' in first.text
    assert all(t in first.text for t in ("台城街道", "大江镇", "水步镇", "四九镇", "白沙镇"))
    assert 'id="roster"' not in first.text

    # A township: the counts of its villages, as the manifest says.
    page = http.get(console.url + "/register", params={"township": village["town"], "as_of": as_of}, timeout=30)
    scan_text("GET /register?township", page.text)
    assert page.status_code == 200
    counts = {row[0]: (row[1], int(row[3])) for row in cells(page.text, "village-counts")}
    assert counts == {c: (n, served.register["women_by_village"].get(c, 0)) for c, n in served.villages}
    township_women = int(re.search(r'id="township-women">(\d+)<', page.text).group(1))  # type: ignore[union-attr]
    assert township_women >= sum(w for _, w in counts.values())
    # The unmatched addresses: counted, never assigned to a village.
    [(unmatched,)] = served.query("SELECT count(*) FROM registerperson WHERE place_status = 'unmatched'")
    shown = int(re.search(r'id="unmatched-count">(\d+)<', page.text).group(1))  # type: ignore[union-attr]
    assert shown == unmatched >= served.register["unmatched_mothers"] >= 1

    # The village: its 花名册, the roster's columns Chinese first, identifiers masked.
    before = len(audit(served, "register.women"))
    page = http.get(console.url + "/register", params={"township": village["township"], "village": village["code"], "as_of": as_of}, timeout=30)
    scan_text("GET /register?village", page.text)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    header = re.search(r'<table id="roster">\s*<thead><tr>(.*?)</tr>', page.text, re.S).group(1)  # type: ignore[union-attr]
    assert re.findall(r"<th>(.*?)</th>", header)[:10] == ["姓名", "公民身份号码", "出生日期", "婚姻状况", "现有子女数", "户籍地", "现居住地",
                                                         "变动情况", "变动日期", "信息来源"]
    rows = cells(page.text, "roster")
    assert [row[1] for row in rows] == [mask_id(m) for m in village["mothers"]]
    assert all(re.fullmatch(r".\*\*", row[0]) for row in rows) and all(m not in page.text for m in village["mothers"])
    assert all(row[5].endswith("****") or row[5].startswith("区划代码") for row in rows)
    assert f"{village['town']}{village['name']}育龄妇女花名册" in page.text and f"{len(rows)} 人" in page.text
    views = audit(served, "register.women")
    assert len(views) == before + 1 and f"{len(rows)} row(s)" in views[-1] and "op (operator, console)" in views[-1]

    # The disagreement the 育龄妇女 table made: masked, both sources named; its view audited.
    disagreements = cells(page.text, "disagreements")
    [mine] = [row for row in disagreements if row[0] == mask_id(village["mothers"][0])]
    assert mine[1] == "姓名 name" and mine[2] == "医院" and mine[4] == "育龄妇女台账" and mine[5] == WRONG_NAME[0] + "**"
    assert WRONG_NAME not in page.text
    assert any("disagreement(s) (masked)" in d and "op (operator, console)" in d for d in audit(served, "register.discrepancies"))

    # The download, masked, audited; the same rows as the page.
    got = http.get(console.url + "/register/women.csv", params={"township": village["township"], "village": village["code"], "as_of": as_of}, timeout=30)
    text = got.content.decode("utf-8-sig")
    scan_text("GET /register/women.csv", text)
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv") and "attachment" in got.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(text)))
    assert table[0][:2] == ["姓名", "公民身份号码"] and table[1:] == [row[:10] for row in rows]
    got = http.get(console.url + "/register/women.xlsx", params={"township": village["township"], "village": village["code"], "as_of": as_of}, timeout=30)
    assert got.status_code == 200
    sheet = load_workbook(io.BytesIO(got.content)).active
    values = [[c.value for c in line] for line in sheet.iter_rows()]
    scan_text("GET /register/women.xlsx", repr(values))
    assert values[1][:2] == ["姓名", "公民身份号码"] and [v[1] for v in values[2:]] == [mask_id(m) for m in village["mothers"]]
    downloads = audit(served, "register.women")[-2:]
    assert "downloaded as CSV" in downloads[0] and "downloaded as XLSX" in downloads[1]

    # Bad input: a township that is not in divisions.csv, the valid ones named.
    bad = http.get(console.url + "/register", params={"township": "没有这个镇"}, timeout=30)
    scan_text("GET /register bad township", bad.text)
    assert bad.status_code == 400 and "Valid choices" in bad.text
    # The page reads, never folds (the daemon does).
    assert served.query("SELECT count(*) FROM registerfolded") == folded


def test_a_reveal_needs_a_reason_and_is_audited(served):
    console, village, as_of = served.console, served.village, served.register["as_of"]
    http, csrf = signed_in(served, "op")
    place = {"township": village["township"], "village": village["code"], "as_of": as_of}
    page = http.get(console.url + "/register", params=place, timeout=30)
    scan_text("GET /register for a reveal", page.text)
    refs = re.findall(r'name="person" value="([0-9a-f]+)"', page.text)
    assert len(refs) == len(village["mothers"])
    form = {**place, "person": refs[1], "csrf_token": csrf}
    reveals = len(audit(served, "register.view"))

    refused = http.post(console.url + "/register/reveal", data={**form, "reason": " "}, timeout=30)
    scan_text("POST /register/reveal without a reason", refused.text)
    assert refused.status_code == 400 and "查看全名和身份证号须说明理由" in refused.text and 'id="revealed"' not in refused.text
    assert len(audit(served, "register.view")) == reveals
    assert http.post(console.url + "/register/reveal", data={**form, "csrf_token": "", "reason": "核对纸质台账"}, timeout=30).status_code == 403
    unknown = http.post(console.url + "/register/reveal", data={**form, "person": "0" * 32, "reason": "核对纸质台账"}, timeout=30)
    scan_text("POST /register/reveal unknown person", unknown.text)
    assert unknown.status_code == 404 and 'id="revealed"' not in unknown.text
    # Another session's reference is worth nothing (keyed by the session).
    other, other_csrf = signed_in(served, "op")
    stolen = other.post(console.url + "/register/reveal", data={**form, "csrf_token": other_csrf, "reason": "核对纸质台账"}, timeout=30)
    scan_text("POST /register/reveal another session's reference", stolen.text)
    assert stolen.status_code == 404

    shown = http.post(console.url + "/register/reveal", data={**form, "reason": "核对纸质台账"}, timeout=30)
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    assert re.search(r'id="revealed-id">(.*?)<', shown.text).group(1) == village["mothers"][1]  # type: ignore[union-attr]
    PRIVACY.outputs.append(("POST /register/reveal (scanned without its revealed section)", re.sub(r'<section id="revealed".*?</section>', "", shown.text, flags=re.S)))
    entries = audit(served, "register.view")
    assert len(entries) == reveals + 1 and "核对纸质台账" in entries[-1] and mask_id(village["mothers"][1]) in entries[-1]
    assert "op (operator, console)" in entries[-1] and village["mothers"][1] not in entries[-1]
    again = http.get(console.url + "/register", params=place, timeout=30)
    assert village["mothers"][1] not in again.text  # not kept


def test_only_operators_and_the_population_office_read_the_register(served):
    console, village, as_of = served.console, served.village, served.register["as_of"]
    place = {"township": village["township"], "village": village["code"], "as_of": as_of}

    office, office_csrf = signed_in(served, *OFFICE)
    page = office.get(console.url + "/register", params=place, timeout=30)
    scan_text("GET /register as the population office", page.text)
    assert page.status_code == 200 and 'href="/register">人口库</a>' in page.text
    assert [row[1] for row in cells(page.text, "roster")] == [mask_id(m) for m in village["mothers"]]
    assert "form class=\"reveal\"" not in page.text and "/register/women.csv" not in page.text  # the operator's buttons
    assert any("office (department:population-office, console)" in d for d in audit(served, "register.women"))
    assert office.get(console.url + "/register/women.csv", params=place, timeout=30).status_code == 403
    assert office.post(console.url + "/register/reveal", data={**place, "person": "0" * 32, "reason": "核对纸质台账",
                                                               "csrf_token": office_csrf}, timeout=30).status_code == 403

    views = len(audit(served, "register.women"))
    for name in ("clerk", "sec"):  # a hospital clerk, a security officer: never
        http, csrf = signed_in(served, name)
        overview = http.get(console.url + "/", timeout=30)
        assert overview.status_code == 200 and 'href="/register"' not in overview.text
        refused = http.get(console.url + "/register", params=place, timeout=30)
        scan_text(f"GET /register as {name}", refused.text)
        assert refused.status_code == 403 and "population office" in refused.text and 'id="roster"' not in refused.text
        assert http.get(console.url + "/register/women.csv", params=place, timeout=30).status_code == 403
        assert http.post(console.url + "/register/reveal", data={**place, "person": "0" * 32, "reason": "核对纸质台账",
                                                                 "csrf_token": csrf}, timeout=30).status_code == 403
    assert len(audit(served, "register.women")) == views
    anonymous = requests.get(console.url + "/register", params=place, allow_redirects=False, timeout=30)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


def test_the_register_page_in_a_real_browser(browser, served):  # noqa: F811 - the imported fixture
    village = served.village
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    visit = Visit(page, served.console.url)
    visit.sign_in("op")
    page.click("nav a[href='/register']")
    page.wait_for_selector("#pick-township")
    visit.scan()
    page.select_option("#pick-township select[name=township]", village["township"])
    page.fill("#pick-township input[name=as_of]", served.register["as_of"])
    page.click("#pick-township button[type=submit]")
    page.wait_for_selector("#village-counts")
    visit.scan()
    page.select_option("#pick-township select[name=village]", village["code"])
    page.click("#pick-township button[type=submit]")
    page.wait_for_selector("#roster")
    html = visit.scan()
    assert page.locator("#roster tbody tr").count() == len(village["mothers"])
    assert all(m not in html for m in village["mothers"])
    visit.shot("register-01-village")

    row = page.locator("#roster tbody tr").first
    row.locator("button").click()  # no reason: the browser does not send the form
    assert page.locator("#revealed").count() == 0
    row.locator("input[name=reason]").fill("电话核实派出所")
    row.locator("button").click()
    page.wait_for_selector("#revealed")
    assert page.locator("#revealed-id").inner_text() == village["mothers"][0]
    assert "已记入审计日志" in page.locator("#revealed").inner_text()
    html = visit.goto(f"/register?township={village['township']}&village={village['code']}&as_of={served.register['as_of']}")
    assert page.locator("#revealed").count() == 0 and village["mothers"][0] not in html
    page.close()


def test_the_register_page_is_chinese_by_default_and_english_when_chosen(served):
    """The register's pages through the message catalogue (tests/test_console_i18n.py checks the
    other pages on a home without a register): the township, the village and the reveal form;
    the roster's columns and the place names are the county's own, Chinese in both."""
    from gateway.web import i18n

    village, as_of = served.village, served.register["as_of"]
    http, _ = signed_in(served, "op")
    problems: list[str] = []
    for language in ("zh", "en"):
        http.cookies.set(i18n.LANGUAGE_COOKIE, language)
        for params in ({}, {"township": village["township"], "as_of": as_of},
                       {"township": village["township"], "village": village["code"], "as_of": as_of}):
            page = http.get(served.console.url + "/register", params=params, timeout=30)
            assert page.status_code == 200, page.text
            problems += chrome_problems(language, f"/register {params}", page.text)
        if language == "en":
            assert "Roster of women of childbearing age of" in page.text and "identifiers masked" in page.text
        else:
            assert f"{village['town']}{village['name']}育龄妇女花名册" in page.text
    assert not problems, "\n".join(problems)
