"""Who reported it is part of identity (issue 19): the social-security bureau's report of a
death the police registered is a record of its own, never a correction of the police's; the
migration d19b00000001 splits what the old key had merged, and every receipt and proof
still verifies; a reconciliation rule pairs the two by ID number and death date."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from conftest import drop, execute, query, run_gateway, specimen

import gateway as gateway_package
from contracts import DeathEvent
from contracts.base import keyed_by_source, stored_business_key
from gateway.adapter import Adapter, SourceFile
from gateway.config import load_settings
from gateway.exchange.lifecycle import Gateway
from gateway.intake.transports.local import LocalMailbox
from gateway.plugins import get_manager
from gateway.readers import csv_rows
from gateway.receipts.keys import DepartmentKeys
from gateway.receipts.proofs import build_proof, verify_proof
from gateway.reconcile import Evidence, Reconciliation, Subject
from gateway.reconcile.base import as_date
from gateway.reconcile.evaluate import evaluate
from gateway.register.build import fold
from gateway.store import make_engine
from gateway.store.migrate import alembic_config, current_revision, head_revision, upgrade

BUREAU = "social-security"  # department names are lowercase letters, digits and dashes (config.py)
PREVIOUS = "f17b00000001"
THIS = "d19b00000001"  # the revision that splits the deaths by source
DEATH_ID, DEATH_DATE = "440781193804050137", "2026-10-11"  # the police specimen's 死亡注销 row
OTHER_ID = "440781195001010018"  # died too, reported by the family only
COLUMNS = ("GMSFHM", "XM", "SWRQ")


class BureauDeaths(Adapter):
    """A small social-security adapter: pension recipients' deaths a family reported (社保局)."""

    name = "social-security-deaths"
    department = BUREAU
    contracts = (DeathEvent,)
    file_types = (".csv",)

    def accepts(self, source: SourceFile) -> bool:
        return source.suffix == ".csv" and "SWRQ" in source.head()

    def parse(self, source):
        return csv_rows(source, COLUMNS, COLUMNS)

    def normalize(self, row):
        return DeathEvent.model_validate(
            {"deceased": {"id_number": row.fields["GMSFHM"], "name": row.fields["XM"]}, "death_date": row.fields["SWRQ"]}
        )


class BureauPlugin:
    @gateway_package.hookimpl
    def register_adapters(self, register):
        register(BureauDeaths)


class DeathsTheBureauReported(Reconciliation):
    """The bureau's deaths whose police death cancellation (死亡注销) is not on record."""

    name = "bureau-deaths-without-cancellation"
    description = "a death the social-security bureau reported that the police have not registered"
    subject_contract = evidence_contract = "DeathEvent"
    matching_keys = ("deceased.id_number", "deceased.id_number")
    grace = "0 days"
    notify = ("police",)

    def subjects(self, records):
        for record in records:
            if record.department == BUREAU:
                key = f"{record.payload['deceased']['id_number']}|{record.payload['death_date']}"
                yield Subject(record, key, key, as_date(record.payload["death_date"]), "deceased.id_number")

    def evidence(self, records):
        for record in records:
            if record.department == "police":
                yield Evidence(record, f"{record.payload['deceased']['id_number']}|{record.payload['death_date']}")


class RulePlugin:
    @gateway_package.hookimpl
    def register_reconciliations(self, register):
        register(DeathsTheBureauReported)


@pytest.fixture
def bureau(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The test home with `social_security` among its departments and the bureau's adapter registered."""
    config = home / "gateway.toml"
    text = config.read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("departments = ["))
    config.write_text(text.replace(line, line[:-1] + f', "{BUREAU}"]', 1), encoding="utf-8")
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    LocalMailbox(load_settings(home).mailbox_root).ensure_tree(BUREAU)
    manager, plugin = get_manager(), BureauPlugin()
    manager.register(plugin, name="test-bureau")
    try:
        yield home
    finally:
        manager.unregister(plugin)


