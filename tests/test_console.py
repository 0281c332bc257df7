"""The web console (`gateway serve`) against a real home, served by a real process.

In a real headless Chromium (Debian's, driven by Playwright; nothing is downloaded): sign
in, today's exchanges after a drop, an exchange's masked rejected rows and receipt, a
genuine and a tampered receipt verified, a record proof downloaded and checked offline,
and a department clerk refused another department's exchange. Then the JSON API:
department scoping, CSRF, sign-in back-off and unlock, Argon2id hashes, the audit log, /metrics without
personal data, and the API fuzzed against its own OpenAPI schema (schemathesis).

Every page and API answer is scanned for unmasked ID numbers and names; screenshots are
kept in test-artifacts/console/<backend>/. One home and one server serve the module's
tests (each test leaves the others' accounts alone)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from console_helpers import ARTIFACTS, PASSWORDS, from_address, gateway_command, scan_text, served  # noqa: F401 - served: the shared fixture

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.slow


@pytest.fixture
def browser():
    """Debian's chromium, headless. Fails (never skips) when it is missing: ./scripts/bootstrap installs it."""
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: run ./scripts/bootstrap (apt-get install chromium)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


class Visit:
    """A browser page whose every visited page is scanned and can be photographed."""

    def __init__(self, page, base: str):
        self.page, self.base = page, base
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def scan(self) -> str:
        html = self.page.content()
        scan_text(f"console page {self.page.url}", html)
        return html

    def goto(self, path: str) -> str:
        self.page.goto(self.base + path)
        return self.scan()

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def sign_in(self, name: str) -> None:
        self.page.goto(self.base + "/")
        assert self.page.url.startswith(self.base + "/login")
        self.page.fill("input[name=name]", name)
        self.page.fill("input[name=password]", PASSWORDS[name])
        self.page.click("form[action='/login'] button[type=submit]")
        self.page.wait_for_selector("#who")
        self.scan()

    def sign_out(self) -> None:
        self.page.click("form[action='/logout'] button")
        self.page.wait_for_selector("input[name=password]")


