"""Scheduled pulls over real loopback HTTP (the partner simulator): pages as exchanges
with receipts, the cursor, retries with backoff and Retry-After, a partner that is down,
429 storms, a malformed page, and a crash between two pages."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, add_pulls, query, run_gateway
from gateway.config import load_settings
from gateway.exchange.lifecycle import Gateway
from gateway.pulls import Puller, skip
from gateway.receipts.check import verify_receipt

PYTHON = REPO / ".venv" / "bin" / "python"
HOUSING = "/api/v1/occupancy-changes"
INBOX = "/exchange/inbox"


@pytest.fixture
def make_gateway(home, partner, monkeypatch):
    """Configure the pull sources (with the given options), then open the gateway."""
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    opened: list[Gateway] = []

    def make(**options) -> Gateway:
        add_pulls(home, partner, monkeypatch, **{"limit": 10, **options})
        gateway = Gateway(load_settings(home))
        opened.append(gateway)
        return gateway

    yield make
    for gateway in opened:
        gateway.close()


def pull(gateway: Gateway, name: str, **kwargs):  # type: ignore[no-untyped-def]
    puller = Puller(gateway, name, gateway.settings.pulls[name], **kwargs)
    try:
        return puller.run()
    finally:
        puller.close()


def exchanges(home: Path, department: str) -> list[tuple]:
    return query(home, "SELECT id, status, file_name, source_path FROM exchange WHERE department = ? ORDER BY id", department)


def cursor(home: Path, source: str) -> str | None:
    rows = query(home, "SELECT cursor FROM pullcursor WHERE source = ?", source)
    return rows[0][0] if rows else None


# -- the normal course ---------------------------------------------------------------------


def test_housing_pages_become_exchanges_with_receipts(make_gateway, home, partner):
    gateway = make_gateway()
    report = pull(gateway, "housing")
    assert report.ok, report.error
    # The specimen (2 items) then 30 generated items, 10 a page: 4 pages, the last without nextCursor.
    assert [p.event for p in report.pages] == ["page"] * 4
    assert sum(p.accepted for p in report.pages) == 32
    assert cursor(home, "housing") == report.pages[-1].since and cursor(home, "housing").endswith("#22")
    done = exchanges(home, "housing")
    assert [status for _, status, _, _ in done] == ["processed"] * 4
    outbox = home / "mailbox" / "housing" / "outbox"
    for _, _, name, _ in done:
        receipt = outbox / f"{name}.receipt.json"
        assert verify_receipt(receipt, gateway.settings.keys_dir, gateway.engine).genuine
        assert (home / "mailbox" / "housing" / "processed" / name).exists()
        body = json.loads(receipt.read_bytes())
        assert body["department"] == "housing" and body["adapter"] == "housing-registry"
    # The first page is the specimen, byte for byte: its receipt names the specimen's hash.
    first = json.loads((outbox / f"{done[0][2]}.receipt.json").read_bytes())
    assert first["file_sha256"] == hashlib.sha256(partner.housing.specimen).hexdigest()
    assert query(home, "SELECT count(*) FROM record")[0][0] == 32

    again = pull(gateway, "housing")
    assert again.ok and [p.event for p in again.pages] == ["unchanged"]
    assert len(exchanges(home, "housing")) == 4


def test_new_items_on_the_last_page_are_taken_and_nothing_is_stored_twice(make_gateway, home, partner):
    gateway = make_gateway()
    pull(gateway, "housing")
    partner.housing.add_generated(5)
    report = pull(gateway, "housing")
    assert report.ok, report.error
    # The last page, asked again from the same cursor, now has a nextCursor: new bytes, a new
    # exchange whose 10 records are duplicates; then the page with the 5 new items.
    assert [(p.event, p.accepted, p.duplicates) for p in report.pages] == [("page", 0, 10), ("page", 5, 0)]
    assert query(home, "SELECT count(*) FROM record")[0][0] == 37
    assert query(home, "SELECT count(*), count(DISTINCT business_key) FROM record")[0] == (37, 37)


def test_platform_cursor_is_the_jhxx_cursor_and_an_empty_inbox_makes_no_exchange(make_gateway, home, partner):
    gateway = make_gateway()
    report = pull(gateway, "platform")
    assert report.ok, report.error
    assert [p.event for p in report.pages] == ["page"] * 4 + ["empty"]
    assert cursor(home, "platform") == partner.platform.pages[-1][0]
    assert len(exchanges(home, "national-platform")) == 4
    assert (home / "mailbox" / "national-platform" / "outbox" / f"{exchanges(home, 'national-platform')[0][2]}.receipt.json").exists()
    report = pull(gateway, "platform")
    assert [p.event for p in report.pages] == ["empty"] and len(exchanges(home, "national-platform")) == 4
    new_cursor = partner.platform.add_requests(2)
    report = pull(gateway, "platform")
    assert [p.event for p in report.pages] == ["page", "empty"] and cursor(home, "platform") == new_cursor


def test_max_pages_per_run_and_the_next_run_continues(make_gateway, home):
    gateway = make_gateway(max_pages=2)
    first = pull(gateway, "housing")
    assert first.ok and len(first.pages) == 2 and "max_pages" in (first.stopped or "")
    second = pull(gateway, "housing")
    assert second.ok and len([p for p in second.pages if p.event == "page"]) == 2
    assert query(home, "SELECT count(*) FROM record")[0][0] == 32


def test_a_run_stops_between_pages_when_told_to(make_gateway, home):
    gateway = make_gateway()
    answers = iter([True, False])
    report = pull(gateway, "housing", should_continue=lambda: next(answers))
    assert len(report.pages) == 1 and "stopped" in report.stopped
    assert cursor(home, "housing").endswith("#2")


# -- tokens ----------------------------------------------------------------------------------


def test_the_token_comes_from_the_environment_and_a_refused_token_says_so(make_gateway, home, partner, monkeypatch):
    gateway = make_gateway()
    monkeypatch.delenv("GATEWAY_PULL_HOUSING_TOKEN")
    report = pull(gateway, "housing")
    assert not report.ok and "GATEWAY_PULL_HOUSING_TOKEN" in report.error
    monkeypatch.setenv("GATEWAY_PULL_HOUSING_TOKEN", "wrong-token")
    report = pull(gateway, "housing")
    assert "refused our token (HTTP 401)" in report.error and "wrong-token" not in report.error
    assert partner.calls_to(HOUSING) == [401]  # a refused token is not retried
    assert cursor(home, "housing") is None


def test_a_token_in_the_settings_file_is_refused(home):
    from gateway.errors import ConfigError

    with open(home / "gateway.toml", "a", encoding="utf-8") as handle:
        handle.write('\n[pulls.housing]\nkind = "housing"\nurl = "https://fg.example.gov.cn"\ntoken = "abc"\n')
    with pytest.raises(ConfigError, match="GATEWAY_PULL_HOUSING_TOKEN"):
        load_settings(home)


def test_plain_http_to_another_host_is_refused(home):
    from gateway.errors import ConfigError

    with open(home / "gateway.toml", "a", encoding="utf-8") as handle:
        handle.write('\n[pulls.platform]\nkind = "platform"\nurl = "http://ldrk.example.gov.cn"\n')
    with pytest.raises(ConfigError, match="clear text"):
        load_settings(home)


# -- retries ---------------------------------------------------------------------------------


def test_a_429_storm_honours_retry_after(make_gateway, home, partner):
    gateway = make_gateway()
    partner.faults.queue(429, 429, 429, retry_after=1)
    started = time.monotonic()
    report = pull(gateway, "housing")
    elapsed = time.monotonic() - started
    assert report.ok, report.error
    assert [why for why, _ in report.retries.waits] == ["HTTP 429, Retry-After"] * 3
    assert [seconds for _, seconds in report.retries.waits] == [1.0, 1.0, 1.0]
    assert elapsed >= 3.0
    assert partner.calls_to(HOUSING)[:4] == [429, 429, 429, 200]
    assert query(home, "SELECT count(*) FROM record")[0][0] == 32


def test_a_storm_longer_than_the_retries_fails_the_run_and_the_next_run_catches_up(make_gateway, home, partner):
    gateway = make_gateway(retries=2)
    partner.faults.queue(*([429] * 3), retry_after=0)  # Retry-After: 0 -> the backoff applies
    report = pull(gateway, "housing")
    assert not report.ok and "kept failing" in report.error and "retries exhausted" in report.error
    assert partner.calls_to(HOUSING) == [429, 429, 429]
    assert cursor(home, "housing") is None and exchanges(home, "housing") == []
    report = pull(gateway, "housing")
    assert report.ok and query(home, "SELECT count(*) FROM record")[0][0] == 32


def test_a_retry_after_beyond_the_cap_is_not_slept_through(make_gateway, partner):
    gateway = make_gateway(retry_after_max=5)
    partner.faults.queue(503, retry_after=3600)
    started = time.monotonic()
    report = pull(gateway, "platform")
    assert time.monotonic() - started < 3
    assert "asked us to wait 3600s" in report.error and "retry_after_max" in report.error


def test_502s_back_off_exponentially_with_jitter(make_gateway, partner):
    gateway = make_gateway(backoff=0.05, backoff_jitter=0.02, backoff_max=10)
    partner.faults.queue(502, 502, 502)
    report = pull(gateway, "platform")
    assert report.ok, report.error
    waits = [seconds for _, seconds in report.retries.waits]
    assert len(waits) == 3
    for wait, base in zip(waits, (0.05, 0.1, 0.2), strict=True):
        assert base <= wait <= base + 0.02


def test_the_partner_down_for_several_pulls_then_catching_up(make_gateway, home, partner):
    from gateway.platform.jobs import pull_job
    from gateway.scheduler.runner import run_job

    gateway = make_gateway(retries=1)
    partner.stop()
    job = pull_job(gateway.settings, "platform")
    try:
        for _ in range(3):
            result = run_job(gateway.engine, job, lease_seconds=30, force=True)
            assert result is not None and "partner unreachable" in result.error and "refused" in result.error.lower()
        state = query(home, "SELECT runs, failures, last_status FROM jobstate WHERE name = 'pull:platform'")
        assert state == [(3, 3, "error")]
        listing = run_gateway(home, "jobs")
        assert "pull:platform" in listing.stdout and "3 failed in a row" in listing.stdout and "unreachable" in listing.stdout
        assert cursor(home, "platform") is None and exchanges(home, "national-platform") == []

        partner.start()  # the same port
        result = run_job(gateway.engine, job, lease_seconds=30, force=True)
        assert result is not None and result.error is None, result.error
        assert len(exchanges(home, "national-platform")) == 4
        assert query(home, "SELECT failures, last_status FROM jobstate WHERE name = 'pull:platform'") == [(0, "ok")]
    finally:
        job.close()


# -- a page refused as a whole -----------------------------------------------------------------


def test_a_malformed_page_holds_the_cursor_until_an_operator_skips_it(make_gateway, home, partner):
    gateway = make_gateway()
    partner.platform.corrupt(1)  # the second page
    report = pull(gateway, "platform")
    assert report.blocked and "refused as a whole" in report.error and "gateway pulls skip platform" in report.error
    rows = exchanges(home, "national-platform")
    assert [status for _, status, _, _ in rows] == ["processed", "rejected"]
    assert cursor(home, "platform") == partner.platform.pages[0][0]
    assert len(partner.calls_to(INBOX)) == 2  # later pages wait: none is fetched past the bad one
    outbox = home / "mailbox" / "national-platform" / "outbox"
    bad = rows[1][2]
    assert (outbox / f"{bad}.errors.csv").exists() and (outbox / f"{bad}.receipt.json").exists()
    assert json.loads((outbox / f"{bad}.receipt.json").read_bytes())["status"] == "rejected"
    assert (home / "mailbox" / "national-platform" / "rejected" / bad).exists()

    again = pull(gateway, "platform")  # every run reports it again, without another exchange
    assert again.blocked and again.error == report.error
    assert len(exchanges(home, "national-platform")) == 2
    listing = run_gateway(home, "pulls", "list")
    assert "refused page, exchange" in listing.stdout

    refused = run_gateway(home, "pulls", "skip", "platform", check=False)
    assert refused.returncode != 0 and "--reason" in refused.stderr
    moved = run_gateway(home, "pulls", "skip", "platform", "--reason", "platform confirmed the page is void")
    assert partner.platform.pages[1][0] in moved.stdout
    history = query(home, "SELECT event, since, next_cursor, detail FROM pullpage WHERE source = 'platform' ORDER BY id")
    assert [event for event, *_ in history] == ["page", "refused", "skip"]
    assert "platform confirmed the page is void" in history[-1][3]

    report = pull(gateway, "platform")
    assert report.ok and [p.event for p in report.pages] == ["page", "page", "empty"]
    assert [status for _, status, _, _ in exchanges(home, "national-platform")] == ["processed", "rejected", "processed", "processed"]


def test_a_page_the_partner_repairs_is_taken_without_anyone_skipping(make_gateway, home, partner):
    gateway = make_gateway()
    original = partner.platform.pages[1][1]
    partner.platform.corrupt(1)
    assert pull(gateway, "platform").blocked
    partner.platform.repair(1, original)
    report = pull(gateway, "platform")
    assert report.ok and [p.event for p in report.pages] == ["page", "page", "page", "empty"]
    assert query(home, "SELECT blocked_exchange_id FROM pullcursor WHERE source = 'platform'") == [(None,)]


def test_a_malformed_page_without_a_readable_cursor_needs_to(make_gateway, home, partner):
    gateway = make_gateway()
    partner.housing.broken.add(2)  # the page after the specimen
    report = pull(gateway, "housing")
    assert report.blocked and "--to CURSOR" in report.error
    with pytest.raises(Exception, match="names no readable cursor"):
        skip(gateway, "housing", reason="partner says skip")
    skip(gateway, "housing", reason="partner says the next page starts at #12", to="2026-10-23T13:33:00+08:00#12")
    report = pull(gateway, "housing")
    assert report.ok and query(home, "SELECT count(*) FROM record")[0][0] == 2 + 20


# -- a crash between two pages ----------------------------------------------------------------------

CRASHING = """
import os, sys
from pathlib import Path
from gateway.config import load_settings
from gateway.exchange.lifecycle import Gateway
from gateway import pulls

