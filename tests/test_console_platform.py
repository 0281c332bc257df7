"""The county's side of the national platform in the console (issue 16): an operator makes
the county's own assist-check request (协查请求) through the form and finds it in the list,
reveals a request's subject with a reason (refused without one), and sends a notice draft
(通报草稿): refused before it leaves without a village-level address, sent once the hospital
corrected it. The same through the JSON API; other roles see no forms and get 403.

A real `gateway serve` (tests/console_helpers.py) on a real home, the national platform
simulated on loopback (gateway/devkit/simulator.py), Debian's chromium headless. Every page
and answer is scanned for unmasked identifiers, but for the one reveal answer, by design."""

from __future__ import annotations

import re

import pytest
import requests
from console_helpers import ARTIFACTS, Console, Served, scan_text
from conftest import BACKEND, drop, specimen
from test_console import CHROMIUM, Visit, browser  # noqa: F401 - the browser fixture and page helper

from gateway.masking import mask_id

pytestmark = pytest.mark.slow

CHEN = ("陈丽", "440781199203154325")  # the mother in the hospital specimen: in the county's records
BAD_CHECK = CHEN[1][:-1] + "6"  # one wrong check character
HUANG_ID = "440703199507221268"  # the mother registered in 440703: her birth owes a notice
STREET_ONLY = "广东省江门市蓬江区白沙街道"  # her address in the specimen: no village level
VILLAGE = "广东省台山市台城街道桂水村委会"
NOTICE = "TB-440781-"
BIRTH_CASE = "生育信息"  # the birth's row among the notice drafts (the police specimen owes two more)


@pytest.fixture(scope="module")
def served(template_home, request):
    """The console's home (police, hospital and platform specimens processed), with
    `[pulls.platform]` pointing at a simulated platform; the hospital birth's notice drafted."""
    from gateway.devkit.simulator import PartnerSimulator

    postgres_server = request.getfixturevalue("postgres_server") if BACKEND == "postgresql" else None
    home = Served(template_home, postgres_server)
    partner = PartnerSimulator(token="test-token", housing_items=5, platform_pages=1, per_page=2).start()
    try:
        home.console.stop()
        with open(home.home / "gateway.toml", "a", encoding="utf-8") as handle:
            handle.write(f'\n[pulls.platform]\nkind = "platform"\nurl = "{partner.url}"\nretries = 2\nbackoff = 0.02\n'
                         'connect_timeout = 2.0\nread_timeout = 10.0\ndivision = "440781"\n')
        home.env["GATEWAY_PULL_PLATFORM_TOKEN"] = partner.token
        home.console = Console(home.home, home.env)
        drafts = home.run("notices", "drafts").stdout  # drafts what the accepted records owe
        assert NOTICE in drafts and "村/社区居委会" in drafts
        home.partner = partner  # type: ignore[attr-defined]
        yield home
    finally:
        partner.stop()
        home.close()


def outcome(html: str) -> str:
    found = re.search(r'<p id="outcome"[^>]*>(.*?)</p>', html, re.S)
    assert found, "no outcome on the page"
    return found.group(1)


