"""Issue 20, "Full identifiers still reach people": the privacy crawl of the console.

A real `gateway serve` over a home with exchanges whose file names hold an 18-digit ID
number, a 15-digit legacy one, a phone number and names, and platform messages whose ids
(协查编号 XXBH) embed them. For every role (operator, security officer, a department's
account, the population office) every page of the navigation, every exchange's page and
receipt download, and every GET route of the OpenAPI schema with the ids that exist is
fetched; the scan (IdScanner with the planted identifiers, looking inside longer digit runs
too) finds no full identifier in any body or header. The one exception is documented
(docs/security.md): the signed receipt's bytes keep the sender's file name as signed, for a
security officer and the sending department only, each download audited, and they verify.

Then errors: report URLs with the years 0000 and 9999 are a 400 with the console's page,
and an unexpected exception is the console's error page (Chinese first) or JSON, with the
security headers, and a log line that quotes nothing."""

from __future__ import annotations

import json
import logging
import re
import threading
import time

import pytest
import requests
from conftest import BACKEND, PRIVACY, drop, hospital_births_file, specimen
from console_helpers import PASSWORDS, Served, free_port
from stdnum.cn import ric

from gateway.store.audit import IdScanner

pytestmark = pytest.mark.slow

# Built at run time, never written whole: the suite's scan reads the test sources for numbers.
_BODY = "44078119860412" + "331"
ID18 = _BODY + ric.calc_check_digit(_BODY)
ID15 = "440781" + "760918" + "523"  # a legacy (一代) number: 6-digit division, YYMMDD, 3 digits
PHONE = "139" + "2765" + "4321"
NAME = "欧阳明月"  # made up
SPECIMEN_NAME = "陈小明"  # a newborn of the hospital specimen: a name of a record of that exchange
POP_PASSWORD = "lantern-ferry-census-9"
SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy", "x-frame-options")

PERSONAL_NAMES = {
    "id18": f"{NAME}{ID18}出生登记.csv",
    "id15": f"户籍_{ID15}_202610.csv",
    "phone_name": f"{SPECIMEN_NAME}{PHONE}.csv",
}


@pytest.fixture(scope="module")
def served(template_home, request):
    postgres_server = request.getfixturevalue("postgres_server") if BACKEND == "postgresql" else None
    home = Served(template_home, postgres_server)
    try:
        _plant(home)
        yield home
    finally:
        # The department's own outbox keeps its names in the signed receipts (docs/security.md):
        # the one place they may be, taken out before the suite's scan reads the home.
        for name in PERSONAL_NAMES.values():
            for path in home.settings.mailbox_root.glob(f"*/outbox/{name}.receipt.json*"):
                PRIVACY.files.pop(str(path), None)  # collected after each test of the module
                path.unlink()
        home.close()


def _plant(home: Served) -> None:
    """Drops named after people, and platform messages whose ids embed their numbers."""
    from gateway.platform import assist_checks
    from gateway.web.accounts import add_user

    settings = home.settings
    drop(settings, "hospital", PERSONAL_NAMES["id18"], hospital_births_file(7, 3))  # accepted
    drop(settings, "police", PERSONAL_NAMES["id15"], specimen("police_hukou_202610.csv"))  # a duplicate, receipted
    drop(settings, "hospital", PERSONAL_NAMES["phone_name"], b"\xff\xfe not a births file")  # refused, receipted
    platform = specimen("national_platform_inbound_20261102.xml").decode("utf-8")
    for old, new in (("XC-510722-20261102-0001", f"XC{ID18}0001"), ("XC-510722-20261102-0002", f"XC-{ID15}-0002"),
                     ("TB-510722-20261102-0001", f"TB{PHONE}{ID15}01"), ("20261102100000-0003", "20261103100000-0001")):
        assert old in platform
        platform = platform.replace(old, new)
    drop(settings, "national-platform", "national_platform_inbound_20261103.xml", platform.encode("utf-8"))
    home.run("run", "--once")
    home.run("register", "divisions", "--example")  # the register's routes answer a township
    engine = home.engine()
    try:
        assert assist_checks.sync(engine, settings).requests == 2
        add_user(engine, "pop", "department", POP_PASSWORD, "population-office", list(settings.departments))
    finally:
        engine.dispose()
    rows = home.query("SELECT id, department, file_name, status FROM exchange")
    home.planted = {name: (exchange_id, department, status) for exchange_id, department, name, status in rows  # type: ignore[attr-defined]
                    if name in PERSONAL_NAMES.values()}
    assert len(home.planted) == 3, rows  # type: ignore[attr-defined]
    home.exchange_ids = sorted(exchange_id for exchange_id, *_ in rows)  # type: ignore[attr-defined]
    messages = {m for (m,) in home.query("SELECT message_id FROM assistcheck")} | {m for (m,) in home.query("SELECT message_id FROM noticeitem")}
    assert {f"XC{ID18}0001", f"XC-{ID15}-0002", f"TB{PHONE}{ID15}01"} <= messages, messages


