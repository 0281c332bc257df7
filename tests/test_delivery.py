"""Delivery under the sharing agreements: one accepted exchange fanned out to every entitled
department, minimized, encrypted to its key and signed by the gateway (issue 7)."""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import pytest
from conftest import RecipientKeyring, drop, execute, query, run_gateway, specimen

from gateway.receipts.keys import DepartmentKeys
from gateway.receipts.signing import read_history

SPECIMEN = "hospital_births_202610.csv"
SCHOOL_COLUMNS = ["记录号", "版本", "变更", "新生儿姓名", "新生儿性别", "新生儿出生日期", "家庭住址", "户籍地行政区划代码"]


def outbox(settings, department: str) -> list[str]:
    return sorted(p.name for p in (settings.mailbox_root / department / "outbox").iterdir())


def deliveries(settings, recipient: str) -> list[tuple]:
    return query(
        settings,
        "SELECT id, status, file_name, sha256, records, reason FROM delivery WHERE recipient = ? ORDER BY id",
        recipient,
    )


def read_csv(data: bytes, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(encoding), newline="")))


def variant(text_from: str, text_to: str, name: str = SPECIMEN) -> bytes:
    return specimen(name).decode("gb18030").replace(text_from, text_to).encode("gb18030")


def write_agreements(settings, text: str) -> None:
    (settings.home / "agreements.toml").write_text(text, encoding="utf-8")


def test_one_hospital_drop_fans_out_to_three_departments_each_seeing_only_its_fields(gateway, settings, register_recipients):
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    [outcome] = gateway.run_once()
    assert (outcome.status, outcome.accepted) == ("processed", 3)

    gateway_key = read_history(settings.keys_dir)[-1].fingerprint
    files = {d: outbox(settings, d) for d in ("population-office", "school", "police", "civil-affairs")}
    assert [len(names) for names in files.values()] == [1, 1, 1, 0]  # no deaths: civil affairs gets nothing
    for names in files.values():
        for name in names:
            assert name.startswith("DELIVERY-") and name.endswith(".gpg") and not name.endswith(".json")

    # The school decrypts with plain gpg and its own key, and sees only its five columns.
    ring, school_key = register_recipients["school"]
    [name] = files["school"]
    plain, status = ring.decrypt(settings.mailbox_root / "school" / "outbox" / name)
    assert "[GNUPG:] DECRYPTION_OKAY" in status and f"[GNUPG:] VALIDSIG {gateway_key}" in status
    rows = read_csv(plain, "gb18030")
    assert rows[0] == SCHOOL_COLUMNS
    assert [row[3] for row in rows[1:]] == ["陈小明", "黄\U0002003e然", "李安"]  # outside the BMP, byte-exact
    assert rows[1][4:] == ["1", "2026-10-03", "广东省台山市台城街道环城南路12号", "440781"]
    assert all(row[1:3] == ["1", "新增"] for row in rows[1:])
    text = plain.decode("gb18030")
    for hidden in ("440781199203154325", "陈丽", "李强", "Q440781260001", "3250", "台山市人民医院"):
        assert hidden not in text

    # The police see the mother's ID number (their agreement allows it); the school's key cannot read it.
    police_ring, _ = register_recipients["police"]
    police_file = settings.mailbox_root / "police" / "outbox" / files["police"][0]
    police_plain, _ = police_ring.decrypt(police_file)
    police_rows = read_csv(police_plain, "utf-8-sig")
    assert "母亲公民身份号码" in police_rows[0] and "440781199203154325" in police_plain.decode("utf-8-sig")
    assert ring.gpg("--decrypt", str(police_file), check=False).returncode != 0

    # The population office receives whole records as JSON Lines.
    office_ring, _ = register_recipients["population-office"]
    office_plain, _ = office_ring.decrypt(settings.mailbox_root / "population-office" / "outbox" / files["population-office"][0])
    lines = [json.loads(line) for line in office_plain.decode("utf-8").splitlines()]
    assert [line["change"] for line in lines] == ["new"] * 3
    assert lines[0]["fields"]["birth_weight_g"] == 3250 and lines[0]["contract"] == "BirthEvent"

    # Each delivery row holds the file's sha256 and the hashes of the records it carried.
    [(delivery_id, status_, file_name, sha256, records, _)] = deliveries(settings, "school")
    assert (status_, file_name, records) == ("delivered", name, 3)
    assert sha256 == hashlib.sha256((settings.mailbox_root / "school" / "outbox" / name).read_bytes()).hexdigest()
    carried = query(settings, "SELECT record_hash FROM deliveryrecord WHERE delivery_id = ? ORDER BY record_id", delivery_id)
    stored = query(settings, "SELECT record_hash FROM record ORDER BY id")
    assert carried == stored


