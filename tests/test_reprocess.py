"""Reprocessing a refused file (重新处理) once its cause is fixed: `gateway exchanges
reprocess ID` and the console's button, on a real home, real GnuPG and the real server."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator

import pytest
from conftest import drop, query, run_gateway, specimen
from console_helpers import scan_text, served  # noqa: F401 - served: the shared fixture
from gpg_helpers import DepartmentKeyring

from gateway.exchange.reprocess import ReprocessRefused, reprocess
from gateway.receipts.check import verify_receipt
from gateway.receipts.keys import DepartmentKeys

SPECIMEN = "hospital_births_202610.csv"


@pytest.fixture(scope="module")
def keyring() -> Iterator[tuple[DepartmentKeyring, str, str]]:
    ring = DepartmentKeyring()
    hospital, other = ring.new_key("Hospital Exchange"), ring.new_key("Hospital New Key")
    yield ring, hospital, other
    ring.close()


def variant(n: int) -> bytes:
    """The specimen with other certificate numbers, so that each drop stores new records."""
    text = specimen(SPECIMEN).decode("gb18030").replace("Q4407812600", f"Q44078128{n}0")
    return text.encode("gb18030")


def refused_for_its_key(settings, gateway, keyring, n: int) -> int:
    """A hospital drop signed by a key the gateway does not know yet: refused at once."""
    ring, hospital, other = keyring
    keys = DepartmentKeys(settings.keys_dir)
    if not keys.for_department("hospital"):
        keys.import_key(ring.export(hospital), "hospital")
    data = variant(n)
    drop(settings, "hospital", "births.csv.asc", ring.sign(data, other))
    drop(settings, "hospital", "births.csv", data)
    [outcome] = gateway.run_once()
    assert outcome.status == "rejected" and "registered key" in outcome.reason
    return outcome.exchange_id


def test_a_file_refused_for_an_unregistered_key_is_reprocessed_once_the_key_is_registered(settings, gateway, keyring):
    ring, _, other = keyring
    first = refused_for_its_key(settings, gateway, keyring, 1)
    rejected = settings.mailbox_root / "hospital" / "rejected"
    assert {"births.csv", "births.csv.asc"} <= {p.name for p in rejected.iterdir()}

    # Not fixed yet: reprocessing makes a new exchange, refused again for the same reason.
    again = reprocess(gateway, first, "test")
    assert again.outcome.status == "rejected" and again.outcome.exchange_id != first
    # Fixed: the department's new key is registered; the second refusal is reprocessed.
    DepartmentKeys(settings.keys_dir).import_key(ring.export(other), "hospital")
    done = run_gateway(settings.home, "exchanges", "reprocess", str(again.outcome.exchange_id))
    assert "已重新处理为交换" in done.stdout and "3 accepted" in done.stdout, done.stdout

    rows = query(settings, "SELECT id, status, supersedes, accepted, archived_path FROM exchange ORDER BY id")
    assert [(r[1], r[2]) for r in rows] == [("rejected", None), ("rejected", first), ("processed", again.outcome.exchange_id)]
    newest = rows[-1]
    assert newest[3] == 3 and newest[4] == "hospital/processed/births.csv"
    # Its records are stored once, in the new exchange.
    assert query(settings, "SELECT exchange_id, COUNT(*) FROM record GROUP BY exchange_id") == [(newest[0], 3)]
    processed = settings.mailbox_root / "hospital" / "processed"
    assert (processed / "births.csv").read_bytes() == variant(1)
    assert (processed / "births.csv.asc").exists()
    assert (rejected / "births.csv").read_bytes() == variant(1)  # the first receipts' bytes stay where they say

    # Its own receipt, genuine, naming the same file's bytes.
    receipt = settings.mailbox_root / "hospital" / "outbox" / f"births.csv.exchange-{newest[0]}.receipt.json"
    assert verify_receipt(receipt, settings.keys_dir).genuine
    body = json.loads(receipt.read_bytes())
    assert body["status"] == "processed"

    # The first shows it was reprocessed, and by which; twice is refused; audited.
    shown = run_gateway(settings.home, "exchanges", "show", str(again.outcome.exchange_id)).stdout
    assert f"已由交换 {newest[0]} 重新处理" in shown
    twice = run_gateway(settings.home, "exchanges", "reprocess", str(again.outcome.exchange_id), check=False)
    assert twice.returncode == 1 and "不能重新处理" in twice.stdout and f"exchange {newest[0]}" in twice.stdout
    events = query(settings, "SELECT action, department, detail FROM auditevent WHERE action = 'exchange-reprocessed' ORDER BY id")
    assert [e[1] for e in events] == ["hospital", "hospital"]
    assert f"reprocessed as exchange {newest[0]} (processed) by gateway exchanges reprocess" in events[1][2]
    ledger = run_gateway(settings.home, "ledger", "verify")
    assert ledger.returncode == 0


def test_a_processed_exchange_and_a_gone_file_are_refused(settings, gateway, keyring):
    drop(settings, "hospital", "fine.csv", variant(2))
    [fine] = gateway.run_once()
    assert fine.status == "processed"
    with pytest.raises(ReprocessRefused, match="已正常处理"):
        reprocess(gateway, fine.exchange_id, "test")
    with pytest.raises(ReprocessRefused, match="没有交换"):
        reprocess(gateway, 999, "test")

    first = refused_for_its_key(settings, gateway, keyring, 3)
    (settings.mailbox_root / "hospital" / "rejected" / "births.csv").unlink()
    with pytest.raises(ReprocessRefused, match="原始文件已不在") as refused:
        reprocess(gateway, first, "test")
    assert "Ask the department to drop the file again" in str(refused.value)

    second = refused_for_its_key(settings, gateway, keyring, 4)
    (settings.mailbox_root / "hospital" / "rejected" / "births.csv").write_bytes(b"changed")  # the first's was removed
    with pytest.raises(ReprocessRefused, match="已被改动"):
        reprocess(gateway, second, "test")
    assert query(settings, "SELECT COUNT(*) FROM exchange WHERE supersedes IS NOT NULL") == [(0,)]


# -- the console's button ------------------------------------------------------------------------


def page_form_token(html: str) -> str:
    found = re.search(r'id="reprocess-form">\s*<input type="hidden" name="csrf_token" value="([^"]+)"', html)
    assert found, "no reprocess button on the page"
    return found.group(1)


def test_the_console_reprocesses_with_a_button(served, keyring):
    from gateway.exchange.lifecycle import Gateway

    ring, hospital, other = keyring
    settings = served.settings
    DepartmentKeys(settings.keys_dir).import_key(ring.export(hospital), "hospital")
    data = variant(6)
    drop(settings, "hospital", "signed.csv.asc", ring.sign(data, other))
    drop(settings, "hospital", "signed.csv", data)
    gateway = Gateway(settings)
    try:
        [outcome] = gateway.run_once()
    finally:
        gateway.close()
    assert outcome.status == "rejected"
    first = outcome.exchange_id
    url = f"{served.console.url}/exchanges/{first}"

    # A security officer sees no button and may not press it; a clerk neither.
    for name in ("sec", "clerk"):
        http, token = served.console.session(name)
        page = http.get(url, timeout=30)
        assert page.status_code == 200 and 'id="reprocess"' not in page.text
        assert http.post(url + "/reprocess", data={"csrf_token": token}, timeout=30, allow_redirects=False).status_code == 403

    http, _ = served.console.session("op")
    page = http.get(url, timeout=30)
    scan_text(url, page.text)
    token = page_form_token(page.text)
    # Without the form's CSRF token: refused, nothing done.
    assert http.post(url + "/reprocess", data={"csrf_token": "forged"}, timeout=30, allow_redirects=False).status_code == 403
    assert served.query("SELECT COUNT(*) FROM exchange WHERE supersedes = ?", first) == [(0,)]

    # The cause fixed (the key registered), the button reprocesses it: a new exchange, taken.
    DepartmentKeys(settings.keys_dir).import_key(ring.export(other), "hospital")
    pressed = http.post(url + "/reprocess", data={"csrf_token": token}, timeout=120, allow_redirects=False)
    assert pressed.status_code == 303, pressed.text
    [(new, status, accepted)] = served.query("SELECT id, status, accepted FROM exchange WHERE supersedes = ?", first)
    assert (status, accepted) == ("processed", 3)
    assert pressed.headers["location"].startswith(f"/exchanges/{new}?done=")
    landed = http.get(served.console.url + pressed.headers["location"], timeout=30)
    scan_text("reprocessed page", landed.text)
    assert "已重新处理为交换" in landed.text and f'href="/exchanges/{first}"' in landed.text
    before = http.get(url, timeout=30).text
    assert f"已由交换 <a href=\"/exchanges/{new}\">{new}</a> 重新处理" in before and 'id="reprocess"' not in before

    # Pressed again (a second tab, an old page): refused, saying by which exchange.
    twice = http.post(url + "/reprocess", data={"csrf_token": token}, timeout=30, allow_redirects=False)
    assert twice.status_code == 409 and "不能再次处理" in twice.text and f"exchange {new}" in twice.text
    assert served.query("SELECT COUNT(*) FROM record WHERE exchange_id = ?", new) == [(3,)]


# -- a department on an SFTP server ---------------------------------------------------------------


@pytest.mark.slow
def test_a_refused_file_on_an_sftp_server_is_reprocessed_from_its_rejected_folder(home, sshd, keyring, monkeypatch, tmp_path):
    from sshd import GATEWAY_KEY_PASSPHRASE
    from test_sftp import PASSPHRASE_VARIABLE, configure, local_copy, pin, remote_names

    from gateway.config import load_settings
    from gateway.exchange.lifecycle import Gateway

    ring, hospital, other = keyring
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    monkeypatch.setenv(PASSPHRASE_VARIABLE, GATEWAY_KEY_PASSPHRASE)
    configure(home, sshd.gateway_toml("county", ["hospital", "police"]))
    pin(home, sshd)
    settings = load_settings(home)
    DepartmentKeys(settings.keys_dir).import_key(ring.export(hospital), "hospital")
    data = variant(7)
    sshd.upload("hospital", local_copy(tmp_path, "births.csv.asc", ring.sign(data, other)))
    sshd.upload("hospital", local_copy(tmp_path, "births.csv", data))
    gateway = Gateway(settings)
    try:
        [refused] = gateway.run_once()
        assert refused.status == "rejected"
        assert {"births.csv", "births.csv.asc"} <= set(remote_names(sshd, "hospital", "rejected"))

        DepartmentKeys(settings.keys_dir).import_key(ring.export(other), "hospital")
        done = reprocess(gateway, refused.exchange_id, "test")
        assert (done.outcome.status, done.outcome.accepted) == ("processed", 3)
        [(archived,)] = query(settings, "SELECT archived_path FROM exchange WHERE supersedes = ?", refused.exchange_id)
        assert archived == "sftp://county/hospital/processed/births.csv"
        assert (sshd.root / "hospital" / "processed" / "births.csv").read_bytes() == data
        assert remote_names(sshd, "hospital", "processed") == ["births.csv", "births.csv.asc"]
        assert f"births.csv.exchange-{done.outcome.exchange_id}.receipt.json" in remote_names(sshd, "hospital", "outbox")

        with pytest.raises(ReprocessRefused, match="不能再次处理"):
            reprocess(gateway, refused.exchange_id, "test")

        # A link that got into rejected/ is never followed, even to the very bytes: the file counts as gone.
        later = variant(8)
        sshd.upload("hospital", local_copy(tmp_path, "births.csv.asc", ring.sign(later, hospital)))
        sshd.upload("hospital", local_copy(tmp_path, "births.csv", later + b"\n"))  # the signature is over other bytes
        [second] = gateway.run_once()
        assert second.status == "rejected"
        [(kept,)] = query(settings, "SELECT archived_path FROM exchange WHERE id = ?", second.exchange_id)
        name = kept.rsplit("/", 1)[1]
        elsewhere = sshd.root / "police" / "processed" / "copy.csv"
        elsewhere.write_bytes(later + b"\n")
        (sshd.root / "hospital" / "rejected" / name).unlink()
        os.symlink("../../police/processed/copy.csv", sshd.root / "hospital" / "rejected" / name)
        with pytest.raises(ReprocessRefused, match="原始文件已不在"):
            reprocess(gateway, second.exchange_id, "test")
    finally:
        gateway.close()
