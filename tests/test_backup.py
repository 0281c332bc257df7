"""Backups that restore (issue 21): `gateway backup`, `gateway restore`, `gateway verify-home`,
on the suite's database (SQLite file, or a PostgreSQL database dumped and restored into
another fresh one), with real GnuPG keyrings and real `gateway` processes."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from conftest import REPO, drop, execute, hospital_births_file, query, run_gateway, specimen

from gateway.config import load_settings
from gateway.masking import mask_file_name, mask_file_path

SETTLED = {"GATEWAY_SETTLE_SECONDS": "0", "GATEWAY_ARRIVAL_WAIT_SECONDS": "0"}


def _backup_key(recipients, tmp_path: Path) -> tuple[Path, Path, str]:
    """The office's backup key: (its public key file, the officer's keyring, fingerprint)."""
    ring, fingerprint = recipients["population-office"]
    key_file = tmp_path / "office-backup.asc"
    key_file.write_bytes(ring.export(fingerprint))
    return key_file, ring.home, fingerprint


def _restored_env(database: str | None) -> dict[str, str]:
    # On PostgreSQL the suite names the original's database in GATEWAY_DATABASE_URL;
    # the restored home uses its own (written into its gateway.toml by the restore).
    return {"GATEWAY_DATABASE_URL": database} if database else {}


def _restore_args(database: str | None) -> list[str]:
    return ["--database-url", database] if database else []


def _with_files(settings) -> None:
    drop(settings, "hospital", "hospital_births_202610.csv", specimen("hospital_births_202610.csv"))
    drop(settings, "police", "police_hukou_202610.csv", specimen("police_hukou_202610.csv"))
    drop(settings, "hospital", "births_more.csv", hospital_births_file(1, 5))


def _restore(source: Path, new_home: Path, *args: str, env: dict[str, str] | None = None, check: bool = True):
    command = [str(REPO / ".venv" / "bin" / "gateway"), "restore", str(source), "--home", str(new_home), *args]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"gateway restore exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def test_backup_restore_verify_round_trip(settings, home, tmp_path, recipients, another_database, monkeypatch):
    """Encrypted to the office's key, restored with the officer's keyring into a new home
    (and a new PostgreSQL database), and the restored home proves itself complete against
    the checkpoint an officer kept; the signing passphrase appears nowhere."""
    from gateway.store import make_engine
    from gateway.store.console_audit import ConsoleAudit

    _with_files(settings)
    run_gateway(home, "run", "--once", env=SETTLED)
    run_gateway(home, "ledger", "export", str(tmp_path / "officer-export"))
    # The console's audit log (on SQLite a database file of its own) is part of the backup.
    audit_log = ConsoleAudit(settings.db_url)
    audit_log.record("sign-in", user="op", role="operator", client="127.0.0.9", route="POST /api/session", detail="signed in")
    audit_log.dispose()
    kept = sorted((tmp_path / "officer-export" / "checkpoints").glob("checkpoint-*.json"))[-1]
    key_file, officer, fingerprint = _backup_key(recipients, tmp_path)
    secret = "pass-phrase-never-stored-4711"
    backup = tmp_path / "home.backup.gpg"
    made = run_gateway(home, "backup", str(backup), "--to", str(key_file), env={"GATEWAY_KEY_PASSPHRASE": secret})
    assert "已备份 / backed up" in made.stdout and f"加密给 encrypted to: {fingerprint}" in made.stdout
    assert secret not in made.stdout + made.stderr
    assert oct(backup.stat().st_mode & 0o777) == "0o600"

    # The plain content, with plain gpg: a tar whose manifest lists every member.
    plain, status = recipients["population-office"][0].decrypt(backup)
    assert "DECRYPTION_OKAY" in status
    assert secret.encode() not in plain
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        names = tar.getnames()
    expected_db = "database/gateway.pgdump" if another_database else "database/gateway.sqlite3"
    for name in (expected_db, "home/gateway.toml", "home/agreements.toml", "home/keys/history.json",
                 "home/ledger/checkpoints/checkpoint-000001.json", "home/mailbox/hospital/processed/hospital_births_202610.csv",
                 "MANIFEST.json", "MANIFEST.json.asc"):
        assert name in names, name
    assert any(name.startswith("home/gnupg/") for name in names)
    assert not any(name.startswith("home/gnupg/S.") or name.startswith("home/gateway.db") for name in names)
    assert not any(name.startswith("home/gateway-audit.db") for name in names)  # copied by the backup API, not as a file
    assert ("database/gateway-audit.sqlite3" in names) != bool(another_database)

    new_home = tmp_path / "restored"
    # Without the officer's keyring the backup cannot be read, and nothing is written.
    refused = _restore(backup, new_home, *_restore_args(another_database), env={"GNUPGHOME": str(tmp_path / "empty-keyring")}, check=False)
    assert refused.returncode == 2 and "无法解密备份" in refused.stderr and not new_home.exists()

    restored = _restore(backup, new_home, "--gnupghome", str(officer), *_restore_args(another_database))
    assert "已恢复 / restored" in restored.stdout
    env = _restored_env(another_database)
    checked = run_gateway(new_home, "verify-home", "--checkpoint", str(kept), env=env)
    assert "主目录完整 / HOME COMPLETE" in checked.stdout
    assert _count(new_home, "SELECT COUNT(*) FROM record", env) == _count(home, "SELECT COUNT(*) FROM record") > 0
    assert _count(new_home, "SELECT COUNT(*) FROM receipt", env) == 3
    restored_settings = load_settings(new_home)
    restored_url = (env.get("GATEWAY_DATABASE_URL") or restored_settings.db_url) if env else restored_settings.db_url
    restored_log = ConsoleAudit(restored_url, main=make_engine(restored_url))
    try:
        from sqlmodel import Session, select

        from gateway.store.web_models import ConsoleAuditEvent

        with Session(restored_log.engine) as session:
            kept_entries = [(e.user, e.client) for e in session.exec(select(ConsoleAuditEvent)).all()]
        assert ("op", "127.0.0.9") in kept_entries
    finally:
        restored_log.dispose()
    if another_database:
        assert another_database in (new_home / "gateway.toml").read_text(encoding="utf-8")
    # The restored gateway goes on: a new drop is receipted after the restored ones, same key.
    drop(load_settings(new_home), "hospital", "later.csv", hospital_births_file(2, 3))
    run_gateway(new_home, "run", "--once", env={**SETTLED, **env})
    assert _count(new_home, "SELECT MAX(sequence) FROM receipt", env) == 4
    assert _count(home, "SELECT MAX(sequence) FROM receipt") == 3  # the original database is its own
    run_gateway(new_home, "verify-home", "--checkpoint", str(kept), env=env)
    run_gateway(new_home, "ledger", "verify", env=env)


def test_restore_refuses_a_tampered_backup_a_non_empty_home_or_database(settings, home, tmp_path, another_database, database_url):
    _with_files(settings)
    run_gateway(home, "run", "--once", env=SETTLED)
    backup = tmp_path / "plain.tar"
    made = run_gateway(home, "backup", str(backup), "--plain")
    assert made.stdout.index("警告") < made.stdout.index("warning") < made.stdout.index("已备份")
    assert "私钥环" in made.stdout and "private keyring" in made.stdout
    again = run_gateway(home, "backup", str(backup), "--plain", check=False)
    assert again.returncode == 2 and "never overwrites" in again.stderr
    neither = run_gateway(home, "backup", str(tmp_path / "x.tar"), check=False)
    assert neither.returncode == 2 and "--to KEY" in neither.stderr

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("x")
    refused = _restore(backup, busy, *_restore_args(another_database), check=False)
    assert refused.returncode == 2 and "is not empty" in refused.stderr
    if database_url:
        taken = _restore(backup, tmp_path / "new1", "--database-url", database_url, check=False)
        assert taken.returncode == 2 and "is not empty" in taken.stderr and not (tmp_path / "new1").exists()

    # One byte of one archived file changed inside the archive: refused, naming it masked.
    member_name = "home/mailbox/hospital/processed/hospital_births_202610.csv"
    with tarfile.open(backup) as tar:
        member = tar.getmember(member_name)
    data = bytearray(backup.read_bytes())
    data[member.offset_data + 10] ^= 0x01
    tampered = tmp_path / "tampered.tar"
    tampered.write_bytes(bytes(data))
    new_home = tmp_path / "new2"
    result = _restore(tampered, new_home, *_restore_args(another_database), check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "备份已损坏或被篡改" in result.stderr and mask_file_path(member_name) in result.stderr
    assert "hospital_births_202610" not in result.stderr
    assert not new_home.exists() and not any(p.name.startswith(".new2.restoring") for p in tmp_path.iterdir())
    if another_database:
        assert _tables(another_database) == 0  # nothing was restored into the fresh database

    # The manifest changed (a file's hash rewritten to hide a change): its signature fails.
    forged = tmp_path / "forged.tar"
    with tarfile.open(backup) as source, tarfile.open(forged, "w") as out:
        for item in source.getmembers():
            body = source.extractfile(item).read()  # type: ignore[union-attr]
            if item.name == "MANIFEST.json":
                body = body.replace(b'"receipts":3', b'"receipts":2')
                item.size = len(body)
            out.addfile(item, io.BytesIO(body))
    result = _restore(forged, tmp_path / "new3", *_restore_args(another_database), check=False)
    assert result.returncode == 2 and "签名无效" in result.stderr and not (tmp_path / "new3").exists()


def _tables(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine("postgresql+psycopg://" + url.split("://", 1)[1])
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            )).scalar() or 0)
    finally:
        engine.dispose()


def test_verify_home_names_a_tampered_archive_and_a_deleted_record(settings, home):
    _with_files(settings)
    run_gateway(home, "run", "--once", env=SETTLED)
    assert run_gateway(home, "verify-home").returncode == 0

    archived = settings.mailbox_root / "hospital" / "processed" / "hospital_births_202610.csv"
    original = archived.read_bytes()
    archived.write_bytes(original + b"\r\n")
    result = run_gateway(home, "verify-home", check=False)
    assert result.returncode == 1
    shown = mask_file_path("hospital/processed/hospital_births_202610.csv")
    assert "主目录不完整 / HOME NOT COMPLETE" in result.stdout
    assert f"归档文件 {shown} 与回执" in result.stdout and "处理:" in result.stdout
    assert "hospital_births_202610" not in result.stdout
    archived.write_bytes(original)

    (exchange_id,) = query(home, "SELECT id FROM exchange WHERE file_name = ?", "births_more.csv")[0]
    execute(home, f"DELETE FROM record WHERE exchange_id = {exchange_id} AND leaf_index = 2")
    result = run_gateway(home, "verify-home", check=False)
    assert result.returncode == 1
    assert f"交换 {exchange_id}(hospital,{mask_file_name('births_more.csv')})缺少 1 条记录(叶序号 2)" in result.stdout
    assert "births_more" not in result.stdout

    # A payload changed in place: named by leaf index and source row, never by its business key.
    (record_id, key) = query(home, "SELECT id, business_key FROM record WHERE exchange_id = ? AND leaf_index = 1", exchange_id)[0]
    execute(home, f"UPDATE record SET payload = REPLACE(payload, '陈小明', '陈小红') WHERE id = {record_id}")
    result = run_gateway(home, "verify-home", check=False)
    assert "changed record(s), leaf index: 1 (row 3)" in result.stdout and "被改动" in result.stdout
    assert key.split("|")[-1] not in result.stdout  # a business key may be an ID number: never shown


@pytest.mark.slow
def test_backup_while_a_pass_runs_restores_consistent(settings, home, tmp_path, recipients, another_database):
    """A real `gateway run` on a 100-file drop; `gateway backup` while it works; the
    restored home verifies (exchanges committed but not yet moved are found where their
    bytes are), and its gateway finishes the rest of the drop."""
    run_gateway(home, "db", "upgrade")
    for batch in range(100):
        drop(settings, "hospital", f"births_{batch:03d}.csv", hospital_births_file(batch, 3))
    key_file, officer, _ = _backup_key(recipients, tmp_path)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") or k == "GATEWAY_DATABASE_URL"}
    env = {**clean, **SETTLED, "GATEWAY_POLL_SECONDS": "0.5"}
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([str(REPO / ".venv" / "bin" / "gateway"), "run", "--home", str(home)], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        while _count(home, "SELECT COUNT(*) FROM receipt") < 5:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.1)
        backup = tmp_path / "during.gpg"
        made = run_gateway(home, "backup", str(backup), "--to", str(key_file))
        still_running = process.poll() is None
        done_at_backup = _count(home, "SELECT COUNT(*) FROM receipt")
        while _count(home, "SELECT COUNT(*) FROM exchange WHERE archived_path IS NOT NULL") < 100:
            assert process.poll() is None and time.monotonic() < deadline + 120, log.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert still_running, "the run ended before the backup: nothing was tested"
    in_backup = int(made.stdout.split("回执 receipts: ")[1].split()[0])
    print(f"receipts in the backup: {in_backup}; when it finished: {done_at_backup}")
    assert 5 <= in_backup <= 100

    new_home = tmp_path / "restored"
    _restore(backup, new_home, "--gnupghome", str(officer), *_restore_args(another_database))
    restored_env = _restored_env(another_database)
    checked = run_gateway(new_home, "verify-home", env=restored_env)
    assert "主目录完整 / HOME COMPLETE" in checked.stdout
    assert _count(new_home, "SELECT COUNT(*) FROM receipt", restored_env) == in_backup
    # The restored gateway takes what was still in its inboxes: every file once.
    run_gateway(new_home, "run", "--once", env={**SETTLED, **restored_env})
    run_gateway(new_home, "run", "--once", env={**SETTLED, **restored_env})
    processed = _count(new_home, "SELECT COUNT(*) FROM exchange WHERE status = 'processed'", restored_env)
    left = sorted(p.name for p in (new_home / "mailbox" / "hospital" / "inbox").iterdir())
    assert processed == 100, (
        f"{processed} processed; inbox {left}; "
        f"{_rows(new_home, 'SELECT id, status, archived_path, reason_code FROM exchange WHERE status <> ' + repr('processed'), restored_env)}; "
        f"claims {_rows(new_home, 'SELECT path, worker FROM fileclaim', restored_env)}"
    )
    assert _count(new_home, "SELECT COUNT(*) FROM record", restored_env) == 300
    run_gateway(new_home, "verify-home", env=restored_env)


def _rows(target: Path, sql: str, env: dict[str, str] | None = None) -> list[tuple]:
    if env and "GATEWAY_DATABASE_URL" in env:
        from sqlalchemy import create_engine, text

        engine = create_engine("postgresql+psycopg://" + env["GATEWAY_DATABASE_URL"].split("://", 1)[1])
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.execute(text(sql))]
        finally:
            engine.dispose()
    return query(target, sql)


def _count(target: Path, sql: str, env: dict[str, str] | None = None) -> int:
    if env and "GATEWAY_DATABASE_URL" in env:
        from sqlalchemy import create_engine, text

        engine = create_engine("postgresql+psycopg://" + env["GATEWAY_DATABASE_URL"].split("://", 1)[1])
        try:
            with engine.connect() as connection:
                return int(connection.execute(text(sql)).scalar() or 0)
        finally:
            engine.dispose()
    return int(query(target, sql)[0][0])


@pytest.mark.backend_independent
def test_files_the_database_copy_does_not_know_go_back_to_the_inbox():
    """What `gateway backup` does with processed/ and rejected/ files (gateway/exchange/backup.py)."""
    from gateway.exchange.backup import ArchiveReferences

    refs = ArchiveReferences(
        known={"hospital/processed/a.csv", "hospital/rejected/bad.csv"},
        unarchived={"hospital/b.csv": "b.csv", "hospital/b.exchange-7.csv": "b.csv"},
    )
    assert refs.relocation("hospital/processed/a.csv") is None  # archived in the copy
    assert refs.relocation("hospital/processed/a.csv.asc") is None  # its signature
    assert refs.relocation("hospital/rejected/bad.csv.errors.csv") is None
    assert refs.relocation("hospital/processed/b.exchange-7.csv") == "hospital/inbox/b.csv"
    assert refs.relocation("hospital/processed/b.exchange-7.csv.asc") == "hospital/inbox/b.csv.asc"
    assert refs.relocation("hospital/processed/new.exchange-12.csv") == "hospital/inbox/new.csv"  # found after the copy
    assert refs.relocation("hospital/inbox/c.csv") is None and refs.relocation("hospital/outbox/x.receipt.json") is None