def scanner() -> IdScanner:
    base = PRIVACY.scanner or PRIVACY.make_scanner()
    return IdScanner(base.known | {ID18, ID15}, [*base.names, NAME, SPECIMEN_NAME], phones=base.phones | {PHONE}, embedded=True)


def sign_in(url: str, name: str) -> requests.Session:
    http = requests.Session()
    password = POP_PASSWORD if name == "pop" else PASSWORDS[name]
    answer = http.post(url + "/api/session", json={"name": name, "password": password}, timeout=30)
    assert answer.status_code == 200, answer.text
    return http


def shown(answer: requests.Response) -> str:
    """What a person or a script sees of an answer: its headers and its body."""
    return "\n".join(f"{k}: {v}" for k, v in answer.headers.items()) + "\n\n" + answer.text


def _api_paths(schema: dict, exchange_ids: list[int], township: str | None) -> list[str]:
    """Every GET route of the schema, its path parameters filled with what exists, and once
    more with every boolean query parameter true (answered, handled, sent: the whole lists)."""
    paths = []
    for template, operations in sorted(schema["paths"].items()):
        operation = operations.get("get")
        if operation is None:
            continue
        parameters = operation.get("parameters", [])
        fillings: list[dict[str, str]] = [{}]
        for parameter in (p for p in parameters if p["in"] == "path"):
            values = parameter["schema"].get("enum") or (exchange_ids if "exchange" in parameter["name"] else [1, 2, 3])
            fillings = [{**f, parameter["name"]: str(v)} for f in fillings for v in values]
        query = {}
        for parameter in (p for p in parameters if p["in"] == "query" and p.get("required")):
            assert parameter["name"] == "township", f"{template}: fill the required {parameter['name']}"
            query[parameter["name"]] = township or "x"
        flags = {p["name"]: "true" for p in parameters if p["in"] == "query" and p["schema"].get("type") == "boolean"}
        for filling in fillings:
            path = template.format(**filling)
            for extra in ([query, {**query, **flags}] if flags else [query]):
                paths.append(path + ("?" + "&".join(f"{k}={v}" for k, v in extra.items()) if extra else ""))
    return paths


def _nav(html: str) -> list[str]:
    [nav] = re.findall(r"<nav>(.*?)</nav>", html, re.S)
    return re.findall(r'href="([^"]+)"', nav)


def _signed_receipt(served: Served, path: str, answer: requests.Response) -> str:
    """A signed receipt's bytes: exactly the department's receipt file, the sender's name in
    it as signed; returns the answer as shown with that one name taken out."""
    body = answer.json()["body"] if path.startswith("/api/") else answer.text
    name = json.loads(body)["file_name"]
    outbox = served.settings.mailbox_root / json.loads(body)["department"] / "outbox"
    assert body.encode("utf-8") == (outbox / f"{name}.receipt.json").read_bytes(), path
    text = shown(answer)
    assert name not in "\n".join(answer.headers.values()), path  # the download is named after the receipt
    return text.replace(json.dumps(name)[1:-1], "«signed file name»").replace(name, "«signed file name»")


def _proof(answer: requests.Response) -> str:
    """A record's inclusion proof holds the record in full (that is what it proves) and the
    signed receipt: the rest of it, as shown, with those two taken out."""
    document = answer.json()
    assert {"leaf_index", "payload"} <= set(document.pop("record")), document.keys()
    name = json.loads(document["receipt"]["body"])["file_name"]
    headers = "\n".join(f"{k}: {v}" for k, v in answer.headers.items())
    return headers + "\n\n" + json.dumps(document, ensure_ascii=False).replace(name, "«signed file name»")


