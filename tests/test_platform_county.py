"""Answers that are right: a draft looks in every department's records (a hospital birth's
mother is found), and an operator may reveal one request's subject, with a reason, audited;
everyone else keeps seeing masks. Real HTTP: the partner simulator and `gateway serve`."""

from __future__ import annotations

import datetime as dt

import pytest
from console_helpers import served  # noqa: F401 - served: the shared fixture
from conftest import _run_gateway_unscanned, add_pulls, drop, query, run_gateway, specimen
from gateway import clock
from gateway.config import load_settings
from gateway.errors import GatewayError
from gateway.exchange.lifecycle import Gateway
from gateway.obligations.deadlines import WorkCalendar, use_calendar
from gateway.platform import assist_checks
from gateway.pulls import Puller

NOW = dt.datetime(2026, 11, 6, 9, 0, tzinfo=clock.CHINA)
CHEN = ("陈丽", "440781199203154325", "1992-03-15")  # the mother in the hospital specimen


@pytest.fixture(autouse=True)
def pinned():
    use_calendar(WorkCalendar(holidays=[], workdays=[], years={2026}))
    with clock.pinned(NOW):
        yield
    use_calendar(None)


@pytest.fixture
def gw(home, partner, monkeypatch):
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    add_pulls(home, partner, monkeypatch, sources=("platform",))
    gateway = Gateway(load_settings(home))
    yield gateway
    gateway.close()


def pull(gateway: Gateway) -> None:
    puller = Puller(gateway, "platform", gateway.settings.pulls["platform"])
    try:
        assert puller.run().ok
    finally:
        puller.close()
    assist_checks.sync(gateway.engine, gateway.settings)


def xcxx(number: str, categories: str) -> str:
    name, id_number, born = CHEN
    return (f'<XCXX XXBH="{number}" JJCD="1" FQSJ="2026-11-05" FX="HJD_TO_XJZD"><DX XM="{name}" GMSFHM="{id_number}" '
            f'CSRQ="{born}"/><XCNR LB="{categories}">请协查</XCNR></XCXX>')


def test_a_mother_in_a_hospital_birth_record_is_not_drafted_not_found(gw, home, partner):
    drop(gw.settings, "hospital", "hospital_births_202610.csv", specimen("hospital_births_202610.csv"))
    gw.run_once()
    partner.platform.add_page([xcxx("XC-510722-20261105-0201", "01,04,09")])
    pull(gw)
    draft = assist_checks.get_check(gw.engine, "XC-510722-20261105-0201").draft
    assert draft.result == "1" and draft.searched == ["register", "ledger", "police", "records"]
    sources = {f.category: f.source for f in draft.findings}
    # the register (folded from the hospital feed) knows who she is and her child; the
    # childbirth itself comes from the hospital record
    assert sources == {"01": "register", "04": "register", "09": "records"}
    childbirth = next(f for f in draft.findings if f.category == "09").text()
    assert "医院出生医学证明" in childbirth and "2026-10" in childbirth
    shown = run_gateway(home, "assist-checks", "show", "XC-510722-20261105-0201").stdout
    assert "09 生育信息 (records)" in shown and "陈**" in shown and CHEN[1] not in shown
    # The answer carries the department's finding to the platform.
    assert assist_checks.answer(gw, gw.settings, "XC-510722-20261105-0201", found=True, remark=None).sent
    taken = partner.platform.feedback[-1].body.decode("utf-8")
    assert 'LB="09"' in taken and "医院出生医学证明" in taken


def test_a_reveal_needs_a_reason_and_is_audited(gw, home, partner):
    partner.platform.add_page([xcxx("XC-510722-20261105-0202", "01")])
    pull(gw)
    refused = run_gateway(home, "assist-checks", "reveal", "XC-510722-20261105-0202", check=False)
    assert refused.returncode == 2 and "理由" in refused.stderr and CHEN[1] not in refused.stdout + refused.stderr
    with pytest.raises(GatewayError, match="reason"):
        assist_checks.reveal_subject(gw.engine, "XC-510722-20261105-0202", reason="  ", who="test")
    assert query(home, "SELECT count(*) FROM auditevent WHERE action = 'reveal-subject'") == [(0,)]
    # Not scanned for privacy: showing the full identity is what this command is for.
    shown = _run_gateway_unscanned(home, "assist-checks", "reveal", "XC-510722-20261105-0202", "--reason", "核对纸质台账")
    assert CHEN[0] in shown.stdout and CHEN[1] in shown.stdout
    rows = query(home, "SELECT department, detail FROM auditevent WHERE action = 'reveal-subject'")
    assert len(rows) == 1 and rows[0][0] == "national-platform"
    assert "XC-510722-20261105-0202" in rows[0][1] and "核对纸质台账" in rows[0][1] and "(command line)" in rows[0][1]
    assert CHEN[1] not in rows[0][1] and CHEN[0] not in rows[0][1]
    # The list still masks.
    listed = run_gateway(home, "assist-checks", "list").stdout
    assert "陈**" in listed and CHEN[1] not in listed


def test_only_an_operator_may_reveal_in_the_console_with_a_reason(served):
    console = served.console
    check_id = served.query("SELECT id FROM assistcheck ORDER BY id")[0][0]
    url = f"{console.url}/api/assist-checks/{check_id}/reveal"
    op, op_csrf = console.session("op")
    sec, sec_csrf = console.session("sec")
    clerk, clerk_csrf = console.session("clerk")
    assert sec.post(url, json={"reason": "核对台账"}, headers={"X-CSRF-Token": sec_csrf}, timeout=30).status_code == 403
    assert clerk.post(url, json={"reason": "核对台账"}, headers={"X-CSRF-Token": clerk_csrf}, timeout=30).status_code == 403
    assert op.post(url, json={"reason": "核对台账"}, headers={"X-CSRF-Token": "forged"}, timeout=30).status_code == 403
    assert op.post(url, json={"reason": ""}, headers={"X-CSRF-Token": op_csrf}, timeout=30).status_code == 422
    assert served.query("SELECT count(*) FROM auditevent WHERE action = 'reveal-subject'") == [(0,)]
    answer = op.post(url, json={"reason": "电话核实派出所"}, headers={"X-CSRF-Token": op_csrf}, timeout=30)
    assert answer.status_code == 200, answer.text
    revealed = answer.json()
    assert revealed["id"] == check_id and len(revealed["id_number"]) == 18 and "*" not in revealed["id_number"] + revealed["name"]
    detail = served.query("SELECT detail FROM auditevent WHERE action = 'reveal-subject'")
    assert len(detail) == 1 and "op (operator, console)" in detail[0][0] and "电话核实派出所" in detail[0][0]
    assert revealed["id_number"] not in detail[0][0]
    listing = op.get(console.url + "/api/assist-checks?answered=true", timeout=30).json()
    assert all(revealed["id_number"] not in str(row) for row in listing)
    missing = op.post(f"{console.url}/api/assist-checks/99999/reveal", json={"reason": "核对台账"}, headers={"X-CSRF-Token": op_csrf}, timeout=30)
    assert missing.status_code == 404