def test_the_api_requests_refuses_and_keeps_to_operators(served):
    console = served.console
    url = console.url
    op, csrf = console.session("op")
    body = {"subject_id": CHEN[1], "categories": ["01", "05"], "urgency": "urgent", "to": "510722"}

    made = op.post(url + "/api/assist-checks", json=body, headers={"X-CSRF-Token": csrf}, timeout=60)
    scan_text("POST /api/assist-checks", made.text)
    assert made.status_code == 201, made.text
    answer = made.json()
    row = answer["request"]
    assert answer["sent"] and row["status"] == "sent" and row["subject"] == f"陈** {mask_id(CHEN[1])}"
    assert row["urgency"] == "1" and row["categories"] == "01,05" and row["to_division"] == "510722"
    assert "已发送" in answer["message"] and row["due_date"] in answer["message"]
    [(number, due)] = served.query("SELECT message_id, due_date FROM outgoingrequest WHERE id = ?", row["id"])
    assert number == row["message_id"] and str(due)[:10] == row["due_date"]
    assert [r["XXBH"] for r in served.partner.platform.county_requests] == [row["message_id"]]
    listed = op.get(url + "/api/assist-checks/sent", timeout=30)
    scan_text("GET /api/assist-checks/sent", listed.text)
    assert [r["message_id"] for r in listed.json()] == [row["message_id"]]

    # Bad input: the reason, Chinese first; nothing stored, nothing sent.
    for changed, expected in (({"subject_id": BAD_CHECK}, "公民身份号码校验位不对"), ({"categories": []}, "请至少选择一个协查类别"),
                              ({"to": "51072"}, "协查对象地区代码应为6位数字"), ({"categories": ["99"]}, "没有这个协查类别"),
                              ({"subject_id": "11010519491231002X"}, "本县记录中没有此人，请填写姓名")):
        refused = op.post(url + "/api/assist-checks", json={**body, **changed}, headers={"X-CSRF-Token": csrf}, timeout=30)
        scan_text("POST /api/assist-checks refused", refused.text)
        assert refused.status_code == 400 and refused.json()["detail"].startswith(expected), refused.text
    assert BAD_CHECK not in refused.text
    assert op.post(url + "/api/assist-checks", json=body, timeout=30).status_code == 403  # no CSRF token
    assert served.query("SELECT count(*) FROM outgoingrequest") == [(1,)]

    # A notice draft without a village-level address: refused before it leaves, the reason given.
    drafts = op.get(url + "/api/notices/drafts", timeout=30)
    scan_text("GET /api/notices/drafts", drafts.text)
    # The birth's (09); the police specimen's residence permit (05) and move away (06) owe theirs too.
    assert sorted(d["category"] for d in drafts.json()) == ["05", "06", "09"]
    [draft] = [d for d in drafts.json() if d["category"] == "09"]
    assert draft["message_id"].startswith(NOTICE) and draft["status"] == "draft" and draft["subject"].endswith(mask_id(HUANG_ID))
    assert any("村/社区居委会" in p for p in draft["problems"])
    sent = op.post(f"{url}/api/notices/{draft['id']}/send", headers={"X-CSRF-Token": csrf}, timeout=30)
    scan_text("POST /api/notices/send refused", sent.text)
    assert sent.status_code == 409 and sent.json()["refused_here"] and not sent.json()["sent"]
    assert sent.json()["message"].startswith(f"通报 {draft['message_id']} 不能发出") and "村/社区居委会" in sent.json()["message"]
    assert served.partner.platform.county_notices == []
    assert op.post(f"{url}/api/notices/99999/send", headers={"X-CSRF-Token": csrf}, timeout=30).status_code == 404

    # A security officer reads the lists, a department clerk does not; neither may send.
    for name, reads in (("sec", 200), ("clerk", 403)):
        other, token = console.session(name)
        headers = {"X-CSRF-Token": token}
        assert other.get(url + "/api/assist-checks/sent", timeout=30).status_code == reads
        assert other.get(url + "/api/notices/drafts", timeout=30).status_code == reads
        assert other.post(url + "/api/assist-checks", json=body, headers=headers, timeout=30).status_code == 403
        assert other.post(f"{url}/api/notices/{draft['id']}/send", headers=headers, timeout=30).status_code == 403
        forbidden = other.post(f"{url}/assist-checks/request", data={"csrf_token": token, "subject_id": CHEN[1], "categories": "01",
                                                                     "urgency": "urgent", "to": "510722"}, timeout=30)
        assert forbidden.status_code == 403
        scan_text(f"POST /assist-checks/request as {name}", forbidden.text)
    assert served.query("SELECT count(*) FROM outgoingrequest") == [(1,)]


