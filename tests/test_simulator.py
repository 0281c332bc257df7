"""The partner simulator serves the formats exactly: the specimens as first pages, the
cursors, the token, deterministic faults, the feedback it records; `gateway simulate`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest
import requests
from lxml import etree

from conftest import REPO, SPECIMENS
from gateway.devkit.simulator import PartnerSimulator, id_check_char

# Backend-independent (the partner simulator on loopback; no gateway home, no database): runs on one backend only (tests/conftest.py).
pytestmark = pytest.mark.backend_independent


GATEWAY = str(REPO / ".venv" / "bin" / "gateway")


def get(simulator: PartnerSimulator, path: str, token: str = "test-token", **params: str) -> requests.Response:
    return requests.get(simulator.url + path, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_housing_pages_start_with_the_specimen_and_the_last_has_no_next_cursor(partner):
    first = get(partner, "/api/v1/occupancy-changes")
    assert first.status_code == 200 and first.content == (SPECIMENS / "housing_occupancy_page1.json").read_bytes()
    cursor, items = json.loads(first.content)["nextCursor"], 2
    while cursor:
        page = json.loads(get(partner, "/api/v1/occupancy-changes", since=cursor, limit="7").content)
        items += len(page["items"])
        for item in page["items"]:
            for person in item["owners"] + item["occupants"]:
                assert id_check_char(person["idNo"][:17]) == person["idNo"][17]
        cursor = page.get("nextCursor")
    assert items == 32
    assert get(partner, "/api/v1/occupancy-changes", since="nonsense").status_code == 400


def test_platform_pages_start_with_the_specimen_then_an_empty_page_keeps_the_cursor(partner):
    first = get(partner, "/exchange/inbox")
    assert first.content == (SPECIMENS / "national_platform_inbound_20261102.xml").read_bytes()
    cursor, pages = etree.fromstring(first.content).get("CURSOR"), 1
    while True:
        root = etree.fromstring(get(partner, "/exchange/inbox", since=cursor).content)
        if len(root) == 0:
            assert root.get("CURSOR") == cursor
            break
        assert root.get("JSDW") == "440781" and {el.tag for el in root} <= {"XCXX", "TBXX"}
        assert {el.get("XXBH").split("-")[1] for el in root} == {root.get("FSDW")}  # one sending county a page
        cursor, pages = root.get("CURSOR"), pages + 1
    assert pages == 4


def test_the_token_is_required(partner):
    assert get(partner, "/exchange/inbox", token="wrong").status_code == 401
    assert requests.get(partner.url + "/exchange/inbox", timeout=10).headers["WWW-Authenticate"].startswith("Bearer")


def test_faults_are_deterministic_for_a_seed():
    def statuses(seed: int) -> list[int]:
        with PartnerSimulator(("platform",), token="t", seed=seed, throttle_rate=0.2, error_rate=0.2) as simulator:
            return [get(simulator, "/exchange/inbox", token="t").status_code for _ in range(30)]

    first = statuses(7)
    assert first == statuses(7) and first != statuses(8)
    assert {429, 502, 200} <= set(first)
    with PartnerSimulator(("platform",), token="t", throttle_rate=1.0, retry_after=4) as simulator:
        response = get(simulator, "/exchange/inbox", token="t")
        assert response.status_code == 429 and response.headers["Retry-After"] == "4"


def test_feedback_is_checked_and_recorded(partner, tmp_path):
    def post(body: str) -> requests.Response:
        return requests.post(partner.url + "/exchange/feedback", data=body.encode("utf-8"),
                             headers={"Authorization": "Bearer test-token"}, timeout=10)

    good = post('<FKXX XXBH="XC-510722-20261102-0001" PDJG="0" BZ="未查到" FKSJ="2026-11-06T09:00:00+08:00"/>')
    assert good.status_code == 200 and etree.fromstring(good.content).get("JSZT") == "1"
    no_remark = post('<FKXX XXBH="XC-510722-20261102-0001" PDJG="0" FKSJ="2026-11-06T09:00:00+08:00"/>')
    assert no_remark.status_code == 400 and "BZ" in etree.fromstring(no_remark.content).get("CWXX")
    unknown = post('<FKXX XXBH="XC-000000-1" PDJG="0" BZ="x" FKSJ="2026-11-06T09:00:00+08:00"/>')
    assert unknown.status_code == 400
    assert post("<FKXX").status_code == 400
    assert [f.message_id for f in partner.platform.feedback] == ["XC-510722-20261102-0001"]
    listing = requests.get(partner.url + "/_sim/feedback", timeout=10).json()
    assert listing[0]["XXBH"] == "XC-510722-20261102-0001" and listing[0]["PDJG"] == "0"


def test_a_stopped_partner_refuses_connections_and_comes_back_on_the_same_port(partner):
    port = partner.port
    partner.stop()
    try:
        requests.get(partner.url + "/exchange/inbox", timeout=2)
        raise AssertionError("the stopped simulator answered")
    except requests.exceptions.ConnectionError:
        pass
    partner.start()
    assert partner.port == port and get(partner, "/exchange/inbox").status_code == 200


def test_gateway_simulate_serves_until_ctrl_c(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [GATEWAY, "simulate", "all", "--port", str(port), "--token", "abc", "--malformed-page", "2", "--record-dir", str(tmp_path / "fk")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.get(url + "/exchange/inbox", headers={"Authorization": "Bearer abc"}, timeout=2)
                break
            except requests.exceptions.ConnectionError:
                assert time.monotonic() < deadline, "gateway simulate did not start"
                time.sleep(0.2)
        assert response.status_code == 200
        cursor = etree.fromstring(response.content).get("CURSOR")
        broken = requests.get(url + "/exchange/inbox", params={"since": cursor}, headers={"Authorization": "Bearer abc"}, timeout=2)
        assert broken.content.endswith(b"<<<")  # --malformed-page 2
        housing = requests.get(url + "/api/v1/occupancy-changes", headers={"Authorization": "Bearer abc"}, timeout=2)
        assert housing.status_code == 200
        posted = requests.post(url + "/exchange/feedback", headers={"Authorization": "Bearer abc"}, timeout=2,
                               data='<FKXX XXBH="XC-510722-20261102-0001" PDJG="0" BZ="x" FKSJ="2026-11-06T09:00:00+08:00"/>'.encode())
        assert posted.status_code == 200 and len(list((tmp_path / "fk").iterdir())) == 1
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert f"127.0.0.1:{port}" in out and "Stopped." in out