def test_the_readme_tour_one_drop_three_departments_and_plain_gpg(home, recipients, tmp_path):
    """The README tour's commands, as a user types them."""
    for department in ("school", "police", "population-office"):
        ring, fingerprint = recipients[department]
        key_file = tmp_path / f"{department}.asc"
        key_file.write_bytes(ring.export(fingerprint))
        run_gateway(home, "keys", "import", str(key_file), "--department", department)
    inbox = home / "mailbox" / "hospital" / "inbox"
    (inbox / (SPECIMEN + ".part")).write_bytes(specimen(SPECIMEN))
    (inbox / (SPECIMEN + ".part")).rename(inbox / SPECIMEN)
    run_gateway(home, "run", "--once", env={"GATEWAY_SETTLE_SECONDS": "0"})
    listed = run_gateway(home, "deliveries", "list").stdout
    assert "held" not in listed
    statuses = query(home, "SELECT recipient, status FROM delivery ORDER BY recipient")
    assert statuses == [("police", "delivered"), ("population-office", "delivered"), ("school", "delivered")]

    ring, _ = recipients["school"]
    ring.trust_gateway(home / "keys")
    [delivery] = sorted((home / "mailbox" / "school" / "outbox").glob("DELIVERY-*.csv.gpg"))
    result = ring.gpg("--output", str(tmp_path / "school.csv"), "--decrypt", str(delivery))
    assert b"Good signature" in result.stderr
    rows = read_csv((tmp_path / "school.csv").read_bytes(), "gb18030")
    assert rows[0] == SCHOOL_COLUMNS and len(rows) == 4


def test_without_a_key_nothing_is_sent_in_clear_and_it_goes_out_once_a_key_is_imported(gateway, settings, recipients, home):
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    [outcome] = gateway.run_once()
    assert outcome.status == "processed"
    for department in ("population-office", "school", "police"):
        assert outbox(settings, department) == []
        [(_, status, file_name, _, _, reason)] = deliveries(settings, department)
        assert status == "held" and file_name is None
        assert "no public key is registered" in reason and f"gateway keys import KEY.asc --department {department}" in reason
    assert not (settings.home / "deliveries").exists() or not list((settings.home / "deliveries").iterdir())
    shown = run_gateway(home, "deliveries", "list").stdout
    assert shown.count(" held ") == 3 and "no public key is" in shown

    ring, fingerprint = recipients["school"]
    DepartmentKeys(settings.keys_dir).import_key(ring.export(fingerprint), "school")
    gateway.run_once()  # the next pass
    assert [name for name in outbox(settings, "school") if name.startswith("DELIVERY-")]
    assert deliveries(settings, "school")[0][1] == "delivered"
    assert deliveries(settings, "police")[0][1] == "held"


def test_an_expired_key_holds_the_delivery_with_the_reason(gateway, settings, recipients):
    import time

    ring = RecipientKeyring()
    try:
        made = time.time()
        fingerprint = ring.new_key("Expiring School", expire="seconds=5")
        DepartmentKeys(settings.keys_dir).import_key(ring.export(fingerprint), "school")
        time.sleep(max(0.0, made + 6.5 - time.time()))
        drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
        gateway.run_once()
        [(_, status, _, _, _, reason)] = deliveries(settings, "school")
        assert status == "held" and f"key {fingerprint} expired on" in reason
        assert outbox(settings, "school") == []

        # A current key is imported: the next pass delivers with it (and only it).
        current = ring.new_key("Current School")
        DepartmentKeys(settings.keys_dir).import_key(ring.export(current), "school")
        ring.trust_gateway(settings.keys_dir)
        gateway.routing.run_pass()
        [(_, status, name, _, _, _)] = deliveries(settings, "school")
        assert status == "delivered"
        encrypted_to = query(settings, "SELECT encrypted_to FROM delivery WHERE recipient = 'school'")[0][0]
        assert encrypted_to == current
        plain, _ = ring.decrypt(settings.mailbox_root / "school" / "outbox" / name)
        assert read_csv(plain, "gb18030")[0] == SCHOOL_COLUMNS
    finally:
        ring.close()