def test_the_assist_checks_page_in_a_real_browser(browser, served):  # noqa: F811 - the imported fixture
    console = served.console
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    visit = Visit(page, console.url)
    visit.sign_in("op")
    visit.goto("/assist-checks")
    assert page.locator("#request-form").count() == 1
    labels = page.locator("#request-form fieldset").first.inner_text()
    assert "01 基本信息" in labels and "05 流入信息" in labels

    # 发起协查 through the form: the new request's masked subject and due date, then in the list.
    page.fill("#request-form input[name=subject_id]", CHEN[1])
    page.check("#request-form input[name=categories][value='01']")
    page.check("#request-form input[name=categories][value='03']")
    page.check("#request-form input[name=urgency][value='urgent']")
    page.fill("#request-form input[name=to]", "510722")
    page.click("#request-form button[type=submit]")
    page.wait_for_selector("#outcome")
    html = visit.scan()
    [(number, due)] = served.query("SELECT message_id, due_date FROM outgoingrequest WHERE categories = '01,03'")
    told = page.locator("#outcome").inner_text()
    assert told.startswith(f"协查请求 {number} 已发送") and f"陈** {mask_id(CHEN[1])}" in told and str(due)[:10] in told
    row = page.locator("#sent-requests tbody tr", has_text=number)
    assert row.count() == 1 and "510722" in row.inner_text() and "紧急" in row.inner_text() and "陈**" in row.inner_text()
    assert CHEN[1] not in html
    visit.shot("platform-01-request-made")
    # The form answered with a redirect (POST-redirect-GET): reloading shows the outcome, sends nothing again.
    assert "/assist-checks?done=" in page.url
    page.reload()
    assert page.locator("#outcome").inner_text() == told
    assert served.query("SELECT count(*) FROM outgoingrequest WHERE categories = '01,03'") == [(1,)]

    # Bad input: a wrong check character, no category: a clear Chinese-first error, nothing sent.
    page.fill("#request-form input[name=subject_id]", BAD_CHECK)
    page.check("#request-form input[name=categories][value='01']")
    page.fill("#request-form input[name=to]", "510722")
    page.click("#request-form button[type=submit]")
    page.wait_for_selector("#outcome.bad")
    html = visit.scan()
    assert page.locator("#outcome").inner_text().startswith("公民身份号码校验位不对") and BAD_CHECK not in html
    assert page.locator("#request-form input[name=to]").input_value() == "510722"  # kept; the ID number is not
    page.fill("#request-form input[name=subject_id]", CHEN[1])
    page.uncheck("#request-form input[name=categories][value='01']")
    page.click("#request-form button[type=submit]")
    page.wait_for_selector("#outcome.bad")
    visit.scan()
    assert page.locator("#outcome").inner_text().startswith("请至少选择一个协查类别")
    visit.shot("platform-02-request-refused")
    assert served.query("SELECT count(*) FROM outgoingrequest") == [(2,)]
    assert len(served.partner.platform.county_requests) == 2

    # 查看对象: a reason asked; the full name and ID number on this answer only.
    first = page.locator("#assist-checks tbody tr").first
    masked = first.locator("td").nth(4).inner_text()
    reveal = first.locator("form.reveal")
    reveal.locator("button").click()  # no reason: the browser does not send the form
    assert page.locator("#revealed").count() == 0
    reveal.locator("input[name=reason]").fill("核对纸质台账")
    reveal.locator("button").click()
    page.wait_for_selector("#revealed")
    name, id_number = page.locator("#revealed-name").inner_text(), page.locator("#revealed-id").inner_text()
    assert re.fullmatch(r"\d{17}[\dX]", id_number) and masked == f"{name[0]}** {mask_id(id_number)}"
    assert "已记入审计日志" in page.locator("#revealed").inner_text()
    # Not kept: the next page shows masks again (and is scanned as usual).
    html = visit.goto("/assist-checks")
    assert page.locator("#revealed").count() == 0 and id_number not in html and name not in html
    audit = served.query("SELECT detail FROM auditevent WHERE action = 'reveal-subject'")
    assert [d for (d,) in audit if "op (operator, console)" in d and "核对纸质台账" in d], audit
    # Without a reason the server refuses too (a form sent by other means than this page).
    http, csrf = console.session("op")
    check_id = re.search(r"/assist-checks/(\d+)/reveal", reveal.get_attribute("action") or "").group(1)  # type: ignore[union-attr]
    refused = http.post(f"{console.url}/assist-checks/{check_id}/reveal", data={"csrf_token": csrf, "reason": " "}, timeout=30)
    scan_text("POST /assist-checks/N/reveal without a reason", refused.text)
    assert refused.status_code == 400 and "查看全名和身份证号须说明理由" in outcome(refused.text) and 'id="revealed"' not in refused.text
    assert len(served.query("SELECT detail FROM auditevent WHERE action = 'reveal-subject'")) == len(audit)
    # With one: shown on that answer, which no cache keeps (the one answer not scanned, by design).
    shown = http.post(f"{console.url}/assist-checks/{check_id}/reveal", data={"csrf_token": csrf, "reason": "电话核实派出所"}, timeout=30)
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store" and id_number in shown.text
    assert id_number not in http.get(console.url + "/assist-checks", timeout=30).text
    forged = http.post(f"{console.url}/assist-checks/{check_id}/reveal", data={"reason": "核对纸质台账"}, timeout=30)
    assert forged.status_code == 403  # no CSRF token

    # 通报草稿: refused with its reason while the address stops at the street ...
    draft = page.locator("#notice-drafts tbody tr", has_text=BIRTH_CASE)
    assert "村/社区居委会" in draft.inner_text()
    draft.locator("form.send-notice button").click()
    page.wait_for_selector("#outcome.bad")
    visit.scan()
    assert "不能发出" in page.locator("#outcome").inner_text() and "村/社区居委会" in page.locator("#outcome").inner_text()
    assert served.partner.platform.county_notices == []
    visit.shot("platform-03-notice-refused")
    # ... and sent once the hospital corrected the address (a new version of the same record).
    births = specimen("hospital_births_202610.csv").decode("gb18030").replace(STREET_ONLY, VILLAGE).encode("gb18030")
    drop(served.settings, "hospital", "hospital_births_202610_corrected.csv", births)
    served.run("run", "--once")
    visit.goto("/assist-checks")
    draft = page.locator("#notice-drafts tbody tr", has_text=BIRTH_CASE)
    assert "村/社区居委会" not in draft.inner_text()
    draft.locator("form.send-notice button").click()
    page.wait_for_selector("#outcome.ok")
    visit.scan()
    assert "已发出并签发回执" in page.locator("#outcome").inner_text()
    assert [n["XXBH"] for n in served.partner.platform.county_notices] == [
        r for (r,) in served.query("SELECT message_id FROM outgoingnotice WHERE category = '09'")]
    assert served.query("SELECT category, status FROM outgoingnotice ORDER BY category") == [("05", "draft"), ("06", "draft"), ("09", "sent")]
    assert page.locator("#notice-drafts tbody tr", has_text=BIRTH_CASE).count() == 0  # no longer a draft
    visit.shot("platform-04-notice-sent")

    # A security officer sees the lists but no form or button; a clerk sees neither.
    visit.sign_out()
    visit.sign_in("sec")
    html = visit.goto("/assist-checks")
    assert page.locator("#sent-requests").count() == 1 and page.locator("#notice-drafts").count() == 1
    assert page.locator("#request-form, form.reveal, form.send-notice").count() == 0 and "/reveal" not in html
    visit.sign_out()
    visit.sign_in("clerk")
    visit.goto("/assist-checks")
    assert page.locator("#sent-requests, #notice-drafts, #request-form, form.reveal, form.send-notice").count() == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.close()