@pytest.fixture
def receiving(bureau: Path, recipients) -> None:
    """The population office and civil affairs, who receive deaths, have their keys (the senders none:
    a department with a key must sign its drops)."""
    settings = load_settings(bureau)
    registry = DepartmentKeys(settings.keys_dir)
    for department in ("population-office", "civil-affairs"):
        ring, fingerprint = recipients[department]
        registry.import_key(ring.export(fingerprint), department)
        ring.trust_gateway(settings.keys_dir)


def police_death(station: str = "白沙派出所") -> bytes:
    lines = specimen("police_hukou_202610.csv").decode("utf-8-sig").splitlines()
    [death] = [line for line in lines if line.startswith("死亡注销")]
    return ("\ufeff" + lines[0] + "\r\n" + death.replace("白沙派出所", station) + "\r\n").encode("utf-8")


def bureau_deaths(*rows: tuple[str, str, str]) -> bytes:
    return ("GMSFHM,XM,SWRQ\r\n" + "".join(f"{a},{b},{c}\r\n" for a, b, c in rows)).encode("utf-8")


def pass_of(home: Path, department: str, name: str, data: bytes):
    gateway = Gateway(load_settings(home))
    try:
        drop(gateway.settings, department, name, data)
        [outcome] = gateway.run_once()
        assert outcome.status == "processed", outcome
        return outcome
    finally:
        gateway.close()


def deaths(home: Path) -> list[tuple]:
    return query(home, "SELECT r.business_key, r.version, e.department FROM record r JOIN exchange e ON e.id = r.exchange_id "
                       "WHERE r.contract = 'DeathEvent' ORDER BY r.id")


def delivered(home: Path) -> list[tuple]:
    return query(home, "SELECT agreement, business_key, version, change FROM deliveryrecord WHERE contract = 'DeathEvent' "
                       "ORDER BY agreement, id")


@contextlib.contextmanager
def old_key() -> Iterator[None]:
    """The pre-issue-19 behaviour: a death's key without its source."""
    DeathEvent.business_key_includes_source = False
    try:
        yield
    finally:
        DeathEvent.business_key_includes_source = True


def test_the_stored_key_of_a_death_names_its_sender_and_other_contracts_keep_theirs():
    death = DeathEvent.model_validate({"deceased": {"id_number": DEATH_ID, "name": "刘大爷"}, "death_date": DEATH_DATE})
    assert death.business_key() == f"{DEATH_ID}|{DEATH_DATE}"
    assert stored_business_key(death, BUREAU) == keyed_by_source(BUREAU, death.business_key()) == f"{BUREAU}|{DEATH_ID}|{DEATH_DATE}"
    from contracts import BirthEvent

    assert BirthEvent.business_key_includes_source is False  # births carry `registration` in their key instead


def test_gateway_contracts_show_says_a_deaths_key_names_its_sender():
    from typer.testing import CliRunner

    from gateway.cli import app

    def shown(name: str) -> str:
        result = CliRunner().invoke(app, ["contracts", "show", name], env={"COLUMNS": "220"})
        assert result.exit_code == 0, result.output
        return result.output

    assert "业务键 business key: 发送部门 sending department | deceased.id_number, death_date" in shown("DeathEvent")
    assert "业务键 business key: registration, birth_certificate_no" in shown("BirthEvent")