def test_a_key_that_can_only_sign_holds_the_delivery(gateway, settings):
    ring = RecipientKeyring()
    try:
        fingerprint = ring.new_key("Signing Only Police", encrypt=False)
        DepartmentKeys(settings.keys_dir).import_key(ring.export(fingerprint), "police")
        drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
        gateway.run_once()
        [(_, status, _, _, _, reason)] = deliveries(settings, "police")
        assert status == "held" and "cannot encrypt" in reason
    finally:
        ring.close()


class FullOutbox:
    """The local mailbox, whose outbox of one department is full."""

    def __init__(self, inner, department: str):
        self.inner, self.department, self.full = inner, department, True

    def put(self, department, folder, name, source):  # type: ignore[no-untyped-def]
        if self.full and department == self.department and folder == "outbox" and name.startswith("DELIVERY-"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.inner.put(department, folder, name, source)

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


def test_a_full_outbox_keeps_the_exchange_and_the_delivery_goes_out_later_unchanged(gateway, settings, register_recipients):
    full = FullOutbox(gateway.transport, "school")
    gateway.transports["school"] = full
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    [outcome] = gateway.run_once()
    assert (outcome.status, outcome.accepted) == ("processed", 3)  # the exchange itself is accepted
    assert (settings.mailbox_root / "hospital" / "outbox" / f"{SPECIMEN}.receipt.json").exists()
    [(_, status, name, sha256, records, reason)] = deliveries(settings, "school")
    assert status == "prepared" and records == 3 and "No space left on device" in reason
    assert outbox(settings, "school") == []
    assert deliveries(settings, "police")[0][1] == "delivered"  # the others are not held up

    attempts = query(settings, "SELECT attempts FROM delivery WHERE recipient = 'school'")[0][0]
    gateway.run_once()  # still full: tried again, nothing lost
    assert deliveries(settings, "school")[0][1] == "prepared"
    assert query(settings, "SELECT attempts FROM delivery WHERE recipient = 'school'")[0][0] > attempts

    full.full = False
    gateway.run_once()
    [(_, status, name_after, sha_after, _, reason)] = deliveries(settings, "school")
    assert (status, name_after, sha_after, reason) == ("delivered", name, sha256, None)
    assert hashlib.sha256((settings.mailbox_root / "school" / "outbox" / name).read_bytes()).hexdigest() == sha256
    assert query(settings, "SELECT count(*) FROM auditevent WHERE action = 'delivery_failed'")[0][0] == 1


def test_an_outbox_that_cannot_be_written_is_retried(gateway, settings, register_recipients):
    folder = settings.mailbox_root / "police" / "outbox"
    folder.rmdir()
    folder.write_text("not a folder")  # as root, permissions cannot make it unwritable; this can
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    [outcome] = gateway.run_once()
    assert outcome.status == "processed"
    [(_, status, _, _, _, reason)] = deliveries(settings, "police")
    assert status == "prepared" and "not written to the outbox of police" in reason
    folder.unlink()
    folder.mkdir()
    gateway.run_once()
    assert deliveries(settings, "police")[0][1] == "delivered" and len(outbox(settings, "police")) == 1


def test_csv_cells_never_run_as_spreadsheet_formulas(gateway, settings, register_recipients):
    data = variant("广东省台山市台城街道环城南路12号", "=HYPERLINK(\"http://evil.example\";\"点我\")").replace(
        "广东省台山市水步镇".encode("gb18030"), "@SUM(A1:A9)".encode("gb18030")
    )
    drop(settings, "hospital", SPECIMEN, data)
    gateway.run_once()
    ring, _ = register_recipients["school"]
    plain, _ = ring.decrypt(settings.mailbox_root / "school" / "outbox" / outbox(settings, "school")[0])
    addresses = [row[6] for row in read_csv(plain, "gb18030")[1:]]
    assert addresses[0] == "'=HYPERLINK(\"http://evil.example\";\"点我\")"
    assert addresses[2] == "'@SUM(A1:A9)"


def test_filters_choose_the_records_and_a_daily_batch_collects_exchanges(gateway, settings, register_recipients):
    write_agreements(
        settings,
        """
[[agreements]]
name = "school-county-births"
recipient = "school"
contracts = ["BirthEvent"]
fields = ["child.name", "registered_division_code"]
purpose = "test"
format = "csv-utf8"
schedule = "daily"
[agreements.filters]
match = { registration = "hospital" }
division_prefix = "440781"
event_from = 2026-10-01
event_until = 2026-10-06
""",
    )
    drop(settings, "hospital", "a.csv", specimen(SPECIMEN))
    gateway.run_once()
    drop(settings, "hospital", "b.csv", variant("Q4407812600", "Q4407812610"))
    gateway.run_once()
    [(delivery_id, status, *_)] = deliveries(settings, "school")
    assert status == "open" and outbox(settings, "school") == []  # the day is not over
    assert query(settings, "SELECT count(*) FROM deliveryexchange WHERE delivery_id = ?", delivery_id)[0][0] == 2

    execute(settings, "UPDATE delivery SET due_at = '2000-01-01 00:00:00'")  # the day is over
    gateway.routing.run_pass()
    [(_, status, name, _, records, _)] = deliveries(settings, "school")
    assert (status, records) == ("delivered", 2)
    ring, _ = register_recipients["school"]
    plain, _ = ring.decrypt(settings.mailbox_root / "school" / "outbox" / name)
    rows = read_csv(plain, "utf-8-sig")
    # 440703 is outside the prefix, 2026-10-07 after the range: only 陈小明, from both files.
    assert rows[0] == ["记录号", "版本", "变更", "新生儿姓名", "户籍地行政区划代码"]
    assert [(row[3], row[4]) for row in rows[1:]] == [("陈小明", "440781"), ("陈小明", "440781")]


def test_routing_that_fails_never_fails_the_exchange_and_is_redone(gateway, settings, register_recipients, monkeypatch, caplog):
    secret = "4407811992" + "03154325"  # not a literal: the logged traceback shows this source line

    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"the database went away while storing {secret}")

    monkeypatch.setattr(type(gateway.routing), "route", broken)
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    [outcome] = gateway.run_once()
    assert (outcome.status, outcome.accepted) == ("processed", 3)
    assert (settings.mailbox_root / "hospital" / "processed" / SPECIMEN).exists()
    assert query(settings, "SELECT count(*) FROM routedexchange")[0][0] == 0
    assert "routing failed; retried on the next pass" in caplog.text
    assert "440781***********5" in caplog.text and secret not in caplog.text  # the error is logged masked
    monkeypatch.undo()
    gateway.routing.run_pass()
    assert len(outbox(settings, "school")) == 1 and len(outbox(settings, "police")) == 1


