"""Issue 14, personal data in file names: a clerk names a drop after a person (a full name
and an ID number in the name). The signed receipt keeps the name as sent; every log line,
CLI listing, console page and API answer, and every delivered file shows it masked
(gateway/masking.py, `mask_file_name`)."""

from __future__ import annotations

import logging

import pytest
from conftest import drop, query, run_gateway, specimen
from console_helpers import PASSWORDS, Console
from stdnum.cn import ric

from gateway.exchange.lifecycle import Gateway
from gateway.masking import mask_file_name, mask_file_path, scrubbed_traceback

SPECIMEN = "hospital_births_202610.csv"
FULL_NAME = "欧阳明月"  # a made-up person
_BODY = "44078119850709123"
ID_NUMBER = _BODY + ric.calc_check_digit(_BODY)  # built here: the suite's scan flags any valid one it sees


def personal_name() -> str:
    return f"{FULL_NAME}{ID_NUMBER}出生登记.csv"


def leaks(text: str) -> list[str]:
    return [part for part in (FULL_NAME, ID_NUMBER, FULL_NAME[:2], ID_NUMBER[6:14]) if part in text]


def remove_receipts(settings) -> None:  # type: ignore[no-untyped-def]
    """The one place the name may be, taken out before the suite's scan reads the home."""
    for path in (settings.mailbox_root / "hospital" / "outbox").glob("*.receipt.json*"):
        path.unlink()


@pytest.mark.backend_independent
def test_the_mask_keeps_one_character_a_digest_and_the_extension():
    name = personal_name()
    shown = mask_file_name(name)
    assert shown.startswith("欧…#") and shown.endswith(".csv") and not leaks(shown)
    assert mask_file_name(name) == shown and mask_file_name(name.replace("欧", "王")) != shown
    assert mask_file_name(f"{ID_NUMBER}.csv").startswith("?…#")  # a leading digit is not shown either
    assert mask_file_path(f"hospital/inbox/{name}") == f"hospital/inbox/{shown}"
    assert mask_file_name(f"{FULL_NAME}.{ID_NUMBER}") == mask_file_name(f"{FULL_NAME}.{ID_NUMBER}")
    assert not leaks(mask_file_name(f"x.{ID_NUMBER}"))  # an "extension" that is not one is not shown
    assert mask_file_name("") == "" and mask_file_name(None) == ""


def test_a_personal_file_name_is_only_in_the_signed_receipt(gateway, settings, register_recipients, caplog):
    caplog.set_level(logging.DEBUG, logger="gateway")
    name = personal_name()
    drop(settings, "hospital", name, specimen(SPECIMEN))
    [outcome] = gateway.run_once()
    assert (outcome.status, outcome.accepted) == ("processed", 3)
    gateway.close()

    # The receipt keeps the name as the sender gave it; the logs never show it.
    import json

    receipt = json.loads((settings.mailbox_root / "hospital" / "outbox" / f"{name}.receipt.json").read_bytes())
    assert receipt["file_name"] == name
    assert not leaks(caplog.text), caplog.text
    assert mask_file_name(name) in caplog.text  # the log names it, masked

    # Delivered files: what every entitled department received, decrypted with its own key.
    delivered = 0
    for department in ("population-office", "school", "police"):
        ring, _ = register_recipients[department]
        for path in (settings.mailbox_root / department / "outbox").iterdir():
            assert not leaks(path.name)
            plain, _status = ring.decrypt(path)
            text = plain.decode("gb18030", errors="replace") if isinstance(plain, bytes) else str(plain)
            assert not leaks(text), (department, text[:400])
            delivered += 1
    assert delivered == 3

    # CLI listings.
    [(exchange_id,)] = query(settings, "SELECT id FROM exchange")
    for args in (("exchanges", "list"), ("exchanges", "show", str(exchange_id)), ("deliveries", "list")):
        result = run_gateway(settings.home, *args)
        assert not leaks(result.stdout + result.stderr), (args, result.stdout)
    assert mask_file_name(name) in run_gateway(settings.home, "exchanges", "list").stdout

    # The console: pages and the JSON API.
    from gateway.store import make_engine
    from gateway.web.accounts import add_user

    engine = make_engine(settings.db_url)
    try:
        add_user(engine, "op", "operator", PASSWORDS["op"], None, list(settings.departments))
        add_user(engine, "sec", "security-officer", PASSWORDS["sec"], None, list(settings.departments))
    finally:
        engine.dispose()
    console = Console(settings.home, {})
    try:
        http, _csrf = console.session("op")
        officer, _ = console.session("sec")
        pages = [(http, p) for p in ("/api/exchanges", "/api/deliveries", "/api/acknowledgements", "/exchanges", "/deliveries", "/")]
        for client, path in pages + [(officer, "/api/audit"), (officer, "/audit")]:
            answer = client.get(console.url + path, timeout=30)
            assert answer.status_code == 200, (path, answer.status_code)
            assert not leaks(answer.text), (path, answer.text[:400])
        detail = http.get(f"{console.url}/api/exchanges/{exchange_id}", timeout=30).json()
        assert detail["exchange"]["file_name"] == mask_file_name(name)
        # The receipt as shown: its file name masked (issue 20); the signed bytes are a download.
        assert json.loads(detail["receipt"]["body"])["file_name"] == mask_file_name(name) and not leaks(detail["receipt"]["body"])
        assert http.get(f"{console.url}/api/exchanges/{exchange_id}/receipt", timeout=30).status_code == 403  # not an operator's
        signed = officer.get(f"{console.url}/api/exchanges/{exchange_id}/receipt", timeout=30).json()
        assert not leaks(signed["file_name"]) and name in signed["body"]  # the signed receipt, as signed
        download = officer.get(f"{console.url}/exchanges/{exchange_id}/receipt.json", timeout=30)
        assert download.status_code == 200 and not leaks(download.headers.get("content-disposition", ""))
    finally:
        console.stop()
        remove_receipts(settings)