def test_the_police_death_and_the_bureau_report_are_two_records_both_version_1_and_no_correction_goes_out(bureau, receiving):
    police = pass_of(bureau, "police", "deaths.csv", police_death())
    reported = pass_of(bureau, BUREAU, "pension_deaths.csv", bureau_deaths((DEATH_ID, "刘大爷", "20261011")))
    assert (police.accepted, reported.accepted, reported.corrected, reported.duplicates) == (1, 1, 0, 0)
    assert deaths(bureau) == [(f"police|{DEATH_ID}|{DEATH_DATE}", 1, "police"), (f"{BUREAU}|{DEATH_ID}|{DEATH_DATE}", 1, BUREAU)]
    sent = delivered(bureau)
    assert {change for *_, change in sent} == {"new"} and len(sent) == 4  # two agreements, two records each
    # The police's fields are still in their current version.
    [(payload,)] = query(bureau, "SELECT payload FROM record WHERE business_key = ?", f"police|{DEATH_ID}|{DEATH_DATE}")
    assert json.loads(payload)["police_station"] == "白沙派出所"
    # The same bureau file under another name: a duplicate exchange; the same death in a new file: a duplicate row.
    again = pass_of(bureau, BUREAU, "pension_deaths_again.csv", bureau_deaths((DEATH_ID, "刘大爷", "2026-10-11")))
    assert (again.accepted, again.duplicates, again.corrected) == (0, 1, 0)


def test_a_police_correction_of_its_own_death_is_still_a_correction(bureau, receiving):
    pass_of(bureau, "police", "deaths.csv", police_death())
    pass_of(bureau, BUREAU, "pension_deaths.csv", bureau_deaths((DEATH_ID, "刘大爷", "20261011")))
    corrected = pass_of(bureau, "police", "deaths_corrected.csv", police_death("台城派出所"))
    assert (corrected.accepted, corrected.corrected) == (1, 1)
    assert deaths(bureau) == [
        (f"police|{DEATH_ID}|{DEATH_DATE}", 1, "police"), (f"{BUREAU}|{DEATH_ID}|{DEATH_DATE}", 1, BUREAU),
        (f"police|{DEATH_ID}|{DEATH_DATE}", 2, "police"),
    ]
    # A 更正 to the population office, who sees every field; civil affairs does not see the station.
    corrections = [row for row in delivered(bureau) if row[3] == "correction"]
    assert corrections == [("population-office-all", f"police|{DEATH_ID}|{DEATH_DATE}", 2, "correction")]


def _receipts(home: Path) -> list[Path]:
    settings = load_settings(home)
    return sorted(settings.mailbox_root.glob("*/outbox/*.receipt.json"))