def test_an_exchange_is_routed_once_however_often_it_is_finished(gateway, settings, register_recipients):
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    [outcome] = gateway.run_once()
    gateway.routing.exchange_committed(outcome.exchange_id)
    gateway.routing.run_pass()
    assert query(settings, "SELECT count(*) FROM delivery WHERE recipient = 'school'")[0][0] == 1
    assert len(outbox(settings, "school")) == 1
    assert query(settings, "SELECT count(*) FROM deliveryrecord")[0][0] == 9


def test_the_prepared_file_lost_before_sending_is_prepared_again(gateway, settings, register_recipients):
    full = FullOutbox(gateway.transport, "school")
    gateway.transports["school"] = full
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    gateway.run_once()
    for path in (settings.home / "deliveries").iterdir():
        path.unlink()  # someone emptied the folder
    full.full = False
    gateway.routing.run_pass()  # notices, prepares again
    gateway.routing.run_pass()
    [(delivery_id, status, name, sha256, records, _)] = deliveries(settings, "school")
    assert (status, records) == ("delivered", 3)
    assert query(settings, "SELECT count(*) FROM deliveryrecord WHERE delivery_id = ?", delivery_id)[0][0] == 3
    assert hashlib.sha256((settings.mailbox_root / "school" / "outbox" / name).read_bytes()).hexdigest() == sha256