def test_the_console_pages_answer_plain_http(served):
    """The forms without a browser: a form POST without a session goes to sign in."""
    response = requests.post(served.console.url + "/assist-checks/request", data={"subject_id": CHEN[1]}, allow_redirects=False, timeout=30)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_an_operator_answers_a_request_and_handles_a_notice_from_the_page(served):
    """反馈协查 and 处理通报 from the assist-checks page: a not-found answer needs a remark, a
    notice asking for feedback needs one too; each answer reaches the simulated platform
    (its FKXX) and the row leaves the open list; other roles get 403."""
    console = served.console
    url = console.url
    http, csrf = console.session("op")
    page = http.get(url + "/assist-checks", timeout=30).text
    scan_text("GET /assist-checks", page)
    [(check_id, status)] = served.query("SELECT id, status FROM assistcheck WHERE message_id = ?", "XC-510722-20261102-0002")
    assert status == "open" and f'action="/assist-checks/{check_id}/answer"' in page

    refused = http.post(f"{url}/assist-checks/{check_id}/answer", data={"csrf_token": csrf, "result": "not-found", "remark": " "}, timeout=30)
    assert refused.status_code == 400 and "须写明查了哪些资料" in outcome(refused.text)
    assert served.query("SELECT status FROM assistcheck WHERE id = ?", check_id) == [("open",)]
    answered = http.post(f"{url}/assist-checks/{check_id}/answer", allow_redirects=False, timeout=60,
                         data={"csrf_token": csrf, "result": "not-found", "remark": "已查育龄妇女库、台账、公安户籍"})
    assert answered.status_code == 303, answered.text
    shown = http.get(url + answered.headers["location"], timeout=30).text
    assert "已反馈" in outcome(shown) and f'action="/assist-checks/{check_id}/answer"' not in shown
    assert served.query("SELECT status, answer_result FROM assistcheck WHERE id = ?", check_id) == [("answered", "0")]
    assert "XC-510722-20261102-0002" in [f.message_id for f in served.partner.platform.feedback]
    again = http.post(f"{url}/assist-checks/{check_id}/answer", data={"csrf_token": csrf, "result": "found"}, timeout=30)
    assert again.status_code == 409 and "cannot be answered twice" in outcome(again.text)

    [(notice_id, notice_status)] = served.query("SELECT id, status FROM noticeitem WHERE message_id = ?", "TB-510722-20261102-0001")
    assert notice_status == "open"
    without = http.post(f"{url}/notices-received/{notice_id}/done", data={"csrf_token": csrf, "remark": ""}, timeout=30)
    assert without.status_code == 400 and "该通报需要反馈" in outcome(without.text)
    done = http.post(f"{url}/notices-received/{notice_id}/done", data={"csrf_token": csrf, "remark": "已接收，已更新育龄妇女库"},
                     allow_redirects=False, timeout=60)
    assert done.status_code == 303, done.text
    assert "反馈已发出" in outcome(http.get(url + done.headers["location"], timeout=30).text)
    assert served.query("SELECT status FROM noticeitem WHERE id = ?", notice_id) == [("handled",)]
    assert "TB-510722-20261102-0001" in [f.message_id for f in served.partner.platform.feedback]

    for name in ("sec", "clerk"):
        other, token = console.session(name)
        for path in (f"/assist-checks/{check_id}/answer", f"/notices-received/{notice_id}/done"):
            forbidden = other.post(url + path, data={"csrf_token": token, "result": "found", "remark": "x"}, timeout=30)
            assert forbidden.status_code == 403, (name, path)