def test_every_page_and_api_answer_masks_every_identifier_for_every_role(served):
    url, scan = served.console.url, scanner()
    from gateway.register.divisions import load_divisions

    township = next(iter(load_divisions(served.settings.home).townships.values())).code
    findings: list[str] = []
    crawled: dict[str, int] = {}
    signed_seen: dict[str, int] = {}

    def look(role: str, http: requests.Session, path: str) -> requests.Response:
        answer = http.get(url + path, timeout=60)
        assert answer.status_code < 500, (role, path, answer.status_code, answer.text[:300])
        text = shown(answer)
        signed = answer.status_code == 200 and (re.fullmatch(r"/api/exchanges/\d+/receipt", path)
                                                 or re.fullmatch(r"/exchanges/\d+/receipt\.json", path))
        if signed:
            text = _signed_receipt(served, path, answer)
            signed_seen[role] = signed_seen.get(role, 0) + 1
        elif answer.status_code == 200 and re.fullmatch(r"/api/exchanges/\d+/proof", path):
            text = _proof(answer)
            signed_seen[f"{role} proof"] = signed_seen.get(f"{role} proof", 0) + 1
        PRIVACY.outputs.append((f"{role} GET {path}", text))
        findings.extend(f"{role} GET {path}: {finding}" for finding in scan.scan(text, path))
        crawled[role] = crawled.get(role, 0) + 1
        return answer

    for role in ("op", "sec", "clerk", "pop"):
        http = sign_in(url, role)
        overview = look(role, http, "/")
        assert overview.status_code == 200
        pages = _nav(overview.text)
        assert "/exchanges" in pages and "/assist-checks" in pages
        for path in pages:
            assert look(role, http, path).status_code == 200, (role, path)
        look(role, http, "/assist-checks?answered=true")
        for exchange_id in served.exchange_ids:
            for path in (f"/exchanges/{exchange_id}", f"/exchanges/{exchange_id}/receipt.json", f"/exchanges/{exchange_id}/receipt.json.asc"):
                look(role, http, path)
        schema = http.get(url + "/openapi.json", timeout=30).json()
        for path in _api_paths(schema, served.exchange_ids, township):
            look(role, http, path)
    assert not findings, "\n".join(findings)
    assert min(crawled.values()) > 40, crawled

    # The planted names are there, masked: the crawl saw them (it did not pass on empty pages).
    op = sign_in(url, "op")
    listed = op.get(url + "/api/exchanges", timeout=30).json()
    from gateway.masking import mask_file_name

    for name, (exchange_id, _department, _status) in served.planted.items():
        [row] = [r for r in listed if r["id"] == exchange_id]
        assert row["file_name"] == mask_file_name(name)
        detail = op.get(f"{url}/api/exchanges/{exchange_id}", timeout=30).json()
        assert json.loads(detail["receipt"]["body"])["file_name"] == mask_file_name(name)
    checks = op.get(url + "/api/assist-checks?answered=true", timeout=30).json()
    assert f"XC{ID18[:6]}" in " ".join(c["message_id"] for c in checks) and "*" * 11 in " ".join(c["message_id"] for c in checks)

    # The signed bytes: never for an operator; for the officer and the sending department, audited.
    hospital_planted = next(i for i, d, _ in served.planted.values() if d == "hospital")
    assert op.get(f"{url}/api/exchanges/{hospital_planted}/receipt", timeout=30).status_code == 403
    assert op.get(f"{url}/exchanges/{hospital_planted}/receipt.json", timeout=30).status_code == 403
    assert signed_seen.get("sec", 0) >= 2 * len(served.exchange_ids) and signed_seen.get("clerk", 0) >= 4, signed_seen
    assert not {"op", "pop", "op proof", "pop proof"} & set(signed_seen) and signed_seen.get("clerk proof"), signed_seen
    audit = sign_in(url, "sec").get(url + "/api/audit?limit=1000", timeout=30).json()
    downloads = [a["detail"] for a in audit if "the signed receipt" in a["detail"]]
    assert any(d.startswith("clerk (department:hospital) viewed the signed receipt R") and "as a download" in d for d in downloads)
    assert any(d.startswith("sec (security-officer) viewed the signed receipt R") and "via the API" in d for d in downloads)