@pytest.mark.slow
def test_a_delivery_reaches_a_recipient_on_sftp_who_fetches_and_decrypts_it(home, sshd, recipients, monkeypatch, tmp_path):
    """The police mailbox on a real sshd: the delivery is written through SFTP, and the
    police clerk fetches it with the plain `sftp` client and decrypts it with plain gpg."""
    import subprocess

    from sshd import GATEWAY_KEY_PASSPHRASE

    from gateway.config import load_settings
    from gateway.exchange.lifecycle import Gateway

    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    monkeypatch.setenv("GATEWAY_SFTP_COUNTY_PASSPHRASE", GATEWAY_KEY_PASSPHRASE)
    with open(home / "gateway.toml", "a", encoding="utf-8") as config:
        config.write(sshd.gateway_toml("county", ["hospital", "police"]))
    scanned = subprocess.run(
        ["ssh-keyscan", "-t", "ed25519", "-p", str(sshd.port), "127.0.0.1"], capture_output=True, text=True, check=True
    ).stdout
    (home / "known_hosts").write_text(scanned)
    settings = load_settings(home)
    ring, fingerprint = recipients["police"]
    DepartmentKeys(settings.keys_dir).import_key(ring.export(fingerprint), "police")
    ring.trust_gateway(settings.keys_dir)
    clerk = tmp_path / "clerk"
    clerk.mkdir()
    (clerk / SPECIMEN).write_bytes(specimen(SPECIMEN))
    sshd.upload("hospital", clerk / SPECIMEN)
    gateway = Gateway(settings)
    try:
        [outcome] = gateway.run_once()
        assert outcome.status == "processed"
        [(_, status, name, sha256, records, _)] = deliveries(settings, "police")
        assert (status, records) == ("delivered", 3)
    finally:
        gateway.close()
    assert name in sorted(p.name for p in (sshd.root / "police" / "outbox").iterdir())
    sshd.sftp("police", f"get outbox/{name}", cwd=clerk)
    assert hashlib.sha256((clerk / name).read_bytes()).hexdigest() == sha256
    plain, status_lines = ring.decrypt(clerk / name)
    assert "[GNUPG:] GOODSIG" in status_lines
    assert read_csv(plain, "utf-8-sig")[0][:4] == ["记录号", "版本", "变更", "出生医学证明编号"]


@pytest.mark.backend_independent
def test_delivery_file_names_are_never_json():
    from gateway.routing.delivery import EXTENSIONS

    assert sorted(EXTENSIONS.values()) == ["csv", "csv", "jsonl"]


# -- the township scope (issue 18): a township receives its own people only ----------------

BIRTHS_HEADER = ("出生医学证明编号,新生儿姓名,性别,出生日期,出生时间,出生体重(克),出生孕周,胎次,母亲姓名,母亲公民身份号码,"
                 "父亲姓名,父亲公民身份号码,接生机构名称,接生机构代码,家庭住址,户籍地行政区划代码")
TOWNS = {"town-440781101": "大江镇公益村", "town-440781102": "水步镇水步村"}


def _mother_id(born: str, sequence: int) -> str:
    from stdnum.cn import ric

    body = f"440781{born}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


