"""Key rotation (handover signed by both keys, windows by signature time) and the
departments' public keys (pinned by full fingerprint)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Iterator

import pytest
from conftest import drop, run_gateway, specimen
from gpg_helpers import DepartmentKeyring

from gateway.receipts.check import verify_receipt
from gateway.receipts.keys import DepartmentKeys, KeyProblem, check_history, handover_name, rotate
from gateway.receipts.signing import Signer, read_history, write_history
from gateway.receipts.verify import verify_detached

SPECIMEN = "hospital_births_202610.csv"


def variant(n: int) -> bytes:
    text = specimen(SPECIMEN).decode("gb18030").replace("Q4407812600", f"Q44078128{n}0")
    return text.encode("gb18030")


def secret_fingerprints(gnupg_dir) -> list[str]:
    out = subprocess.run(
        ["gpg", "--homedir", str(gnupg_dir), "--batch", "--with-colons", "--list-secret-keys"],
        capture_output=True, text=True, check=True,
    ).stdout
    return [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")]


def faked_signature(signer: Signer, data: bytes, fingerprint: str, when: dt.datetime) -> bytes:
    """A signature dated `when` (gpg's --faked-system-time): a key used outside its window."""
    result = signer.gpg.sign(
        data, keyid=fingerprint, detach=True, binary=False,
        extra_args=["--digest-algo", "SHA256", "--ignore-time-conflict", "--faked-system-time", f"{int(when.timestamp())}!"],
    )
    assert result.data, result.stderr
    return result.data


# -- rotation ------------------------------------------------------------------------


def test_rotation_hands_over_and_old_receipts_stay_genuine(gateway, settings):
    drop(settings, "hospital", "before.csv", variant(1))
    [before] = gateway.run_once()
    old = read_history(settings.keys_dir)[-1].fingerprint

    rotation = rotate(settings.gnupg_dir, settings.keys_dir, None)
    history = read_history(settings.keys_dir)
    assert [e.fingerprint for e in history] == [old, rotation.new]
    assert history[0].valid_until == history[1].valid_from == rotation.at and history[1].valid_until is None
    assert check_history(settings.keys_dir) == []
    statement = json.loads(rotation.statement.read_bytes())
    assert statement == {
        "type": "gateway.key-handover", "version": "1", "old_fingerprint": old, "new_fingerprint": rotation.new,
        "time": rotation.at,
    }
    assert rotation.old_secret_deleted and secret_fingerprints(settings.gnupg_dir) == [rotation.new]

    # The running gateway notices the new history and signs with the new key.
    drop(settings, "hospital", "after.csv", variant(2))
    [after] = gateway.run_once()
    receipts = [settings.mailbox_root / o.receipt for o in (before, after)]
    verdicts = [verify_receipt(path, settings.keys_dir, gateway.engine) for path in receipts]
    assert all(v.genuine for v in verdicts), [c for v in verdicts for c in v.checks if not c.ok]
    assert [v.fingerprint for v in verdicts] == [old, rotation.new]


def test_a_key_used_after_its_window_closed_is_refused(settings):
    old = read_history(settings.keys_dir)[-1].fingerprint
    rotation = rotate(settings.gnupg_dir, settings.keys_dir, None, keep_old_secret=True)
    at = dt.datetime.fromisoformat(rotation.at)
    signer = Signer(settings.gnupg_dir, settings.keys_dir)
    history = read_history(settings.keys_dir)
    try:
        data = b'{"claim":"signed months later with the retired key"}'
        late = faked_signature(signer, data, old, at + dt.timedelta(days=90))
        verdict = verify_detached(data, late, history, settings.keys_dir)
        assert not verdict.genuine and f"key {old} was not valid at" in verdict.problems[0]
        # The same retired key at the last second of its window is fine ...
        assert verify_detached(data, faked_signature(signer, data, old, at), history, settings.keys_dir).genuine
        # ... and the new key cannot sign for a time before its window.
        early = faked_signature(signer, data, rotation.new, at - dt.timedelta(days=1))
        assert not verify_detached(data, early, history, settings.keys_dir).genuine
    finally:
        signer.close()


def test_the_key_history_must_be_handed_over(settings):
    first = rotate(settings.gnupg_dir, settings.keys_dir, None)
    second = rotate(settings.gnupg_dir, settings.keys_dir, None)
    assert len(read_history(settings.keys_dir)) == 3 and check_history(settings.keys_dir) == []

    handovers = settings.keys_dir / "handovers"
    name = handover_name(first.old, first.new)
    # A handover signed by only one key, a changed statement, a missing one: all refused.
    saved = (handovers / (name + ".old.asc")).read_bytes()
    (handovers / (name + ".old.asc")).write_bytes((handovers / (name + ".new.asc")).read_bytes())
    assert any(f"no good signature by {first.old}" in p for p in check_history(settings.keys_dir))
    (handovers / (name + ".old.asc")).write_bytes(saved)
    statement = (handovers / name).read_bytes()
    (handovers / name).write_bytes(statement.replace(b'"time"', b'"Time"'))
    assert any("does not state this handover" in p for p in check_history(settings.keys_dir))
    (handovers / name).unlink()
    assert any("no handover statement" in p for p in check_history(settings.keys_dir))

    # A history edited to stretch a retired key's window no longer meets the next key.
    (handovers / name).write_bytes(statement)
    entries = read_history(settings.keys_dir)
    entries[1].valid_until = "2099-01-01T00:00:00+00:00"
    write_history(settings.keys_dir, entries)
    assert any(f"does not start when {second.old}" in p for p in check_history(settings.keys_dir))


def test_rotate_command(home):
    result = run_gateway(home, "keys", "rotate")
    assert "Handover:" in result.stdout and "Retired private key: deleted" in result.stdout
    listing = run_gateway(home, "keys", "list").stdout
    assert "(current)" in listing and listing.count("gateway-") == 2


# -- departments' keys ------------------------------------------------------------------


@pytest.fixture(scope="module")
def ring() -> Iterator[tuple[DepartmentKeyring, str, str]]:
    keyring = DepartmentKeyring()
    yield keyring, keyring.new_key("Police Records"), keyring.new_key("Police Backup")
    keyring.close()


def test_import_pins_one_key_by_full_fingerprint(settings, ring):
    keyring, first, second = ring
    registry = DepartmentKeys(settings.keys_dir)
    both = keyring.export(first, second)
    with pytest.raises(KeyProblem, match="holds 2 keys"):
        registry.import_key(both, "police")
    with pytest.raises(KeyProblem, match="not a full fingerprint"):
        registry.import_key(both, "police", first[-16:])
    with pytest.raises(KeyProblem, match="holds no key"):
        registry.import_key(both, "police", "0" * 40)
    key = registry.import_key(both, "police", first.lower())
    assert key.fingerprint == first
    stored = (settings.keys_dir / "departments" / key.public_key_file).read_bytes()
    assert b"PUBLIC KEY" in stored
    listed = subprocess.run(["gpg", "--batch", "--with-colons", "--show-keys"], input=stored, capture_output=True, check=True).stdout.decode()
    assert [line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:")][0] == first
    assert second not in listed
    with pytest.raises(KeyProblem, match="already registered"):
        registry.import_key(keyring.export(first), "hospital")
    registry_file = json.loads((settings.keys_dir / "departments" / "registry.json").read_text())
    assert [(k["department"], k["fingerprint"]) for k in registry_file["keys"]] == [("police", first)]


def test_a_secret_key_file_leaves_only_its_public_half(settings, ring):
    keyring, first, _ = ring
    key = DepartmentKeys(settings.keys_dir).import_key(keyring.export_secret(first), "police")
    stored = (settings.keys_dir / "departments" / key.public_key_file).read_text()
    assert "PRIVATE" not in stored and "PUBLIC KEY" in stored


def test_keys_commands(home, ring, tmp_path):
    keyring, first, second = ring
    key_file = tmp_path / "police.asc"
    key_file.write_bytes(keyring.export(first, second))
    refused = run_gateway(home, "keys", "import", str(key_file), "--department", "police", check=False)
    assert refused.returncode != 0 and "--fingerprint" in refused.stdout + refused.stderr
    unknown = run_gateway(home, "keys", "import", str(key_file), "--department", "polic", check=False)
    assert unknown.returncode != 0 and "police" in unknown.stderr
    run_gateway(home, "keys", "import", str(key_file), "--department", "police", "--fingerprint", first)
    run_gateway(home, "keys", "import", str(key_file), "--department", "police", "--fingerprint", second)
    listing = run_gateway(home, "keys", "list").stdout
    assert first in listing and second in listing
    ambiguous = run_gateway(home, "keys", "remove", "--department", "police", check=False)
    assert ambiguous.returncode != 0
    run_gateway(home, "keys", "remove", "--department", "police", "--fingerprint", second)
    listing = run_gateway(home, "keys", "list").stdout
    assert first in listing and second not in listing
