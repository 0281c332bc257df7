"""Retention (保存期限, issue 21): `[retention]` rules, `gateway retention run [--dry-run]`, the
daily job, proofs and verify-home after a purge, the register without the purged people, and
a restore that leaves no old job lease behind. Real gateway processes, real GnuPG, on the
suite's database (SQLite file or PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, drop, query, run_gateway, specimen
from console_helpers import served  # noqa: F401 - the console tests' shared home and `gateway serve`
from sqlmodel import Session, select

from gateway.errors import ConfigError
from gateway.receipts.merkle import leaf_hash
from gateway.retention.rules import Period, load_rules, parse_rules

SETTLED = {"GATEWAY_SETTLE_SECONDS": "0", "GATEWAY_ARRIVAL_WAIT_SECONDS": "0"}
BIRTHS = "hospital_births_202610.csv"
HUKOU = "police_hukou_202610.csv"
INGESTED = "2026-11-02T09:00:00+08:00"
# Past a 1-year rule counted from any receipt time of this run (receipt times are stamped at intake).
LATER = "2031-01-15T10:00:00+08:00"


def _configure(home: Path, retention: str) -> None:
    config = home / "gateway.toml"
    config.write_text(config.read_text(encoding="utf-8") + f"\n[retention]\n{retention}\n", encoding="utf-8")


def _ingest(settings, home: Path, *, refused: bool = False) -> None:
    drop(settings, "hospital", BIRTHS, specimen(BIRTHS))
    drop(settings, "police", HUKOU, specimen(HUKOU))
    if refused:  # a wholly refused drop: archived in rejected/, no records
        drop(settings, "hospital", "not_births.csv", "这不是出生登记\n".encode("utf-8"))
    run_gateway(home, "run", "--once", env={**SETTLED, "GATEWAY_NOW": INGESTED})
    run_gateway(home, "register", "rebuild", env={"GATEWAY_NOW": INGESTED}, check=False)


def _records(settings, contract: str) -> list[tuple]:
    return query(settings, "SELECT id, exchange_id, leaf_index, payload, record_hash, business_key FROM record "
                           "WHERE contract = ? ORDER BY exchange_id, leaf_index", contract)


def _police(settings) -> list[tuple]:
    return query(settings, "SELECT r.id, r.contract, r.payload, r.record_hash, r.business_key FROM record r "
                           "JOIN exchange e ON e.id = r.exchange_id WHERE e.department = 'police' AND r.contract <> 'BirthEvent' "
                           "ORDER BY r.id")


def _contract_of(settings, department: str) -> str:
    [(contract,)] = query(settings, "SELECT DISTINCT r.contract FROM record r JOIN exchange e ON e.id = r.exchange_id "
                                    "WHERE e.department = ?", department)
    return contract


def _mothers(settings) -> list[str]:
    numbers = []
    for (_, _, _, payload, _, _) in _records(settings, _contract_of(settings, "hospital")):
        numbers += [v["id_number"] for k, v in json.loads(payload).items() if isinstance(v, dict) and "id_number" in v]
    return numbers


def _people(settings) -> set[str]:
    return {number for (number,) in query(settings, "SELECT id_number FROM registerperson")}


def test_a_purge_removes_payloads_keeps_hashes_and_every_proof_still_verifies(settings, home, tmp_path):
    _ingest(settings, home, refused=True)
    births = _contract_of(settings, "hospital")
    _configure(home, f'{births} = "1y"\nrow_errors = "400d"\nrejected_files = "2y"')
    [(refused_id, refused_path)] = query(settings, "SELECT id, archived_path FROM exchange WHERE status = 'rejected'")
    assert (settings.mailbox_root / refused_path).is_file()
    [(refused_errors,)] = query(settings, "SELECT count(*) FROM rowerror WHERE exchange_id = ?", refused_id)
    [(police_errors,)] = query(settings, "SELECT count(*) FROM rowerror r JOIN exchange e ON e.id = r.exchange_id "
                                         "WHERE e.department = 'police'")
    assert police_errors
    before = _records(settings, births)
    kept_hukou = _police(settings)
    assert before and kept_hukou
    mothers = _mothers(settings)
    run_gateway(home, "register", "rebuild", env={"GATEWAY_NOW": INGESTED})
    assert set(mothers) <= _people(settings)
    [(hospital_exchange, archived)] = query(settings, "SELECT id, archived_path FROM exchange WHERE department = 'hospital' "
                                                      "AND status <> 'rejected'")
    [(police_archived,)] = query(settings, "SELECT archived_path FROM exchange WHERE department = 'police'")
    assert (settings.mailbox_root / archived).is_file()
    [(hospital_errors,)] = query(settings, "SELECT count(*) FROM rowerror WHERE exchange_id = ?", hospital_exchange)
    hospital_records = len([r for r in before if r[1] == hospital_exchange])
    assert hospital_errors and hospital_records

    # Not yet past the rule: nothing goes.
    early = run_gateway(home, "retention", "run", env={"GATEWAY_NOW": "2026-12-20T10:00:00+08:00"})
    assert "nothing purged" in early.stdout and _records(settings, births) == before

    # A dry run says what would go and changes nothing.
    dry = run_gateway(home, "retention", "run", "--dry-run", env={"GATEWAY_NOW": LATER})
    assert f"{births}(规则 {births} = 1y):将清除记录 {len(before)} 条" in dry.stdout
    assert f"would purge {len(before)} record(s)" in dry.stdout and "dry run: nothing was changed" in dry.stdout
    assert dry.stdout.index("将清除") < dry.stdout.index("would purge")
    assert _records(settings, births) == before and (settings.mailbox_root / archived).is_file()

    run = run_gateway(home, "retention", "run", env={"GATEWAY_NOW": LATER})
    assert f"{births}(规则 {births} = 1y):已清除记录 {len(before)} 条" in run.stdout
    after = _records(settings, births)
    assert [(r[0], r[1], r[2], r[4]) for r in after] == [(r[0], r[1], r[2], r[4]) for r in before]  # ids, leaves, hashes kept
    assert all(r[3] == "{}" and r[5] == f"purged:{r[0]}" for r in after)  # payload and business key gone
    assert _police(settings) == kept_hukou  # contracts with no rule keep everything
    purges = query(settings, "SELECT record_id, leaf_hash, rule FROM retentionpurge WHERE kind = 'record' ORDER BY record_id")
    assert [(p[0], p[1], p[2]) for p in purges] == [
        (r[0], leaf_hash(r[3].encode("utf-8")).hex(), f"{births} = 1y") for r in before
    ]
    assert all(hashlib.sha256(r[3].encode("utf-8")).hexdigest() == r[4] for r in before)
    assert not (settings.mailbox_root / archived).exists()  # all its records purged: its file goes
    assert (settings.mailbox_root / police_archived).is_file()  # its other records are kept: so is its file
    assert query(settings, "SELECT count(*) FROM rowerror WHERE exchange_id = ?", hospital_exchange) == [(0,)]
    # row_errors = 400d: the police file's row errors go too (its records, of no rule, stay)
    assert query(settings, "SELECT count(*) FROM rowerror") == [(0,)]
    assert f"row_errors(规则 row_errors = 400d):已清除记录 0 条、行错误 {police_errors} 条" in run.stdout
    # rejected_files = 2y: the refused drop's archived file goes, its exchange and receipt stay
    assert not (settings.mailbox_root / refused_path).exists()
    assert f"rejected_files(规则 rejected_files = 2y):已清除记录 0 条、行错误 {refused_errors} 条、归档文件 1 个" in run.stdout
    assert query(settings, "SELECT rule FROM retentionpurge WHERE kind = 'file' AND exchange_id = ?", refused_id) == [("rejected_files = 2y",)]
    # No ID number or name of the purged people anywhere in the database any more, audit included.
    text = " ".join(str(v) for row in query(settings, "SELECT payload, business_key FROM record") for v in row)
    assert not any(number in text for number in mothers)
    audit = query(settings, "SELECT department, detail FROM auditevent WHERE action = 'retention_purged'")
    assert ("hospital", f"rule {births} = 1y: {hospital_records} record(s) purged (payload removed, hashes kept), "
            f"{hospital_errors} row error(s) and 1 archived file(s) deleted") in [(a[0], a[1]) for a in audit]
    assert ("police", f"rule {births} = 1y: {len(before) - hospital_records} record(s) purged (payload removed, hashes kept), "
            "0 row error(s) and 0 archived file(s) deleted") in [(a[0], a[1]) for a in audit]
    assert not any(number in a[1] for a in audit for number in mothers)

    # The register no longer shows them, after a rebuild neither.
    assert not set(mothers) & _people(settings)
    run_gateway(home, "register", "rebuild", env={"GATEWAY_NOW": LATER})
    assert not set(mothers) & _people(settings)

    # The ledger, the receipts (plain gpg), the home and a purged record's proof all verify.
    run_gateway(home, "ledger", "verify", env={"GATEWAY_NOW": LATER})
    receipt = settings.mailbox_root / "hospital" / "outbox" / f"{BIRTHS}.receipt.json"
    keyring = tmp_path / "officer"
    keyring.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(keyring), "PATH": "/usr/bin:/bin"}
    for key in (home / "keys").glob("*.asc"):
        subprocess.run(["gpg", "--batch", "--import", str(key)], env=env, check=True, capture_output=True)
    signed = subprocess.run(["gpg", "--batch", "--status-fd", "1", "--verify", f"{receipt}.asc", str(receipt)],
                            env=env, capture_output=True, text=True)
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True)
    assert signed.returncode == 0 and "[GNUPG:] GOODSIG" in signed.stdout
    run_gateway(home, "receipts", "verify", str(receipt))
    home_check = run_gateway(home, "verify-home")
    assert "主目录完整 / HOME COMPLETE" in home_check.stdout
    assert (f"按保存期限规则 {births} = 1y 已清除记录 {len(before)} 条、归档文件 1 个" in home_check.stdout
            and f"purged under rule {births} = 1y: {len(before)} record(s), 1 archived file(s)" in home_check.stdout)
    proof_file = tmp_path / "purged.proof.json"
    run_gateway(home, "receipts", "prove", "--exchange", str(hospital_exchange), "--record", "0", "--out", str(proof_file))
    proof = json.loads(proof_file.read_text(encoding="utf-8"))
    assert proof["record"]["payload"] == "" and proof["record"]["purged"]["rule"] == f"{births} = 1y"
    checked = run_gateway(home, "receipts", "verify-proof", str(proof_file))
    assert "已于 2031-01-15 按规则 " + f"{births} = 1y 清除" in checked.stdout
    assert f"purged on 2031-01-15 under rule {births} = 1y" in checked.stdout and "record inclusion" in checked.stdout
    # the console's proof download is the same document
    from gateway.store import make_engine
    from gateway.web.verification import proof_document

    engine = make_engine(settings.db_url)
    try:
        assert proof_document(engine, hospital_exchange, 0, None) == proof
    finally:
        engine.dispose()

    # Idempotent: a second run purges nothing new and says so.
    again = run_gateway(home, "retention", "run", env={"GATEWAY_NOW": LATER})
    assert "没有新的到期数据,未清除任何内容 / nothing new is past its rule; nothing purged" in again.stdout
    assert query(settings, "SELECT count(*) FROM retentionpurge WHERE kind = 'record'") == [(len(before),)]


def test_rules_are_checked_and_no_rule_deletes_nothing(settings, home):
    contracts = ["BirthEvent", "HouseholdRegistration"]
    rules = parse_rules({"BirthEvent": "10y", "row_errors": "18m", "rejected_files": "400d"}, contracts)
    assert [r.text for r in rules.records] == ["BirthEvent = 10y"]
    assert rules.row_errors and rules.row_errors.period == Period(18, "m")
    assert rules.rejected_files and rules.rejected_files.period == Period(400, "d")
    for bad in ("ten years", "10", "0y", "10w", 10):
        with pytest.raises(ConfigError, match="保存期限须为正整数加单位.*a keep period is a whole number"):
            parse_rules({"BirthEvent": bad}, contracts)
    with pytest.raises(ConfigError, match="没有名为 'Births' 的数据契约.*Valid choices: BirthEvent, HouseholdRegistration"):
        parse_rules({"Births": "10y"}, contracts)
    assert not load_rules({}).any

    # Bad config on the command line: a clear error, exit 2, nothing touched.
    _ingest(settings, home)
    before = query(settings, "SELECT id, payload FROM record ORDER BY id")
    _configure(home, 'Births = "10y"')
    refused = run_gateway(home, "retention", "run", env={"GATEWAY_NOW": LATER}, check=False)
    assert refused.returncode != 0 and "没有名为 'Births' 的数据契约" in refused.stderr + refused.stdout
    config = home / "gateway.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('Births = "10y"', ""), encoding="utf-8")
    # No rule at all: nothing is ever deleted, however late.
    none = run_gateway(home, "retention", "run", env={"GATEWAY_NOW": "2099-01-01T00:00:00+08:00"})
    assert "未设任何保存期限规则" in none.stdout and "nothing is ever deleted" in none.stdout
    assert query(settings, "SELECT id, payload FROM record ORDER BY id") == before

    # A record changed since its receipt is not purged: its hash would hide that; verify-home names it.
    from conftest import execute

    [(changed_id,)] = query(settings, "SELECT min(id) FROM record WHERE contract = 'BirthEvent'")
    execute(settings, f"UPDATE record SET payload = '{{\"changed\":true}}' WHERE id = {changed_id}")
    text = config.read_text(encoding="utf-8")
    table = text.rindex("\n[retention]\n") + len("\n[retention]\n")  # the table, not the commented example
    config.write_text(text[:table] + 'BirthEvent = "1y"\n' + text[table:], encoding="utf-8")
    run = run_gateway(home, "retention", "run", env={"GATEWAY_NOW": LATER})
    assert "1 条记录与其哈希不符,未清除" in run.stdout and "1 record(s) no longer match their hash and were left" in run.stdout
    assert query(settings, "SELECT payload FROM record WHERE id = ?", changed_id) == [('{"changed":true}',)]
    assert query(settings, "SELECT count(*) FROM retentionpurge WHERE record_id = ?", changed_id) == [(0,)]


def test_the_daily_job_runs_from_the_scheduler_only_with_rules(settings, home, monkeypatch):
    from gateway import clock
    from gateway.config import load_settings
    from gateway.exchange.lifecycle import Gateway
    from gateway.scheduler.runner import gateway_jobs, run_job

    _ingest(settings, home)
    without = Gateway(load_settings(home))
    try:
        assert "retention" not in [job.name for job in gateway_jobs(without)]
    finally:
        without.close()
    births = _contract_of(settings, "hospital")
    _configure(home, f'{births} = "1y"')
    gateway = Gateway(load_settings(home))
    try:
        [job] = [job for job in gateway_jobs(gateway) if job.name == "retention"]
        assert job.at == ["03:30"]
        from gateway.population_reports.events import read_events

        assert read_events(gateway.engine).births  # before the purge: counted
        monkeypatch.setenv("GATEWAY_NOW", LATER)
        assert clock.today().year == 2031
        result = run_job(gateway.engine, job, lease_seconds=30)
        assert result is not None and result.error is None and f"{births}: 4 record(s)" in result.summary
        assert query(settings, "SELECT count(*) FROM record WHERE contract = ? AND payload <> '{}'", births) == [(0,)]
        [(status, summary)] = query(settings, "SELECT last_status, last_summary FROM jobstate WHERE name = 'retention'")
        assert status == "ok" and births in summary
        # The readers of every stored record of a contract skip the purged ones (their payload is `{}`).
        from gateway.reconcile.evaluate import current_records

        with Session(gateway.engine) as session:
            assert current_records(session, births) == []
        assert read_events(gateway.engine).births == []  # the births were all purged
        if job.close:
            job.close()
    finally:
        gateway.close()


def test_a_restored_home_keeps_no_job_lease_or_running_claim(settings, home, tmp_path, another_database):
    from gateway.config import load_settings
    from gateway.exchange.lifecycle import Gateway
    from gateway.scheduler.runner import Job, JobResult, run_job
    from gateway.store import make_engine

    _ingest(settings, home)
    gateway = Gateway(settings)
    try:
        # One job mid-run in the backed-up home (its lease held, its state "running"), one just done.
        held = Job("inboxes", lambda context: JobResult("x"), every=60)
        assert run_job(gateway.engine, held, lease_seconds=30, holder="old-home:1:a", force=True) is not None
        with gateway.engine.begin() as connection:
            from sqlalchemy import text

            connection.execute(text("INSERT INTO joblease (name, holder, expires_at, acquired_at, generation) "
                                    "VALUES ('reconcile', 'old-home:1:a', :until, :now, 1)"),
                               {"until": "2099-01-01 00:00:00", "now": "2026-12-01 00:00:00"})
            connection.execute(text("INSERT INTO jobstate (name, schedule, last_status, last_started_at, runs, failures, overruns) "
                                    "VALUES ('reconcile', 'at 07:00', 'running', :now, 0, 0, 0)"), {"now": "2026-12-06 00:00:00"})
    finally:
        gateway.close()
    backup = tmp_path / "plain.tar"
    run_gateway(home, "backup", str(backup), "--plain")
    new_home = tmp_path / "restored"
    command = [str(REPO / ".venv" / "bin" / "gateway"), "restore", str(backup), "--home", str(new_home),
               *(["--database-url", another_database] if another_database else [])]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    restored = load_settings(new_home)
    url = another_database or restored.db_url
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            from sqlalchemy import text

            assert connection.execute(text("SELECT count(*) FROM joblease")).scalar_one() == 0
            states = dict(connection.execute(text("SELECT name, last_status FROM jobstate")).all())
        assert states == {"inboxes": "ok", "reconcile": "error"}
        # The restored home's scheduler runs every job at once, whoever it is.
        for name in ("inboxes", "reconcile"):
            job = Job(name, lambda context: JobResult("ran"), every=3600)
            result = run_job(engine, job, lease_seconds=30, holder="new-home:2:b")
            assert result is not None and result.summary == "ran", name
    finally:
        engine.dispose()


def test_the_console_serves_a_purged_records_proof_saying_so(served):
    """The console's proof download and its API (a real `gateway serve`): a purged record's
    proof says when and under which rule, in the file and a header; never "not found"."""
    from gateway.receipts.proofs import verify_proof

    _configure(served.home, 'BirthEvent = "1y"')
    run_gateway(served.home, "retention", "run", env={**served.env, "GATEWAY_NOW": LATER})
    hospital = served.ids["hospital"]
    clerk, csrf = served.console.session("clerk")
    url = served.console.url
    api = clerk.get(url + f"/api/exchanges/{hospital}/proof", params={"leaf_index": 0}, timeout=10)
    assert api.status_code == 200, api.text
    proof = api.json()
    assert proof["record"]["payload"] == "" and proof["record"]["purged"]["note"] == (
        "已于 2031-01-15 按规则 BirthEvent = 1y 清除(仅保留哈希) / purged on 2031-01-15 under rule BirthEvent = 1y "
        "(only its hashes are kept)")
    assert api.headers["X-Gateway-Record-Purged"] == "purged on 2031-01-15 under rule BirthEvent = 1y"
    checks = verify_proof(proof, served.settings.keys_dir)
    assert all(c.ok for c in checks) and "record inclusion" in [c.name for c in checks]
    page = clerk.post(url + "/receipts/proof", data={"csrf_token": csrf, "exchange_id": str(hospital), "leaf_index": "0"}, timeout=10)
    assert page.status_code == 200 and page.headers["X-Gateway-Record-Purged"].startswith("purged on 2031-01-15")
    assert page.json()["record"]["purged"]["rule"] == "BirthEvent = 1y"
    assert any("purged under rule BirthEvent = 1y" in (entry.detail or "") for entry in served.audit())


def test_a_home_with_purged_records_backs_up_restores_and_verifies(settings, home, tmp_path, another_database):
    """Backup and restore after a purge (issue 21): the restored home (a new PostgreSQL
    database on PostgreSQL) is complete by `gateway verify-home` and names the purges it
    accepted, per rule, with their counts; its purged records stay purged."""
    _ingest(settings, home, refused=True)
    births = _contract_of(settings, "hospital")
    _configure(home, f'{births} = "1y"\nrejected_files = "2y"')
    run_gateway(home, "retention", "run", env={"GATEWAY_NOW": LATER})
    purged = len(_records(settings, births))
    assert purged and query(settings, "SELECT count(*) FROM retentionpurge WHERE kind = 'record'") == [(purged,)]
    backup = tmp_path / "purged.tar"
    run_gateway(home, "backup", str(backup), "--plain", env={"GATEWAY_NOW": LATER})
    new_home = tmp_path / "restored"
    command = [str(REPO / ".venv" / "bin" / "gateway"), "restore", str(backup), "--home", str(new_home),
               *(["--database-url", another_database] if another_database else [])]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    env = {"GATEWAY_DATABASE_URL": another_database} if another_database else {}
    checked = run_gateway(new_home, "verify-home", env={**env, "GATEWAY_NOW": LATER}, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "主目录完整 / HOME COMPLETE" in checked.stdout
    assert (f"按保存期限规则 {births} = 1y 已清除记录 {purged} 条、归档文件 1 个" in checked.stdout
            and f"purged under rule {births} = 1y: {purged} record(s), 1 archived file(s)" in checked.stdout)
    assert ("按保存期限规则 rejected_files = 2y 已清除记录 0 条、归档文件 1 个" in checked.stdout
            and "purged under rule rejected_files = 2y: 0 record(s), 1 archived file(s)" in checked.stdout)
    assert checked.stdout.index("按保存期限规则") < checked.stdout.index("purged under rule")
    # The restored home's purged records are still purged, and a new run there purges nothing new.
    again = run_gateway(new_home, "retention", "run", env={**env, "GATEWAY_NOW": LATER})
    assert "nothing new is past its rule; nothing purged" in again.stdout