def test_a_township_agreement_delivers_only_its_own_people_and_leaves_the_unplaced_out(home, monkeypatch, recipients):
    from gateway.exchange.lifecycle import Gateway
    from gateway.config import load_settings
    from gateway.register.divisions import EXAMPLE

    (home / "divisions.csv").write_text(EXAMPLE, encoding="utf-8")
    departments = ["police", "hospital", "civil-affairs", "school", "housing", "national-platform", "population-office", *TOWNS]
    monkeypatch.setenv("GATEWAY_DEPARTMENTS", json.dumps(departments))
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    settings = load_settings(home)
    write_agreements(settings, "".join(
        f'[[agreements]]\nname = "{town}-births"\nrecipient = "{town}"\ncontracts = ["BirthEvent"]\n'
        f'fields = ["mother.name", "mother.id_number", "home_address"]\npurpose = "以行政村（居）为单位"\n'
        for town in TOWNS
    ))
    mothers = {
        "town-440781101": ("王芳", _mother_id("19940506", 22), "广东省台山市大江镇公益村3号"),
        "town-440781102": ("陈静", _mother_id("19960707", 44), "广东省台山市水步镇水步村5号"),
        None: ("赵敏", _mother_id("19950203", 42), "广东省台山市大江镇新围村1号"),  # no such village: unplaced
    }
    rows = [
        f"Q4407812690{n},孩子{n},男,2026-10-03,10:00,3200,39,1,{name},{number},,,台山市人民医院,12440781MB2C23455K,{address},440781"
        for n, (name, number, address) in enumerate(mothers.values(), 1)
    ]
    rings = {}
    for town in TOWNS:
        (settings.mailbox_root / town / "outbox").mkdir(parents=True, exist_ok=True)
        ring = RecipientKeyring()
        rings[town] = (ring, ring.new_key(f"{town} Office"))
        DepartmentKeys(settings.keys_dir).import_key(ring.export(rings[town][1]), town)
        ring.trust_gateway(settings.keys_dir)
    checked = run_gateway(home, "agreements", "check", env={"GATEWAY_DEPARTMENTS": json.dumps(departments)})
    assert checked.returncode == 0
    explained = run_gateway(home, "agreements", "explain", "town-440781102", env={"GATEWAY_DEPARTMENTS": json.dumps(departments)})
    assert "仅本乡镇（水步镇）的人员" in explained.stdout
    gateway = Gateway(settings)
    try:
        drop(settings, "hospital", "births.csv", ("\n".join([BIRTHS_HEADER, *rows]) + "\n").encode("utf-8"))
        [outcome] = gateway.run_once()
        assert (outcome.status, outcome.accepted) == ("processed", 3)
        for town, (ring, _) in rings.items():
            [name] = outbox(settings, town)
            plain, status = ring.decrypt(settings.mailbox_root / town / "outbox" / name)
            assert "GOODSIG" in status or "VALIDSIG" in status
            table = read_csv(plain, "utf-8-sig")
            assert [row[3:] for row in table[1:]] == [list(mothers[town])]
            other = next(t for t in TOWNS if t != town)
            assert mothers[other][1] not in plain.decode("utf-8-sig") and mothers[None][1] not in plain.decode("utf-8-sig")
            [(_, delivery_status, _, _, records, reason)] = deliveries(settings, town)
            assert (delivery_status, records) == ("delivered", 1)
            assert reason.startswith("1 条记录未能落到村（居）")  # the unplaced mother, counted, sent to no one
        # The other township cannot decrypt what was sent to this one.
        [name] = outbox(settings, "town-440781101")
        with pytest.raises(AssertionError, match="decrypt"):
            rings["town-440781102"][0].decrypt(settings.mailbox_root / "town-440781101" / "outbox" / name)
    finally:
        gateway.close()
        for ring, _ in rings.values():
            ring.close()


def test_township_scope_is_checked_against_the_recipient_and_divisions(home, monkeypatch):
    from gateway.config import load_settings
    from gateway.routing.agreements import load_agreements

    departments = ["police", "hospital", "school", "town-440781101", "town-440781999"]
    monkeypatch.setenv("GATEWAY_DEPARTMENTS", json.dumps(departments))
    settings = load_settings(home)
    write_agreements(settings, """
[[agreements]]
name = "a"
recipient = "town-440781101"
contracts = ["BirthEvent"]
fields = ["*"]
purpose = "p"
[[agreements]]
name = "b"
recipient = "school"
scope = "township"
contracts = ["BirthEvent"]
fields = ["*"]
purpose = "p"
""")
    (home / "divisions.csv").unlink(missing_ok=True)
    problems = [str(p) for p in load_agreements(settings).errors]
    assert any("'a'" in p and "divisions.csv" in p for p in problems)
    assert any("'b'" in p and "town-<9-digit township code>" in p for p in problems)
    from gateway.register.divisions import EXAMPLE

    (home / "divisions.csv").write_text(EXAMPLE, encoding="utf-8")
    write_agreements(settings, """
[[agreements]]
name = "c"
recipient = "town-440781999"
contracts = ["BirthEvent", "MarriageEvent"]
fields = ["*"]
purpose = "p"
""")
    problems = [str(p) for p in load_agreements(settings).errors]
    assert any("no township of divisions.csv" in p and "town-440781101" in p for p in problems)
    assert any("MarriageEvent names no address" in p for p in problems)
