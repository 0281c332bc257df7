"""Every list pages and filters (issue 20, "Working in it all day"): the exchanges and the
deliveries, on the pages and in the API, against a real `gateway serve` over real HTTP on
a home with a dozen real exchanges (the served specimens, then hospital files dropped and
processed by `gateway run --once`). How fast a page is with 5,000 exchanges is
bench/console_lists.py's question, not a test's."""

from __future__ import annotations

import re

import pytest
import requests
from console_helpers import PASSWORDS, Served
from conftest import BACKEND, drop, hospital_births_file, specimen

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(template_home, request, recipients):
    from gateway.receipts.keys import DepartmentKeys

    postgres_server = request.getfixturevalue("postgres_server") if BACKEND == "postgresql" else None
    home = Served(template_home, postgres_server)
    try:
        # The population office's key: the births below are delivered to it under the home's
        # agreements (the other recipients have no key here: their deliveries are held).
        ring, fingerprint = recipients["population-office"]
        DepartmentKeys(home.settings.keys_dir).import_key(ring.export(fingerprint), "population-office")
        # The school has a key too: its drops must be signed, so an unsigned one waits (待处理 note).
        ring, fingerprint = recipients["school"]
        DepartmentKeys(home.settings.keys_dir).import_key(ring.export(fingerprint), "school")
        drop(home.settings, "school", "school_enrolments_202609.csv", specimen("school_enrolments_202609.csv"))
        drop(home.settings, "hospital", "births_broken.csv", "这不是出生登记表\n".encode("gb18030"))  # refused today
        for batch in range(1, 9):
            drop(home.settings, "hospital", f"births_2026W{batch:02d}.csv", hospital_births_file(batch, 2))
        drop(home.settings, "hospital", "births_2026W01_again.csv", hospital_births_file(1, 2))  # a duplicate
        home.run("run", "--once")
        yield home
    finally:
        home.close()


def _api(served: Served, name: str = "op") -> requests.Session:
    http, _ = served.console.session(name)
    return http