def test_the_migration_splits_deaths_stored_under_the_old_key_and_every_receipt_and_proof_still_verifies(bureau, receiving):
    with old_key():
        pass_of(bureau, "police", "deaths.csv", police_death())
        merged = pass_of(bureau, BUREAU, "pension_deaths.csv", bureau_deaths((DEATH_ID, "刘大爷", "20261011"), (OTHER_ID, "张三", "20261020")))
        pass_of(bureau, BUREAU, "pension_deaths_fixed.csv", bureau_deaths((OTHER_ID, "张叁", "20261020")))
    old = f"{DEATH_ID}|{DEATH_DATE}"
    # What the old key did: the bureau's report became version 2 of the police's record, and a 更正 went out.
    assert merged.corrected == 1
    assert deaths(bureau) == [(old, 1, "police"), (old, 2, BUREAU), (f"{OTHER_ID}|2026-10-20", 1, BUREAU),
                              (f"{OTHER_ID}|2026-10-20", 2, BUREAU)]
    assert ("population-office-all", old, 2, "correction") in delivered(bureau)
    # A link a clerk confirmed between the death and a cremation, under the old key.
    execute(bureau, "INSERT INTO reconciliationlink (left_contract, left_key, right_contract, right_key, rule, confirmed_by, "
                    f"confirmed_at) VALUES ('DeathEvent', '{old}', 'CremationEvent', 'H1', 'deaths-without-cremation', 'clerk', "
                    "'2026-11-01 00:00:00')")
    stored = query(bureau, "SELECT id, payload, record_hash, leaf_index, exchange_id FROM record ORDER BY id")

    settings = load_settings(bureau)
    engine = make_engine(settings.db_url)
    try:
        fold(engine, settings)  # the register's facts, under the old keys too
        assert {key for (key,) in query(bureau, "SELECT business_key FROM registerfact WHERE contract = 'DeathEvent'")} == {
            old, f"{OTHER_ID}|2026-10-20"}
        with engine.begin() as connection:  # the database as the old code left it: no table or index of a later revision
            # The revisions after this one's (e20a..., a20b..., c21a..., and whatever comes next)
            # undone by their own downgrades, which touch no record; then stamped at the
            # revision before this one's, as the old code left it (its own changes no schema).
            command.downgrade(alembic_config(connection), THIS)
            command.stamp(alembic_config(connection), PREVIOUS)
        assert current_revision(engine) == PREVIOUS
        assert upgrade(engine) == head_revision()

        police_key, bureau_key = f"police|{old}", f"{BUREAU}|{old}"
        other = f"{BUREAU}|{OTHER_ID}|2026-10-20"
        assert deaths(bureau) == [(police_key, 1, "police"), (bureau_key, 1, BUREAU), (other, 1, BUREAU), (other, 2, BUREAU)]
        assert query(bureau, "SELECT id, payload, record_hash, leaf_index, exchange_id FROM record ORDER BY id") == stored
        # What the deliveries remember follows its record: a later correction compares with the right one.
        sent = delivered(bureau)
        assert ("population-office-all", bureau_key, 1, "correction") in sent  # as it was sent, under its own key now
        assert {(key, version) for _, key, version, _ in sent} == {(police_key, 1), (bureau_key, 1), (other, 1), (other, 2)}
        assert sorted(query(bureau, "SELECT left_key, right_key FROM reconciliationlink")) == [(police_key, "H1"), (bureau_key, "H1")]
        facts = query(bureau, "SELECT f.business_key, f.version, r.business_key, r.version FROM registerfact f "
                              "JOIN record r ON r.id = f.record_id WHERE f.contract = 'DeathEvent'")
        assert facts and all(fact[:2] == fact[2:] for fact in facts)
        assert {fact[:2] for fact in facts} >= {(police_key, 1), (bureau_key, 1)}

        # Every receipt verifies, and every record's proof.
        receipts = _receipts(bureau)
        assert len(receipts) == 3
        for receipt in receipts:
            result = run_gateway(bureau, "receipts", "verify", str(receipt))
            assert "GENUINE" in result.stdout and "NOT GENUINE" not in result.stdout, result.stdout
        for _, _, _, leaf, exchange in stored:
            checks = verify_proof(build_proof(engine, exchange, leaf_index=leaf), settings.keys_dir)
            assert checks and all(check.ok for check in checks), checks

        # Down again: one chain per ID number and date, as before; and up once more.
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), PREVIOUS)
        assert deaths(bureau) == [(old, 1, "police"), (old, 2, BUREAU), (f"{OTHER_ID}|2026-10-20", 1, BUREAU),
                                  (f"{OTHER_ID}|2026-10-20", 2, BUREAU)]
        assert query(bureau, "SELECT left_key, right_key FROM reconciliationlink") == [(old, "H1")]
        assert upgrade(engine) == head_revision()
        assert deaths(bureau)[:2] == [(police_key, 1, "police"), (bureau_key, 1, BUREAU)]
    finally:
        engine.dispose()

    # After the migration, the bureau's correction of its own report is its version 2, and the police's stays.
    fixed = pass_of(bureau, BUREAU, "pension_deaths_late.csv", bureau_deaths((DEATH_ID, "刘大爺", "20261011")))
    assert (fixed.accepted, fixed.corrected) == (1, 1)
    assert deaths(bureau)[-1] == (bureau_key, 2, BUREAU)
    assert ("population-office-all", bureau_key, 2, "correction") in delivered(bureau)