where, home = sys.argv[1], Path(sys.argv[2])
seen = {"pages": 0}
if where == "before-cursor":
    original = pulls.Puller._advance
    def advance(self, *args, **kwargs):
        seen["pages"] += 1
        if seen["pages"] == 2:
            os._exit(9)  # page 2 committed, its cursor not moved yet
        return original(self, *args, **kwargs)
    pulls.Puller._advance = advance
else:
    original = Gateway._store_rows
    def store(self, *args, **kwargs):
        seen["pages"] += 1
        if seen["pages"] == 2:
            os._exit(9)  # page 2 staged, its transaction not committed
        return original(self, *args, **kwargs)
    Gateway._store_rows = store
gateway = Gateway(load_settings(home))
pulls.Puller(gateway, "platform", gateway.settings.pulls["platform"]).run()
"""


@pytest.mark.parametrize("where", ["before-cursor", "before-commit"])
def test_a_crash_between_two_pages_repeats_at_most_that_page(make_gateway, home, partner, where):
    gateway = make_gateway()
    crashed = subprocess.run([str(PYTHON), "-c", CRASHING, where, str(home)], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    assert crashed.returncode == 9, crashed.stderr[-2000:]
    statuses = [status for _, status, _, _ in exchanges(home, "national-platform")]
    assert statuses == (["processed", "processed"] if where == "before-cursor" else ["processed", "received"])
    assert cursor(home, "platform") == partner.platform.pages[0][0]

    report = pull(gateway, "platform")
    assert report.ok, report.error
    expected = ["recovered", "page", "page", "empty"] if where == "before-cursor" else ["page", "page", "page", "empty"]
    assert [p.event for p in report.pages] == expected
    rows = exchanges(home, "national-platform")
    assert [status for _, status, _, _ in rows] == ["processed"] * 4  # one exchange per page, none repeated
    assert query(home, "SELECT count(*), count(DISTINCT business_key) FROM record")[0] == (15, 15)
    chain = query(home, "SELECT sequence FROM receipt ORDER BY sequence")
    assert [s for (s,) in chain] == list(range(1, len(chain) + 1)) and len(chain) == 4
    for _, _, name, _ in rows:
        assert (home / "mailbox" / "national-platform" / "outbox" / f"{name}.receipt.json").exists()
    assert cursor(home, "platform") == partner.platform.pages[-1][0]


def test_pulls_run_from_the_command_line(make_gateway, home, partner):
    make_gateway()
    result = run_gateway(home, "pulls", "run", "housing", "platform")
    assert "housing: 4 page(s) as exchanges" in result.stdout and "platform: 4 page(s) as exchanges" in result.stdout
    listing = run_gateway(home, "pulls", "list")
    assert "housing" in listing.stdout and "#22" in listing.stdout
    history = run_gateway(home, "pulls", "history", "platform")
    assert history.stdout.count(" page ") >= 4