def test_an_unexpected_failure_logs_no_text_of_the_file(gateway, settings, caplog, monkeypatch):
    """process_safely: an adapter's or library's exception quoting the file is logged
    scrubbed, with where it was raised, and the file is left for the next pass."""
    caplog.set_level(logging.DEBUG, logger="gateway")
    name = personal_name()
    drop(settings, "hospital", name, specimen(SPECIMEN))

    def process(self, found):  # type: ignore[no-untyped-def]
        try:
            int(FULL_NAME)
        except ValueError as inner:
            raise RuntimeError(f"adapter failed on {FULL_NAME} ({ID_NUMBER}) in {found.path}") from inner

    monkeypatch.setattr(Gateway, "process", process)
    assert gateway.run_once() == []
    assert (settings.mailbox_root / "hospital" / "inbox" / name).exists()
    assert "processing failed; left in the inbox" in caplog.text
    assert "RuntimeError" in caplog.text and "ValueError" in caplog.text and "in process" in caplog.text
    assert not leaks(caplog.text), caplog.text
    assert not any(record.exc_info for record in caplog.records)


@pytest.mark.backend_independent
def test_a_scrubbed_traceback_keeps_the_frames_and_drops_the_quotes():
    try:
        raise KeyError(f"'{FULL_NAME}'")
    except KeyError as exc:
        text = scrubbed_traceback(exc)
    assert "KeyError" in text and "test_a_scrubbed_traceback" in text and not leaks(text)


def test_log_lines_of_refused_acknowledgements_mask_the_name(gateway, settings, caplog):
    caplog.set_level(logging.DEBUG, logger="gateway")
    name = f"ACK-{FULL_NAME}.json"
    drop(settings, "school", name, b"{}")
    gateway.run_once()
    gateway.close()
    assert f"school/inbox/{mask_file_name(name)}" in caplog.text  # its outcome is logged, masked
    assert not leaks(caplog.text), caplog.text


def test_a_transport_refusal_names_the_drop_masked(gateway, settings, caplog):
    """Not a regular file (a named pipe left in the inbox under a person's name): refused with
    a reason that holds no part of the name, and the log and the exchange row show it masked
    (the transports' own messages go through `mask_file_path`, an OSError's text through
    `os_reason`)."""
    import os

    caplog.set_level(logging.DEBUG, logger="gateway")
    name = personal_name()
    inbox = settings.mailbox_root / "hospital" / "inbox"
    drop(settings, "hospital", "good.csv", specimen(SPECIMEN))
    os.mkfifo(inbox / name)
    outcomes = gateway.run_once()
    assert ("processed", "good.csv") in [(o.status, o.file_name) for o in outcomes]
    refused = [o for o in outcomes if o.file_name == name]
    assert len(refused) == 1 and refused[0].status == "rejected"
    assert refused[0].reason == "not a regular file"
    assert not leaks(caplog.text)
    rows = query(settings, "SELECT reason FROM exchange WHERE status = 'rejected'")
    assert rows and not any(leaks(reason or "") for (reason,) in rows)
    remove_receipts(settings)


@pytest.mark.backend_independent
def test_an_os_error_is_described_without_its_path():
    from gateway.intake.transports.base import os_reason

    error = PermissionError(13, "Permission denied", f"/srv/hospital/inbox/{personal_name()}")
    assert FULL_NAME in str(error) and os_reason(error) == "Permission denied"
    assert os_reason(RuntimeError(personal_name())) == "RuntimeError"