def _ids(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<td class="n"><a href="/exchanges/(\d+)">', page)]


def test_the_exchanges_page_pages_through_all_with_a_total_and_keeps_the_filters(served):
    url = served.console.url
    http = _api(served)
    every = [row[0] for row in served.query("SELECT id FROM exchange ORDER BY id DESC")]
    assert len(every) == 13
    seen = []
    page = http.get(url + "/exchanges", params={"limit": 5}, timeout=30).text
    assert "共 13 条，显示第 1–5 条" in page and 'id="previous"' not in page
    seen += _ids(page)
    while 'id="next"' in page:
        link = re.search(r'<a href="([^"]+)" id="next"', page).group(1).replace("&amp;", "&")
        page = http.get(url + link, timeout=30).text
        seen += _ids(page)
    assert seen == every  # newest first, each once, none left out
    assert "共 13 条，显示第 11–13 条" in page and 'id="previous"' in page

    hospital = http.get(url + "/exchanges", params={"department": "hospital", "status": "processed", "limit": 3}, timeout=30).text
    assert "共 9 条" in hospital and len(_ids(hospital)) == 3
    following = re.search(r'<a href="([^"]+)" id="next"', hospital).group(1).replace("&amp;", "&")
    assert "department=hospital" in following and "status=processed" in following and "offset=3" in following

    found = http.get(url + "/exchanges", params={"file_name": "w01"}, timeout=30).text  # any case, part of the name
    w01 = [row[0] for row in served.query("SELECT id FROM exchange WHERE file_name LIKE 'births_2026W01%' ORDER BY id DESC")]
    assert "共 2 条" in found and _ids(found) == w01 and len(w01) == 2  # the names are shown masked (b…#533c4d.csv)
    by_adapter = http.get(url + "/exchanges", params={"adapter": "police-hukou"}, timeout=30).text
    assert "共 1 条" in by_adapter
    literal = http.get(url + "/exchanges", params={"file_name": "%"}, timeout=30).text  # no wildcard
    assert "共 0 条" in literal and "没有符合条件的交换" in literal


def test_the_api_pages_with_offset_a_total_and_links(served):
    url = served.console.url
    http = _api(served)
    first = http.get(url + "/api/exchanges", params={"limit": 5}, timeout=30)
    assert first.status_code == 200 and first.headers["X-Total-Count"] == "13" and len(first.json()) == 5
    assert 'rel="next"' in first.headers["Link"] and 'rel="prev"' not in first.headers["Link"]
    rest = http.get(url + "/api/exchanges", params={"limit": 5, "offset": 10}, timeout=30)
    assert [e["id"] for e in rest.json()] == [row[0] for row in served.query("SELECT id FROM exchange ORDER BY id DESC")][10:]
    assert 'rel="prev"' in rest.headers["Link"] and 'rel="next"' not in rest.headers["Link"]
    searched = http.get(url + "/api/exchanges", params={"file_name": "W0", "status": "duplicate"}, timeout=30)
    [again] = served.query("SELECT id FROM exchange WHERE file_name = 'births_2026W01_again.csv'")
    assert searched.headers["X-Total-Count"] == "1" and searched.json()[0]["id"] == again[0]
    # A department account: its own only, whatever the filter asks.
    clerk = _api(served, "clerk")
    mine = clerk.get(url + "/api/exchanges", params={"department": "police"}, timeout=30)
    assert mine.headers["X-Total-Count"] == "0" and mine.json() == []
    assert clerk.get(url + "/api/exchanges", timeout=30).headers["X-Total-Count"] == "11"


def test_deliveries_page_filter_and_show_what_carried_an_exchange(served):
    url = served.console.url
    http = _api(served)
    police = served.ids["police"]
    [(births,)] = served.query("SELECT id FROM exchange WHERE file_name = 'births_2026W02.csv'")
    carried = served.query(
        "SELECT DISTINCT d.id, d.recipient FROM delivery d JOIN deliveryrecord dr ON dr.delivery_id = d.id "
        "JOIN record r ON r.id = dr.record_id WHERE r.exchange_id = ? AND d.status NOT IN ('empty', 'cancelled') ORDER BY d.id DESC",
        births,
    )
    assert carried, "the births go to the population office under the home's agreements"
    answer = http.get(url + "/api/deliveries", params={"exchange": births}, timeout=30)
    assert [(d["id"], d["recipient"]) for d in answer.json()] == carried
    assert answer.headers["X-Total-Count"] == str(len(carried))
    page = http.get(url + f"/exchanges/{births}", timeout=30).text
    table = page.split('id="carried"', 1)[1].split("</table>", 1)[0]
    for delivery_id, recipient in carried:
        assert f'<td class="n">{delivery_id}</td><td>{recipient}</td>' in table
    recipient = carried[0][1]
    filtered = http.get(url + "/api/deliveries", params={"recipient": recipient, "limit": 1}, timeout=30)
    total = served.query("SELECT count(*) FROM delivery WHERE recipient = ? AND status NOT IN ('empty', 'cancelled')", recipient)[0][0]
    assert filtered.headers["X-Total-Count"] == str(total) and len(filtered.json()) == 1
    listing = http.get(url + "/deliveries", params={"exchange": births, "limit": 1}, timeout=30).text
    assert f"共 {len(carried)} 条" in listing and f'href="/exchanges/{births}"' in listing
    # The hospital's clerk may not ask which deliveries carried the police's exchange.
    clerk = _api(served, "clerk")
    assert clerk.get(url + "/api/deliveries", params={"exchange": police}, timeout=30).status_code == 403
    assert clerk.get(url + "/deliveries", params={"exchange": police}, timeout=30).status_code == 403
    assert PASSWORDS  # the module's accounts are console_helpers' own


def test_the_overview_says_what_needs_doing_and_links_each_count(served):
    url = served.console.url
    http = _api(served)
    summary = http.get(url + "/api/overview", timeout=30).json()
    [(refused,)] = served.query("SELECT id FROM exchange WHERE file_name = 'births_broken.csv' AND status = 'rejected'")
    assert summary["refused_today_total"] == 1 and [e["id"] for e in summary["refused_today"]] == [refused]
    assert summary["refused_today"][0]["reason"]  # with its reason
    held = served.query("SELECT count(*) FROM delivery WHERE status = 'held'")[0][0]
    assert held > 0 and summary["held_total"] == held and len(summary["held"]) == min(held, 10)
    assert all(d["reason"] for d in summary["held"])  # why each is held
    open_acks = served.query("SELECT count(*) FROM delivery WHERE status = 'delivered'")[0][0]
    assert summary["acks_open"] == open_acks and summary["acks_overdue"] == 0  # delivered minutes ago
    assert len(summary["unacknowledged"]) == summary["acks_due_soon"] <= 10  # only what falls due within a day
    [waiting] = summary["waiting"]
    assert waiting["department"] == "school" and waiting["why"].startswith("等待签名") and "school_enrolments" not in waiting["file_name"]
    inbox = {j["name"]: j for j in summary["jobs"]}["inboxes"]
    assert inbox["last_status"] == "ok" and inbox["last_started_at"] and "gateway run --once" in inbox["last_summary"]

    page = http.get(url + "/", timeout=30).text
    assert '<meta http-equiv="refresh" content="60">' in page  # keeps itself current, no script (CSP)
    assert "待办" in page and f'href="/exchanges/{refused}"' in page
    today = summary["today"]
    refused_link = f"/exchanges?status=rejected&date_from={today}&date_to={today}"
    assert refused_link in page and 'href="/deliveries?status=held"' in page and 'href="/deliveries?overdue=true"' in page
    listed = http.get(url + refused_link, timeout=30).text
    assert "共 1 条" in listed and _ids(listed) == [refused]
    held_page = http.get(url + "/deliveries?status=held", timeout=30).text
    assert f"共 {held} 条" in held_page
    jobs = http.get(url + "/", timeout=30).text.split('id="jobs"', 1)[1]
    assert "inboxes" in jobs and "从未运行" not in jobs.split("inboxes", 1)[1].split("</tr>", 1)[0]
    assert "从未运行" in jobs  # the jobs `run --once` does not do (the assist-checks job, ...)


def test_the_original_file_is_downloaded_by_its_department_and_the_officer_only_and_audited(served):
    url = served.console.url
    [(births,)] = served.query("SELECT id FROM exchange WHERE file_name = 'births_2026W02.csv'")
    police = served.ids["police"]
    officer = _api(served, "sec")
    got = officer.get(url + f"/exchanges/{births}/original", timeout=30)
    assert got.status_code == 200 and got.content == hospital_births_file(2, 2)  # the bytes the receipt signs
    assert got.headers["content-disposition"] == f'attachment; filename="exchange-{births}-original.csv"'
    clerk = _api(served, "clerk")  # the hospital's
    assert clerk.get(url + f"/exchanges/{births}/original", timeout=30).content == hospital_births_file(2, 2)
    assert clerk.get(url + f"/exchanges/{police}/original", timeout=30).status_code == 403
    assert _api(served, "op").get(url + f"/exchanges/{births}/original", timeout=30).status_code == 403  # records in full: not operators
    downloads = served.audit(action="download")
    mine = [e for e in downloads if f"the original file of exchange {births}" in e.detail]
    assert {e.user for e in mine} == {"sec", "clerk"} and all(e.client == "127.0.0.1" for e in mine)
    page = officer.get(url + f"/exchanges/{births}", timeout=30).text
    assert f'href="/exchanges/{births}/original"' in page


def test_a_control_character_in_a_filter_is_a_400_not_a_database_error(served):
    # PostgreSQL refuses NUL in text: the fuzzer's `adapter=\x00` was a 500 from the list query.
    url = served.console.url
    http = _api(served)
    for path in ("/api/exchanges?adapter=%00", "/api/deliveries?agreement=a%00b", "/exchanges?file_name=%00", "/deliveries?contract=%01"):
        answer = http.get(url + path, timeout=30)
        assert answer.status_code == 400, (path, answer.status_code, answer.text[:200])
        assert "控制字符" in answer.text and answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert http.get(url + "/api/exchanges?file_name=W0%09", timeout=30).status_code == 200  # a tab is no harm


def test_the_assist_checks_page_and_api_page_with_a_total_and_links(served):
    url = served.console.url
    http, _ = served.console.session("op")
    everything = http.get(url + "/api/assist-checks", timeout=30)
    total = len(everything.json())
    assert total >= 2 and everything.headers["X-Total-Count"] == str(total) and "Link" not in everything.headers
    first = http.get(url + "/api/assist-checks", params={"limit": 1}, timeout=30)
    assert first.headers["X-Total-Count"] == str(total) and [c["id"] for c in first.json()] == [everything.json()[0]["id"]]
    assert 'rel="next"' in first.headers["Link"] and "offset=1" in first.headers["Link"] and 'rel="prev"' not in first.headers["Link"]
    last = http.get(url + "/api/assist-checks", params={"limit": 1, "offset": total - 1}, timeout=30)
    assert [c["id"] for c in last.json()] == [everything.json()[-1]["id"]] and 'rel="next"' not in last.headers["Link"]

    # The page: a page of one row at a time, the total, next and previous keeping the filter.
    seen = []
    page = http.get(url + "/assist-checks", params={"limit": 1, "answered": "true"}, timeout=30).text
    answered_total = int(re.search(r'id="total">共 (\d+) 条', page).group(1))  # type: ignore[union-attr]
    while True:
        table = page.split('id="assist-checks"', 1)[1].split("</table>", 1)[0]
        seen += re.findall(r"<tr><td>([^<]+)</td>", table)
        if 'id="next"' not in page:
            break
        link = re.search(r'<a href="([^"]+)" id="next"', page).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
        assert "answered=true" in link and "limit=1" in link
        page = http.get(url + link, timeout=30).text
        assert 'id="previous"' in page
    assert len(seen) == answered_total >= total and len(set(seen)) == len(seen)


def test_the_reconciliation_items_page_with_a_total_and_links(served):
    url = served.console.url
    http, csrf = served.console.session("op")
    assert http.post(url + "/reconciliation/evaluate", data={"csrf_token": csrf}, allow_redirects=False, timeout=30).status_code == 303
    rules = {r["rule"]: r for r in http.get(url + "/api/reconciliation", timeout=30).json()}
    rule = "unregistered-births"
    total = rules[rule]["open"]
    assert total >= 2, rules[rule]
    first = http.get(url + "/api/reconciliation/items", params={"rule": rule, "limit": 1}, timeout=30)
    assert first.status_code == 200 and first.headers["X-Total-Count"] == str(total) and len(first.json()) == 1
    assert 'rel="next"' in first.headers["Link"] and f"rule={rule}" in first.headers["Link"]
    rest = http.get(url + "/api/reconciliation/items", params={"rule": rule, "limit": 1, "offset": 1}, timeout=30)
    assert rest.json()[0]["id"] != first.json()[0]["id"] and 'rel="prev"' in rest.headers["Link"]
    assert [g["id"] for g in rules[rule]["items"][:2]] == [first.json()[0]["id"], rest.json()[0]["id"]]
    missing = http.get(url + "/api/reconciliation/items", params={"rule": "no-such-rule"}, timeout=30)
    assert missing.status_code == 404 and rule in missing.json()["detail"]
    every = http.get(url + "/api/reconciliation/items", timeout=30)  # every rule's, rule by rule
    assert every.headers["X-Total-Count"] == str(sum(r["open"] for r in rules.values()))
    assert [g["id"] for g in every.json()] == [g["id"] for r in rules.values() for g in r["items"]]

    # The page: one rule's items a page at a time; the link keeps the rule.
    page = http.get(url + "/reconciliation", params={"limit": 1}, timeout=30).text
    section = page.split(f'id="rule-{rule}"', 1)[1].split("</section>", 1)[0]
    assert f"共 {total} 条" in section and section.count('<tr><td class="n">') == 1
    link = re.search(rf'<a href="([^"]+)" id="rule-{rule}-next"', section).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    assert f"rule={rule}" in link and "offset=1" in link
    second = http.get(url + link, timeout=30).text.split(f'id="rule-{rule}"', 1)[1].split("</section>", 1)[0]
    assert f'<td class="n">{rest.json()[0]["id"]}</td>' in second and f'id="rule-{rule}-previous"' in second
