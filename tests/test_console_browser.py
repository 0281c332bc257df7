"""The web console end to end in a real headless Chromium (Debian's, driven by Playwright;
nothing is downloaded): sign in, today's exchanges after a drop, an exchange's masked
rejected rows and receipt, a genuine and a tampered receipt verified, a record proof
downloaded and checked offline, and a department clerk refused another department's
exchange. Every page visited is scanned for unmasked ID numbers and names; screenshots
are kept in test-artifacts/console/<backend>/."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from console_helpers import ARTIFACTS, PASSWORDS, Console, prepared_home, scan_text
from conftest import run_gateway

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


def test_console_in_a_real_browser(browser, settings, home, tmp_path):
    ids = prepared_home(settings, home)
    hospital, police = ids["hospital"], ids["police"]
    console = Console(home)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 860}, accept_downloads=True)
        visit = Visit(page, console.url)

        # An operator signs in and sees today's exchanges: the hospital's 3 accepted, 3 refused rows.
        visit.sign_in("op")
        row = page.locator("#today tr", has_text="hospital")
        assert row.locator("td").nth(1).inner_text() == "1"
        assert row.locator("td").nth(2).inner_text() == "3" and row.locator("td").nth(3).inner_text() == "3"
        assert page.locator("#today tr", has_text="police").locator("td").nth(2).inner_text() == "5"
        visit.shot("01-overview-operator")

        # The exchanges list, filtered to the hospital, then one exchange: masked rows and its receipt.
        visit.goto("/exchanges?department=hospital")
        assert page.locator("#exchanges tbody tr").count() == 1
        visit.shot("02-exchanges-hospital")
        page.click(f"#exchanges a[href='/exchanges/{hospital}']")
        html = visit.scan()
        assert "440781********0660" in html  # the mother's ID number with the wrong check character, masked
        errors = page.locator("#issues tr.level-error")
        assert errors.count() == 3
        assert "R0000000" in page.locator("#receipt").inner_text()
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
        assert page.locator("#verdict .big").inner_text() == "GENUINE"
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
        assert page.locator("#verdict .big").inner_text() == "NOT GENUINE"
        assert "FAIL signature" in page.locator("#verdict").inner_text()
        visit.shot("05-receipt-tampered")

        # Operators do not download proofs (they hold a record in full); the other pages open.
        assert page.locator("#proof-form").count() == 0
        for path, marker in (("/ledger", "#checkpoints"), ("/deliveries", "#deliveries"), ("/assist-checks", "#assist-checks"), ("/jobs", "#adapters")):
            visit.goto(path)
            assert page.locator(marker).count() == 1, path
        visit.shot("06-deliveries")
        visit.sign_out()

        # A security officer downloads a record's inclusion proof; it verifies offline.
        visit.sign_in("sec")
        visit.goto(f"/receipts?exchange={hospital}")
        page.fill("#proof-form input[name=leaf_index]", "1")
        with page.expect_download() as waiting:
            page.click("#proof-form button[type=submit]")
        proof = tmp_path / "record.proof.json"
        waiting.value.save_as(str(proof))
        checked = run_gateway(home, "receipts", "verify-proof", str(proof), "--keys", str(settings.keys_dir))
        assert "GENUINE" in checked.stdout and "NOT GENUINE" not in checked.stdout
        proof.unlink()  # it holds the record in full
        visit.goto("/audit")
        audit = page.locator("#audit").inner_text()
        assert f"sec (security-officer) viewed the full record 1" in audit and f"op (operator) viewed 5 row error(s) (masked) of exchange {hospital}" in audit
        visit.shot("07-audit-log")
        visit.sign_out()

        # The hospital's clerk sees the hospital only, and is refused the police exchange.
        visit.sign_in("clerk")
        assert page.locator("#today tbody tr").count() == 1 and "hospital" in page.locator("#today").inner_text()
        visit.shot("08-overview-hospital-clerk")
        visit.goto("/exchanges")
        assert page.locator("#exchanges tbody tr").count() == 1
        visit.goto(f"/exchanges?department=police")
        assert "No exchanges match." in page.locator("#exchanges").inner_text()
        answer = page.goto(f"{console.url}/exchanges/{police}")
        visit.scan()
        assert answer.status == 403 and page.locator("h1").inner_text() == "Refused"
        visit.shot("09-refused-other-department")
        api = page.request.get(f"{console.url}/api/exchanges/{police}")
        assert api.status == 403
        assert page.request.get(f"{console.url}/exchanges/{police}/receipt.json").status == 403
        assert page.request.get(f"{console.url}/jobs").status == 403
        page.close()
    finally:
        console.stop()
    if os.environ.get("GATEWAY_CONSOLE_DOCS_SCREENSHOT"):
        shutil.copy(ARTIFACTS / "01-overview-operator.png", Path(__file__).resolve().parents[1] / "docs" / "console-overview.png")