def test_a_rule_pairs_the_bureaus_deaths_with_the_polices_by_sender(bureau):
    manager, plugin = get_manager(), RulePlugin()
    manager.register(plugin, name="test-bureau-rule")
    try:
        pass_of(bureau, "police", "deaths.csv", police_death())
        pass_of(bureau, BUREAU, "pension_deaths.csv", bureau_deaths((DEATH_ID, "刘大爷", "20261011"), (OTHER_ID, "张三", "20261020")))
        settings = load_settings(bureau)
        engine = make_engine(settings.db_url)
        try:
            result = evaluate(engine, settings, dt.date(2026, 11, 30), [DeathsTheBureauReported.name])
        finally:
            engine.dispose()
        assert result.rules[DeathsTheBureauReported.name].open == 1
        # The one open: the death only the family reported; the police's own record is never a subject.
        assert query(bureau, "SELECT subject_key, business_key, status FROM discrepancy WHERE rule = ?", DeathsTheBureauReported.name) == [
            (f"{OTHER_ID}|2026-10-20", f"{BUREAU}|{OTHER_ID}|2026-10-20", "open")
        ]
    finally:
        manager.unregister(plugin)


def test_one_death_reported_by_both_is_counted_once_in_the_reports(bureau):
    from gateway.population_reports.events import read_events
    from gateway.register.divisions import EXAMPLE, parse_divisions
    from gateway.register.lists import period
    from gateway.register.township_report import UNPLACED, township_figures

    pass_of(bureau, "police", "deaths.csv", police_death())
    pass_of(bureau, BUREAU, "pension_deaths.csv", bureau_deaths((DEATH_ID, "刘大爷", "20261011"), (OTHER_ID, "张三", "20261020")))
    assert len(deaths(bureau)) == 3
    engine = make_engine(load_settings(bureau).db_url)
    try:
        died = [event for event in read_events(engine).events if event.item == "deaths"]
        # Two deaths; the one both reported counts once, as the police's (with its household division).
        assert sorted((event.day.isoformat(), event.division or "") for event in died) == [("2026-10-11", "440781"), ("2026-10-20", "")]
        figures = township_figures(engine, period("2026-10"), parse_divisions(EXAMPLE))
        assert sum(sum(by_sex.values()) for by_sex in figures[UNPLACED].deaths.values()) == 2
    finally:
        engine.dispose()


def test_the_parsing_processes_make_the_same_keys(bureau, monkeypatch, caplog):
    monkeypatch.setenv("GATEWAY_INGEST_WORKERS", "2")
    monkeypatch.setenv("GATEWAY_PARALLEL_PARSE_MIN_BYTES", "0")
    assert load_settings(bureau).ingest_workers == 2
    pass_of(bureau, "police", "deaths.csv", police_death())
    reported = pass_of(bureau, BUREAU, "pension_deaths.csv", bureau_deaths((DEATH_ID, "刘大爷", "20261011")))
    assert (reported.accepted, reported.corrected) == (1, 0)
    assert deaths(bureau) == [(f"police|{DEATH_ID}|{DEATH_DATE}", 1, "police"), (f"{BUREAU}|{DEATH_ID}|{DEATH_DATE}", 1, BUREAU)]
    assert sum("parsing process" in record.getMessage() for record in caplog.records) == 2  # both files went that way


def test_the_built_in_death_rules_read_only_the_polices_registrations(bureau):
    """deaths-without-cremation asks a cremation of every police 死亡注销, not of a death the
    family reported to the bureau; a bureau's DeathEvent does not answer
    cremations-without-death for the police (only a 死亡注销 cancels a registration)."""
    pass_of(bureau, "police", "deaths.csv", police_death())
    pass_of(bureau, BUREAU, "pension_deaths.csv", bureau_deaths((DEATH_ID, "刘大爷", "20261011"), (OTHER_ID, "张三", "20261020")))
    settings = load_settings(bureau)
    engine = make_engine(settings.db_url)
    try:
        result = evaluate(engine, settings, dt.date(2026, 11, 30), ["deaths-without-cremation"])
    finally:
        engine.dispose()
    assert result.rules["deaths-without-cremation"].open == 1
    assert query(bureau, "SELECT subject_key FROM discrepancy WHERE rule = ?", "deaths-without-cremation") == [(DEATH_ID,)]