def test_console_in_a_real_browser(browser, served, tmp_path):
    settings, home, console = served.settings, served.home, served.console
    hospital, police = served.ids["hospital"], served.ids["police"]
    page = browser.new_page(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    visit = Visit(page, console.url)

    # An operator signs in and sees today's exchanges: the hospital's 3 accepted, 3 refused rows.
    visit.sign_in("op")
    row = page.locator("#today tr", has_text="hospital")
    assert row.locator("td").nth(1).inner_text() == "1"
    assert row.locator("td").nth(2).inner_text() == "3" and row.locator("td").nth(3).inner_text() == "3"
    assert page.locator("#today tr", has_text="police").locator("td").nth(2).inner_text() == "5"
    due = page.locator("#assist-checks-due").inner_text()
    assert "XC-510722-20261102-0001" in due and "杨**" in due  # overdue: listed, its subject masked
    visit.shot("01-overview-operator")

    # The exchanges list, filtered to the hospital, then one exchange: masked rows and its receipt.
    visit.goto("/exchanges?department=hospital")
    assert page.locator("#exchanges tbody tr").count() == 1
    visit.shot("02-exchanges-hospital")
    page.click(f"#exchanges a[href='/exchanges/{hospital}']")
    html = visit.scan()
    assert "440781***********0" in html  # the mother's ID number with the wrong check character, masked
    errors = page.locator("#issues tr.level-error")
    assert errors.count() == 3
    assert "R0000000" in page.locator("#receipt").inner_text()
    page.click("#receipt-section summary")
    assert '"signing_key"' in page.locator("#receipt-body").inner_text()
    visit.shot("03-exchange-detail")

    # The receipt as the hospital got it: genuine, by the gateway's key, at its ledger position.
    outbox = settings.mailbox_root / "hospital" / "outbox"
    receipt = outbox / "hospital_births_202610.csv.receipt.json"
    signature = outbox / "hospital_births_202610.csv.receipt.json.asc"
    document = json.loads(receipt.read_bytes())
    visit.goto("/receipts")
    page.set_input_files("#verify-form input[name=receipt]", str(receipt))
    page.set_input_files("#verify-form input[name=signature]", str(signature))
    page.click("#verify-form button[type=submit]")
    page.wait_for_selector("#verdict")
    visit.scan()
    assert page.locator("#verdict .big").inner_text() == "真实有效"
    assert page.locator("#verdict-key").inner_text() == document["signing_key"]
    assert page.locator("#verdict-position").inner_text() == str(document["ledger"]["sequence"])
    visit.shot("04-receipt-genuine")

    # One changed figure and the same signature: not genuine.
    tampered = tmp_path / "hospital_births_202610.csv.receipt.json"
    tampered.write_bytes(receipt.read_bytes().replace(b'"accepted":3', b'"accepted":4'))
    assert tampered.read_bytes() != receipt.read_bytes()
    page.set_input_files("#verify-form input[name=receipt]", str(tampered))
    page.set_input_files("#verify-form input[name=signature]", str(signature))
    page.click("#verify-form button[type=submit]")
    page.wait_for_selector("#verdict")
    visit.scan()
    assert page.locator("#verdict .big").inner_text() == "不是真实回执"
    assert "未通过 signature" in page.locator("#verdict").inner_text()
    visit.shot("05-receipt-tampered")

    # Operators do not download proofs (they hold a record in full); the other pages open.
    assert page.locator("#proof-form").count() == 0
    for path, marker in (("/ledger", "#checkpoints"), ("/deliveries", "#deliveries"), ("/assist-checks", "#assist-checks"), ("/jobs", "#adapters")):
        visit.goto(path)
        assert page.locator(marker).count() == 1, path
        if path == "/assist-checks":
            assert page.locator("#assist-checks tbody tr").count() == 2
            assert "510722***********7" in page.locator("#assist-checks").inner_text()
            assert page.locator("#notices tbody tr").count() == 1 and "**" in page.locator("#notices").inner_text()
            assert "assist_check_urgent" in page.locator("#deadline-rules").inner_text()
    visit.shot("06-deliveries")

    # Reconciliation: evaluated from the page (a POST with its CSRF token); the hospital's two
    # births nobody registered with the police are open gaps, on the page and the overview.
    visit.goto("/reconciliation")
    page.click("form[action='/reconciliation/evaluate'] button")
    page.wait_for_selector("#evaluated")
    visit.scan()
    assert page.locator("#rules tr", has_text="unregistered-births").locator("td").nth(3).inner_text() == "2"
    visit.shot("07-reconciliation")
    visit.goto("/")
    assert "unregistered-births: 2" in page.locator("#gaps").inner_text()
    visit.shot("07-overview-with-gaps")

    # A population report with its charts (inline SVG, nothing fetched).
    visit.goto("/reports?kind=monthly&label=2026-10")
    assert page.locator("#report-title").inner_text().startswith("2026-10 月报")
    assert page.locator("svg.chart").count() == 2 and page.locator("#table-changes table").count() == 1
    visit.shot("08-report-monthly")
    visit.sign_out()

    # A security officer downloads a record's inclusion proof; it verifies offline.
    visit.sign_in("sec")
    visit.goto(f"/receipts?exchange={hospital}")
    page.fill("#proof-form input[name=leaf_index]", "1")
    with page.expect_download() as waiting:
        page.click("#proof-form button[type=submit]")
    proof = tmp_path / "record.proof.json"
    waiting.value.save_as(str(proof))
    checked = served.run("receipts", "verify-proof", str(proof), "--keys", str(settings.keys_dir))
    assert "GENUINE" in checked.stdout and "NOT GENUINE" not in checked.stdout
    proof.unlink()  # it holds the record in full
    visit.goto("/audit")
    audit = page.locator("#audit").inner_text()
    assert f"sec (security-officer) viewed the full record 1" in audit and f"op (operator) viewed 5 row error(s) (masked) of exchange {hospital}" in audit
    # The view of the assist-checks names its subjects (masked), with the account and its address.
    seen = page.locator("#audit tbody tr", has_text="op (operator) viewed 2 assist-check subject(s) (masked) on the assist-checks page").first
    cells = seen.locator("td").all_inner_texts()
    assert cells[2:8] == ["console-view", "op", "operator", "national-platform", "127.0.0.1", "GET /assist-checks"], cells
    assert "510722***********7" in cells[8], cells
    visit.shot("09-audit-log")
    visit.sign_out()

    # The hospital's clerk sees the hospital only, and is refused the police exchange.
    visit.sign_in("clerk")
    assert page.locator("#today tbody tr").count() == 1 and "hospital" in page.locator("#today").inner_text()
    assert "XC-510722" not in visit.scan()  # the platform's assist-checks are not the hospital's
    visit.shot("10-overview-hospital-clerk")
    visit.goto("/reconciliation")  # the hospital is told about the births it sent
    assert page.locator("#rules tr", has_text="unregistered-births").locator("td").nth(3).inner_text() == "2"
    assert page.locator("form[action='/reconciliation/evaluate']").count() == 0
    assert page.request.get(f"{console.url}/reports").status == 403
    visit.goto("/exchanges")
    assert page.locator("#exchanges tbody tr").count() == 1
    visit.goto(f"/exchanges?department=police")
    assert "没有符合条件的交换" in page.locator("#exchanges").inner_text()
    answer = page.goto(f"{console.url}/exchanges/{police}")
    visit.scan()
    assert answer.status == 403 and page.locator("h1").inner_text() == "拒绝访问"
    visit.shot("11-refused-other-department")
    api = page.request.get(f"{console.url}/api/exchanges/{police}")
    assert api.status == 403
    assert page.request.get(f"{console.url}/exchanges/{police}/receipt.json").status == 403
    assert page.request.get(f"{console.url}/jobs").status == 403
    page.close()
    if os.environ.get("GATEWAY_CONSOLE_DOCS_SCREENSHOT"):  # refreshes the README's picture
        shutil.copy(ARTIFACTS / "07-overview-with-gaps.png", Path(__file__).resolve().parents[1] / "docs" / "console-overview.png")


def test_accounts_scoping_csrf_lockout_audit_and_metrics(served):
    settings, home, console = served.settings, served.home, served.console
    hospital, police = served.ids["hospital"], served.ids["police"]
    [(stored_hash,)] = served.query("SELECT password_hash FROM consoleuser WHERE name = ?", "clerk")
    assert stored_hash.startswith("$argon2id$") and PASSWORDS["clerk"] not in stored_hash
    url = console.url
    # Not signed in: the API says 401, a page sends the browser to the sign-in form.
    assert requests.get(url + "/api/exchanges", timeout=10).status_code == 401
    page = requests.get(url + "/exchanges", timeout=10, allow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")

    # The clerk's API answers hold the hospital only, whatever is asked.
    clerk, clerk_csrf = console.session("clerk")
    cookie = clerk.cookies.get_dict()
    assert set(cookie) == {"gateway_console"}
    listed = clerk.get(url + "/api/exchanges", timeout=10).json()
    assert [e["department"] for e in listed] == ["hospital"]
    assert clerk.get(url + "/api/exchanges", params={"department": "police"}, timeout=10).json() == []
    for path in (f"/api/exchanges/{police}", f"/api/exchanges/{police}/receipt", f"/api/exchanges/{police}/proof", "/api/jobs", "/api/audit",
                 "/api/reports/monthly"):
        assert clerk.get(url + path, timeout=10).status_code == 403, path
    overview = clerk.get(url + "/api/overview", timeout=10).json()
    assert [d["department"] for d in overview["departments"]] == ["hospital"] and overview["jobs"] is None
    detail = clerk.get(url + f"/api/exchanges/{hospital}", timeout=10)
    scan_text("api exchange detail", detail.text)
    assert [i["row_number"] for i in detail.json()["issues"] if i["level"] == "error"] == [5, 6, 7]
    own_proof = clerk.get(url + f"/api/exchanges/{hospital}/proof", params={"row": 2}, timeout=10)
    assert own_proof.status_code == 200 and own_proof.json()["record"]["row_number"] == 2

    # A write without the session's CSRF token is refused; with it, it is done.
    outbox = settings.mailbox_root / "hospital" / "outbox"
    files = {
        "receipt": ("r.receipt.json", (outbox / "hospital_births_202610.csv.receipt.json").read_bytes()),
        "signature": ("r.receipt.json.asc", (outbox / "hospital_births_202610.csv.receipt.json.asc").read_bytes()),
    }
    assert clerk.post(url + "/api/receipts/verify", files=files, timeout=30).status_code == 403
    assert clerk.post(url + "/api/receipts/verify", files=files, headers={"X-CSRF-Token": "forged"}, timeout=30).status_code == 403
    verdict = clerk.post(url + "/api/receipts/verify", files=files, headers={"X-CSRF-Token": clerk_csrf}, timeout=30).json()
    assert verdict["genuine"] is True and verdict["exchange_id"] == hospital and verdict["ledger_sequence"] >= 1
    # The page's sign-out form without its token: refused, and the session lives on.
    assert clerk.post(url + "/logout", data={"csrf_token": "forged"}, timeout=10, allow_redirects=False).status_code == 403
    assert clerk.get(url + "/api/me", timeout=10).status_code == 200
    # The sign-in form needs the token its page set in a cookie.
    assert requests.post(url + "/login", data={"name": "op", "password": PASSWORDS["op"]}, timeout=10).status_code in (403, 422)

    # Viewing personal data (masked or in full) is in the audit log; the officer reads it.
    officer, _ = console.session("sec")
    audit = officer.get(url + "/api/audit", timeout=10).json()
    details = [a["detail"] for a in audit if a["action"] == "console-view"]
    downloads = [a["detail"] for a in audit if a["action"] == "download"]  # a proof holds the record in full
    assert any(d.startswith("clerk (department:hospital) viewed the full record") for d in downloads), downloads
    assert any(f"row error(s) (masked) of exchange {hospital}" in d for d in details), details

    # Five wrong passwords make this client wait for this account (30 s, then doubling): even the
    # right password then gets the one refusal every failure gets. Another client is not held up;
    # `gateway users unlock` lifts the wait without a new password.
    for _ in range(5):
        wrong = requests.post(url + "/api/session", json={"name": "locky", "password": "not-the-password"}, timeout=30)
        assert wrong.status_code == 401
    locked = requests.post(url + "/api/session", json={"name": "locky", "password": PASSWORDS["locky"]}, timeout=30)
    assert locked.status_code == 401 and locked.json() == wrong.json()
    assert locked.json()["detail"].startswith("用户名或密码错误")
    [(blocked_until,)] = served.query("SELECT blocked_until FROM signinbackoff WHERE client = ?", "127.0.0.1")
    assert blocked_until is not None
    elsewhere = from_address("127.0.0.9").post(url + "/api/session", json={"name": "locky", "password": PASSWORDS["locky"]}, timeout=30)
    assert elsewhere.status_code == 200, elsewhere.text
    unlocked = subprocess.run([gateway_command(), "users", "unlock", "locky", "--home", str(home)],
                              capture_output=True, text=True, timeout=60, env={**os.environ, **served.env})
    assert unlocked.returncode == 0 and unlocked.stdout.startswith("已解除 locky 的登录退避"), unlocked.stdout + unlocked.stderr
    assert requests.post(url + "/api/session", json={"name": "locky", "password": PASSWORDS["locky"]}, timeout=30).status_code == 200

    # Disabling an account ends its sessions at once.
    gone, _ = console.session("gone")
    assert gone.get(url + "/api/me", timeout=10).status_code == 200
    served.run("users", "disable", "gone")
    assert gone.get(url + "/api/me", timeout=10).status_code == 401

    # Every page, for every role: scanned for unmasked identifiers; odd input is a clear 4xx.
    pages = ["/", "/exchanges", f"/exchanges/{hospital}", "/receipts", "/ledger", "/deliveries", "/assist-checks?answered=true",
             "/jobs", "/audit", "/reconciliation", "/reports?kind=quarterly&label=2026Q4", "/reports?kind=annual&label=20x6", "/exchanges?date_from=0001-01-01&date_to=9999-12-31&status=processed"]
    for name in ("op", "sec", "clerk"):
        http, _ = console.session(name)
        for path in pages:
            answer = http.get(url + path, timeout=30, allow_redirects=False)
            assert answer.status_code in ((400, 403) if "20x6" in path else (200, 403)), (name, path, answer.status_code)
            scan_text(f"console page {path} as {name}", answer.text)
        assert http.get(url + "/exchanges/99999999999999999999", timeout=10).status_code == 422
        assert http.get(url + "/exchanges?date_from=yesterday", timeout=10).status_code == 422
        assert http.get(url + "/exchanges/4000", timeout=10).status_code == 404

    # Metrics: counts per department, no record, name or identifier.
    metrics = requests.get(url + "/metrics", timeout=10).text
    scan_text("metrics", metrics)
    assert 'gateway_records_accepted_total{department="hospital"} 3.0' in metrics
    assert 'gateway_rows_rejected_total{department="hospital"} 3.0' in metrics
    assert 'gateway_exchanges_total{department="police",status="processed"} 1.0' in metrics
    for name in ("gateway_queue_depth", "gateway_receipts_total", "gateway_exchange_processing_seconds_count", "gateway_deliveries"):
        assert name in metrics
    headers = requests.get(url + "/login", timeout=10).headers
    assert "default-src 'none'" in headers["content-security-policy"] and headers["x-frame-options"] == "DENY"
    # Nothing served loads a third party's script (Swagger UI and ReDoc would, from a CDN).
    assert [requests.get(url + page, timeout=10).status_code for page in ("/docs", "/redoc")] == [404, 404]
    assert requests.get(url + "/openapi.json", timeout=10).json()["paths"]


def test_users_command_refuses_bad_accounts(served):
    from gateway.web.accounts import AccountProblem, add_user as add

    engine, departments = served.engine(), list(served.settings.departments)
    try:
        for args, problem in (
            (("short", "operator", "short", None), "at least 10"),
            (("clerk2", "department", "long-enough-1", None), "needs --department"),
            (("clerk3", "department", "long-enough-1", "nowhere"), "unknown department"),
            (("op2", "operator", "long-enough-1", "hospital"), "only for the department role"),
            (("x", "auditor", "long-enough-1", None), "unknown role"),
        ):
            with pytest.raises(AccountProblem, match=problem):
                add(engine, *args, departments)
    finally:
        engine.dispose()
    env = {**os.environ, **served.env}
    added = subprocess.run([gateway_command(), "users", "add", "newop", "--role", "operator", "--password-stdin", "--home", str(served.home)],
                           input=PASSWORDS["op"] + "\n", capture_output=True, text=True, timeout=60, env=env)
    assert added.returncode == 0 and "Added newop: operator" in added.stdout, added.stderr
    again = subprocess.run([gateway_command(), "users", "add", "newop", "--role", "operator", "--password-stdin", "--home", str(served.home)],
                           input=PASSWORDS["op"] + "\n", capture_output=True, text=True, timeout=60, env=env)
    assert again.returncode == 2 and "exists" in again.stderr
    # No --password option exists: a password is never a command-line argument.
    assert served.run("users", "add", "x", "--role", "operator", "--password", "long-enough-1", check=False).returncode == 2
    listed = served.run("users", "list").stdout
    assert "newop" in listed and "clerk" in listed and "hospital" in listed


REVEAL = "POST /api/assist-checks/{check_id}/reveal"


def test_api_fuzzed_against_its_openapi_schema(served):
    """schemathesis generates requests from /openapi.json for every operation, signed in
    as an operator with the CSRF header; no answer may be a server error."""
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings

    console = served.console
    http, csrf = console.session("op")
    http.headers["X-CSRF-Token"] = csrf
    schema = schemathesis.openapi.from_url(console.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    seen: dict[str, set[int]] = {}
    def fuzz_operation(operation):  # type: ignore[no-untyped-def]
        label = f"{operation.method.upper()} {operation.path}"

        @hypothesis_settings(max_examples=6, deadline=None, database=None, derandomize=True,
                             suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def fuzz(case):  # type: ignore[no-untyped-def]
            response = case.call(base_url=console.url, session=http, timeout=30)
            seen.setdefault(label, set()).add(response.status_code)
            assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:300]}"
            if label == REVEAL and response.status_code == 200:
                # The one answer that shows a subject in full, by design: an operator stated a
                # reason and it is audited (tests/test_platform_county.py). Not a leak to scan for.
                assert {"message_id", "name", "id_number"} <= set(response.json()), response.text[:300]
            else:
                scan_text(f"fuzzed {label}", response.text)

        fuzz()

    for operation in operations:
        fuzz_operation(operation)
    assert set(seen) == {f"{op.method.upper()} {op.path}" for op in operations}
    assert any(200 in codes for codes in seen.values())