def test_a_downloaded_signed_receipt_verifies(served, tmp_path):
    exchange_id = next(i for i, d, _ in served.planted.values() if d == "hospital")
    clerk = sign_in(served.console.url, "clerk")
    body = clerk.get(f"{served.console.url}/exchanges/{exchange_id}/receipt.json", timeout=30)
    signature = clerk.get(f"{served.console.url}/exchanges/{exchange_id}/receipt.json.asc", timeout=30)
    disposition = body.headers["content-disposition"]
    stem = re.search(r'filename="(R\d{8})\.receipt\.json"', disposition)
    assert stem, disposition
    receipt = tmp_path / f"{stem[1]}.receipt.json"
    receipt.write_bytes(body.content)
    (tmp_path / f"{stem[1]}.receipt.json.asc").write_bytes(signature.content)
    try:
        checked = served.run("receipts", "verify", "--keys", str(served.settings.keys_dir), str(receipt))
        assert "GENUINE" in checked.stdout and "NOT GENUINE" not in checked.stdout
    finally:
        receipt.unlink()  # it holds the sender's file name as signed


def _secured(answer: requests.Response) -> None:
    for header in SECURITY_HEADERS:
        assert header in {k.lower() for k in answer.headers}, (answer.url, header, dict(answer.headers))
    assert answer.headers["content-security-policy"].startswith("default-src 'none'")


def test_report_urls_with_years_0000_and_9999_answer_the_console_page(served):
    url = served.console.url
    op = sign_in(url, "op")
    for path in ("/reports?kind=monthly&label=0000-01", "/reports?kind=annual&label=9999", "/reports?kind=quarterly&label=9999Q4",
                 "/reports?kind=half-year&label=0000H1", "/reports/monthly/0000-01.html", "/reports/annual/9999.html"):
        answer = op.get(url + path, timeout=60)
        assert answer.status_code == 400, (path, answer.status_code, answer.text[:300])
        assert answer.headers["content-type"].startswith("text/html"), path
        _secured(answer)
        assert "统计年份应在1900至9998之间" in answer.text and "部门间数据交换网关" in answer.text, path
    for path in ("/api/reports/annual?label=9999", "/api/reports/monthly?label=0000-12"):
        answer = op.get(url + path, timeout=60)
        assert answer.status_code == 400 and "1900" in answer.json()["detail"], (path, answer.text)
        _secured(answer)


class _InThread:
    """The console's app (gateway/web/app.py `create_app`) under a real uvicorn server on
    loopback, in this process, so that a test can make one of its functions fail."""

    def __init__(self, settings):  # type: ignore[no-untyped-def]
        import uvicorn

        from gateway.web.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the console did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def test_an_unexpected_error_is_the_consoles_error_page_with_its_headers(served, monkeypatch, caplog):
    from gateway.web import data

    caplog.set_level(logging.DEBUG, logger="gateway")

    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"ledger failed on '{NAME}' ({ID18})")

    monkeypatch.setattr(data, "ledger_summary", broken)
    console = _InThread(served.settings)
    try:
        http = sign_in(console.url, "op")
        page = http.get(console.url + "/ledger", timeout=30)
        api = http.get(console.url + "/api/ledger", timeout=30)
        anonymous = requests.get(console.url + "/api/ledger", timeout=30)
    finally:
        console.stop()
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    _secured(page)
    assert page.headers.get("cache-control") == "no-store"
    assert "出错了" in page.text and page.text.index("服务器内部错误") < page.text.index("An unexpected error")
    assert 'id="who"' in page.text  # the console's own page, with its menu
    reference = re.search(r"错误编号 Error reference: ([0-9a-f]{8})", page.text)
    assert reference, page.text
    assert api.status_code == 500 and api.headers["content-type"].startswith("application/json")
    _secured(api)
    assert "服务器内部错误" in api.json()["detail"] and re.fullmatch(r"[0-9a-f]{8}", api.json()["reference"])
    assert anonymous.status_code == 401  # the failure is after sign-in: nothing about it before
    for answer in (page, api):
        assert not scanner().scan(shown(answer)) and ID18 not in answer.text and NAME not in answer.text
    logged = [r.getMessage() for r in caplog.records if r.name == "gateway.web"]
    assert any(reference[1] in line and "RuntimeError" in line and "in broken" in line for line in logged), logged
    assert not any(ID18 in line or NAME in line for line in logged), logged
