"""Issue 14, the intake flow: files still arriving, files that change after they were
taken, files the gateway cannot read yet, and names and bytes no one expected — each
file gets one outcome a person can see, and no other file is held up by it.

The slow end-to-end tests (a real sshd with throttled and killed `sftp` uploads, a local
file written in bursts, both while `gateway run` polls) are in tests/test_arrival_live.py."""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import os
import time
import zipfile
from pathlib import Path

import pytest
from conftest import drop, hospital_births_file, query, run_gateway, specimen

from gateway.config import load_settings
from gateway.exchange.lifecycle import Gateway
from gateway.intake.arrival import ArrivalWatch, looks_complete
from gateway.intake.names import NAME_MAX, fit, shown
from gateway.intake.transports import FoundFile


def listing(settings, department: str, folder: str) -> list[str]:
    return sorted(os.listdir(settings.mailbox_root / department / folder))


def receipt(settings, department: str, stem: str) -> dict:
    return json.loads((settings.mailbox_root / department / "outbox" / f"{stem}.receipt.json").read_bytes())


# -- what looks complete ----------------------------------------------------------------


@pytest.mark.backend_independent
def test_completeness_by_format():
    csv = hospital_births_file(1, 3)
    assert looks_complete("a.csv", csv[:4096], csv[-65557:], len(csv)) is True
    cut = csv[:-5]
    assert looks_complete("a.csv", cut[:4096], cut[-65557:], len(cut)) is False
    xml = specimen("civil_affairs_202610.xml")
    assert looks_complete("a.xml", xml[:4096], xml[-65557:], len(xml)) is True
    half = xml[: len(xml) // 2]
    assert looks_complete("a.xml", half[:4096], half[-65557:], len(half)) is False
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as book:
        book.writestr("xl/workbook.xml", "<workbook/>" * 100)
    whole = buffer.getvalue()
    assert looks_complete("a.xlsx", whole[:4096], whole[-65557:], len(whole)) is True
    part = whole[: len(whole) - 30]  # the central directory not yet written
    assert looks_complete("a.xlsx", part[:4096], part[-65557:], len(part)) is False
    page = specimen("housing_occupancy_page1.json")
    assert looks_complete("p.json", page[:4096], page[-65557:], len(page)) is True
    assert looks_complete("p.json", page[:4096], page[:-3][-65557:], len(page) - 3) is False
    assert looks_complete("a.dat", b"x", b"x", 1) is None


@pytest.mark.backend_independent
def test_never_on_first_sight_and_the_wait_depends_on_how_it_arrived():
    watch = ArrivalWatch(settle_seconds=2.0, wait_seconds=60.0)
    ends = {"whole.csv": (b"h\n", b"1,2\n"), "cut.csv": (b"h\n", b"1,2")}

    def listed(*names: str) -> list[FoundFile]:
        return [FoundFile("hospital", n, f"hospital/inbox/{n}", 10, 1000.0) for n in names]

    def observe(now: float, names: tuple[str, ...], temporaries: tuple[str, ...] = ()) -> list[str]:
        ready, _ = watch.observe("hospital", listed(*names), list(temporaries), now, lambda f: ends.get(f.name, (b"", b"")), False)
        return sorted(f.name for f in ready)

    assert observe(1000.0, ("whole.csv", "cut.csv"), ("renamed.csv.part",)) == []  # first sight: nothing
    assert observe(1001.0, ("whole.csv", "cut.csv", "renamed.csv")) == []  # not a settle apart yet
    assert observe(1002.5, ("whole.csv", "cut.csv", "renamed.csv")) == ["whole.csv"]
    assert observe(1004.0, ("cut.csv", "renamed.csv")) == ["renamed.csv"]  # arrived by rename: the short settle
    assert observe(1030.0, ("cut.csv",)) == []  # a CSV cut mid-line outlasts a 32 s pause of a slow upload
    assert observe(1061.0, ("cut.csv",)) == ["cut.csv"]


def test_a_department_whose_clients_always_rename_has_renamed_files_taken_at_once(home, monkeypatch):
    monkeypatch.delenv("GATEWAY_SETTLE_SECONDS", raising=False)
    with open(home / "gateway.toml", "a", encoding="utf-8") as config:
        config.write('\n[arrival]\nhospital = "rename"\n')
    settings = load_settings(home)
    assert (settings.settle_seconds, settings.arrival_wait_seconds, settings.arrival) == (2.0, 60.0, {"hospital": "rename"})
    gateway = Gateway(settings)
    try:
        inbox = settings.mailbox_root / "hospital" / "inbox"
        for department in ("hospital", "police"):
            (settings.mailbox_root / department / "inbox" / "x.csv.part").write_bytes(hospital_births_file(16, 2))
        assert gateway.ready_files()[0] == []
        os.rename(inbox / "x.csv.part", inbox / "x.csv")
        police = settings.mailbox_root / "police" / "inbox"
        os.rename(police / "x.csv.part", police / "x.csv")
        [found], _ = gateway.ready_files()  # hospital's at once; police's after the short settle
        assert (found.department, found.name) == ("hospital", "x.csv")
    finally:
        gateway.close()


def test_a_department_that_requires_a_manifest_has_files_taken_as_soon_as_they_match_it(home, monkeypatch, caplog):
    """`[arrival] hospital = "manifest"`: NAME is taken only with NAME.sha256 beside it (what
    `sha256sum NAME` prints), at once (no settle wait) once its bytes match; a file still
    being written stays, and the manifest moves with its drop."""
    monkeypatch.delenv("GATEWAY_SETTLE_SECONDS", raising=False)
    with open(home / "gateway.toml", "a", encoding="utf-8") as config:
        config.write('\n[arrival]\nhospital = "manifest"\n')
    settings = load_settings(home)
    assert settings.arrival == {"hospital": "manifest"}
    gateway = Gateway(settings)
    try:
        inbox = settings.mailbox_root / "hospital" / "inbox"
        whole = hospital_births_file(17, 4)
        (inbox / "m.csv").write_bytes(whole[: len(whole) // 2])
        assert gateway.run_once() == []  # no manifest: held, however complete it may look
        assert "waiting for its manifest" in caplog.text
        (inbox / "m.csv.sha256").write_bytes(f"{hashlib.sha256(whole).hexdigest()}  m.csv\n".encode())
        assert gateway.run_once() == []  # half written: its bytes do not match the manifest yet
        assert listing(settings, "hospital", "inbox") == ["m.csv", "m.csv.sha256"]
        assert "do not match its manifest" in caplog.text
        (inbox / "m.csv").write_bytes(whole)
        [outcome] = gateway.run_once()  # at once: no settle wait (settle_seconds is 2)
        assert (outcome.file_name, outcome.status, outcome.accepted) == ("m.csv", "processed", 4)
        assert listing(settings, "hospital", "inbox") == []
        assert listing(settings, "hospital", "processed") == ["m.csv", "m.csv.sha256"]
        # Another department: a .sha256 file there is an ordinary drop, and files wait as usual.
        police = settings.mailbox_root / "police" / "inbox"
        (police / "p.csv").write_bytes(specimen("police_hukou_202610.csv"))
        assert gateway.ready_files()[0] == []
    finally:
        gateway.close()


def test_a_future_mtime_does_not_hold_a_file_for_ever(home, monkeypatch, caplog):
    monkeypatch.delenv("GATEWAY_SETTLE_SECONDS", raising=False)
    gateway = Gateway(load_settings(home))
    try:
        path = gateway.settings.mailbox_root / "hospital" / "inbox" / "future.csv"
        path.write_bytes(hospital_births_file(7, 3))
        ahead = time.time() + 86_400
        os.utime(path, (ahead, ahead))
        now = time.time()
        assert gateway.ready_files(now)[0] == []
        assert "in the future" in caplog.text and "future.csv" not in caplog.text  # the name is masked
        [found], _ = gateway.ready_files(now + 2.5)
        assert found.name == "future.csv"
    finally:
        gateway.close()


# -- changed after it was taken ---------------------------------------------------------------


def test_a_file_changed_after_it_was_receipted_becomes_a_new_exchange_that_supersedes_it(home, monkeypatch):
    """The hard case of a slow upload: a pause that ended exactly on a line end."""
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0.5")  # the default's rules, faster
    monkeypatch.setenv("GATEWAY_ARRIVAL_WAIT_SECONDS", "30")
    gateway = Gateway(load_settings(home))
    settings = gateway.settings
    try:
        whole = hospital_births_file(8, 40)
        first_part = whole[: whole.index(b"\r\n", len(whole) // 2) + 2]  # a pause that ended on a line end
        path = settings.mailbox_root / "hospital" / "inbox" / "births.csv"
        path.write_bytes(first_part)
        assert gateway.ready_files()[0] == []
        time.sleep(0.6)
        [found], _ = gateway.ready_files()  # complete-looking: taken after the short settle
        first = gateway.process_safely(found)
        assert first is not None and first.status == "processed"
        # Receipted, but left in the inbox: only the short settle vouches for it.
        assert listing(settings, "hospital", "inbox") == ["births.csv"]
        assert listing(settings, "hospital", "processed") == []
        assert gateway.run_once() == []  # receipted: nothing to wait for, nothing taken again

        with open(path, "ab") as more:  # the client goes on writing
            more.write(whole[len(first_part) :])
        [second] = gateway.run_once()
        assert second.status == "processed" and second.exchange_id != first.exchange_id
        assert (second.duplicates, second.accepted) == (first.accepted, 40 - first.accepted)

        first_receipt = receipt(settings, "hospital", "births.csv")
        second_receipt = receipt(settings, "hospital", f"births.csv.exchange-{second.exchange_id}")
        assert second_receipt["supersedes"] == first.exchange_id and "supersedes" not in first_receipt
        assert query(settings, "SELECT left_changed, supersedes FROM exchange ORDER BY id") == [(1, None), (0, first.exchange_id)]
        # Every row stored once, and the first exchange's archive is the bytes its receipt signs.
        assert query(settings, "SELECT count(*), count(DISTINCT business_key), max(version) FROM record") == [(40, 40, 1)]
        processed = settings.mailbox_root / "hospital" / "processed"
        assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in processed.iterdir()] == [first_receipt["file_sha256"]]
        assert hashlib.sha256(first_part).hexdigest() == first_receipt["file_sha256"]
        # The second stays in the inbox until quiet, then moves: archives equal their receipts.
        gateway.arrival.wait_seconds = 0.5
        time.sleep(0.6)
        assert gateway.run_once() != []
        assert listing(settings, "hospital", "inbox") == []
        archived = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in processed.iterdir())
        assert archived == sorted([first_receipt["file_sha256"], second_receipt["file_sha256"]])
        assert query(settings, "SELECT count(*) FROM receipt") == [(2,)]
        run_gateway(home, "ledger", "verify")
    finally:
        gateway.close()


def test_a_file_rewritten_between_staging_and_archiving_is_archived_as_staged(gateway, settings, monkeypatch):
    """The last guard: the inbox file is hashed again before it is moved."""
    data = hospital_births_file(9, 5)
    path = drop(settings, "hospital", "births.csv", data)
    transport = gateway.transport_for("hospital")
    original = transport.digest

    def rewritten_first(found):
        with open(path, "ab") as more:
            more.write(hospital_births_file(10, 2).split(b"\r\n", 1)[1])
        transport.digest = original  # type: ignore[method-assign]
        return original(found)

    transport.digest = rewritten_first  # type: ignore[method-assign]
    [outcome] = gateway.run_once()
    assert outcome.status == "processed"
    assert (settings.mailbox_root / "hospital" / "processed" / "births.csv").read_bytes() == data
    assert listing(settings, "hospital", "inbox") == ["births.csv"]  # its new content: a new exchange
    [second] = gateway.run_once()
    assert (second.duplicates, second.accepted) == (5, 2)
    assert receipt(settings, "hospital", f"births.csv.exchange-{second.exchange_id}")["supersedes"] == outcome.exchange_id


# -- notes for a file that waits ----------------------------------------------------------------


def test_a_drop_waiting_for_its_signature_gets_one_note_removed_when_processed(gateway, settings):
    from gpg_helpers import DepartmentKeyring

    from gateway.receipts.keys import DepartmentKeys

    ring = DepartmentKeyring()
    try:
        key = ring.new_key("Hospital Exchange")
        DepartmentKeys(settings.keys_dir).import_key(ring.export(key), "hospital")
        data = hospital_births_file(11, 3)
        drop(settings, "hospital", "signed.csv", data)
        assert gateway.run_once() == []
        note = settings.mailbox_root / "hospital" / "outbox" / "signed.csv.pending.txt"
        text = note.read_bytes()
        assert text.startswith(codecs.BOM_UTF8)
        body = text.decode("utf-8-sig")
        assert body.index("数字签名") < body.index("detached signature")  # Chinese first
        note.write_bytes(text + b"seen")  # written once: a later pass leaves it as it is
        assert gateway.run_once() == []
        assert note.read_bytes().endswith(b"seen")
        drop(settings, "hospital", "signed.csv.asc", ring.sign(data, key))
        [outcome] = gateway.run_once()
        assert outcome.status == "processed"
        assert "signed.csv.pending.txt" not in listing(settings, "hospital", "outbox")
    finally:
        ring.close()


# -- names and bytes no one expected: one outcome each, the good file beside processed --------


def test_a_gbk_file_name_is_received_under_its_readable_name(gateway, settings, caplog):
    inbox = settings.mailbox_root / "hospital" / "inbox"
    gbk = "出生登记.csv".encode("gbk")
    with open(os.path.join(os.fsencode(inbox), gbk), "wb") as handle:
        handle.write(hospital_births_file(12, 3))
    drop(settings, "hospital", "good.csv", hospital_births_file(13, 3))
    outcomes = {o.file_name: o for o in gateway.run_once()}
    assert outcomes["good.csv"].status == "processed"
    assert outcomes["出生登记.csv"].status == "processed" and outcomes["出生登记.csv"].accepted == 3
    assert listing(settings, "hospital", "inbox") == []
    assert "出生登记.csv" in listing(settings, "hospital", "processed")
    assert receipt(settings, "hospital", "出生登记.csv")["file_name"] == "出生登记.csv"
    [line] = [r.getMessage() for r in caplog.records if "not UTF-8" in r.getMessage()]
    assert "出生登记" not in line  # masked


def test_a_240_byte_name_gets_its_receipt_under_a_shortened_name(gateway, settings):
    name = "出生" * 38 + "-" * 8 + ".csv"  # 240 bytes of UTF-8
    assert len(name.encode()) == 240
    drop(settings, "hospital", name, hospital_births_file(14, 3))
    drop(settings, "hospital", "good.csv", hospital_births_file(15, 3))
    outcomes = {o.file_name: o for o in gateway.run_once()}
    assert outcomes["good.csv"].status == "processed"
    long = outcomes[name]
    assert long.status == "processed" and long.accepted == 3
    stem = fit(name)
    assert stem != name and len((stem + ".receipt.json.asc.part").encode()) <= NAME_MAX
    assert receipt(settings, "hospital", stem)["file_name"] == name  # the receipt keeps the name as sent
    assert listing(settings, "hospital", "inbox") == []


def test_a_lone_surrogate_in_a_json_page_is_refused_on_the_first_pass(gateway, settings):
    text = json.dumps(json.loads(specimen("housing_occupancy_page1.json")), ensure_ascii=True)
    owner = json.dumps("李强", ensure_ascii=True)
    assert owner in text
    broken = text.replace(owner, '"\\ud800\\u5f3a"')  # a lone high surrogate in a stored name
    assert "\\ud800" in broken
    drop(settings, "housing", "page.json", broken.encode())
    drop(settings, "housing", "good.json", specimen("housing_occupancy_page1.json"))
    outcomes = {o.file_name: o for o in gateway.run_once()}
    assert outcomes["good.json"].status == "processed"
    assert outcomes["page.json"].status == "rejected" and outcomes["page.json"].reason
    assert listing(settings, "housing", "inbox") == []


def _encrypted_xlsx() -> bytes:
    """A workbook whose entries carry the zip encryption flag (as a password-protected
    zip does): every reader must refuse it, none may crash on it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/workbook.xml", "<workbook/>")
    data = bytearray(buffer.getvalue())
    at = 0
    while (at := data.find(b"PK\x03\x04", at)) >= 0:
        data[at + 6] |= 1
        at += 4
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:
        data[at + 8] |= 1
        at += 4
    return bytes(data)


def test_a_zip_encrypted_xlsx_is_refused_on_the_first_pass(gateway, settings):
    drop(settings, "school", "school_enrolments_202609.xlsx", _encrypted_xlsx())
    drop(settings, "school", "school_enrolments_202609.csv", specimen("school_enrolments_202609.csv"))
    outcomes = {o.file_name: o for o in gateway.run_once()}
    assert outcomes["school_enrolments_202609.csv"].status in ("processed", "rejected")
    refused = outcomes["school_enrolments_202609.xlsx"]
    assert refused.status == "rejected" and refused.reason
    assert query(settings, "SELECT attempts FROM exchange WHERE file_name LIKE '%.xlsx'") == [(1,)]
    assert listing(settings, "school", "inbox") == []


@pytest.mark.backend_independent
def test_masked_file_names_in_logs():
    assert shown("陈小明的出生证明.csv").endswith(".csv") and "小明" not in shown("陈小明的出生证明.csv")
    assert shown("陈小明的出生证明.csv") != shown("李小红的出生证明.csv")


# -- each step of a pass failing in turn -----------------------------------------------------------

STEPS = ["staging", "parsing", "storing", "signing", "outbox", "archiving"]


@pytest.mark.parametrize("step", STEPS)
def test_a_step_failing_for_one_file_leaves_the_others_processed(gateway, settings, monkeypatch, step, caplog):
    files = {name: hospital_births_file(20 + n, 3) for n, name in enumerate(["a.csv", "b.csv", "c.csv"])}
    for name, data in files.items():
        drop(settings, "hospital", name, data)
    failing = {"armed": True}

    def only_b(name: str) -> bool:
        return failing["armed"] and name == "b.csv"

    class Injected(RuntimeError):
        pass

    transport = gateway.transport_for("hospital")
    if step == "staging":
        original_stage = transport.stage
        monkeypatch.setattr(transport, "stage", lambda found, target: (_ for _ in ()).throw(OSError(5, "injected I/O error")) if only_b(found.name) else original_stage(found, target))
    elif step == "parsing":
        from gateway.exchange.batches import RowPreparer

        original_batches = RowPreparer.batches

        def batches(self, source, size):
            if only_b(source.name):
                raise Injected("a library failing on these bytes")
            return original_batches(self, source, size)

        monkeypatch.setattr(RowPreparer, "batches", batches)
    elif step == "storing":
        original_flush = Gateway._flush

        def flush(self, session, exchange, *args, **kwargs):
            if only_b(exchange.file_name):
                raise Injected("storing failed")
            return original_flush(self, session, exchange, *args, **kwargs)

        monkeypatch.setattr(Gateway, "_flush", flush)
    elif step == "signing":
        from gateway.errors import SigningError

        original_seal = Gateway._seal

        def seal(self, session, exchange, *args, **kwargs):
            if only_b(exchange.file_name):
                raise SigningError("injected: the signing key is not available")
            return original_seal(self, session, exchange, *args, **kwargs)

        monkeypatch.setattr(Gateway, "_seal", seal)
    elif step == "outbox":
        original_put = transport.put
        monkeypatch.setattr(transport, "put", lambda d, f, name, source: (_ for _ in ()).throw(OSError(28, "injected: no space left")) if only_b(name.split(".receipt")[0].split(".errors")[0]) and f == "outbox" else original_put(d, f, name, source))
    elif step == "archiving":
        original_archive = transport.archive
        monkeypatch.setattr(transport, "archive", lambda found, folder, name: (_ for _ in ()).throw(OSError(13, "injected: permission denied")) if only_b(found.name) else original_archive(found, folder, name))

    outcomes = {o.file_name: o for o in gateway.run_once()}
    assert outcomes["a.csv"].status == outcomes["c.csv"].status == "processed"
    assert "a.csv" in listing(settings, "hospital", "processed") and "c.csv" in listing(settings, "hospital", "processed")
    if step in ("parsing", "storing"):
        # The file's own failure: refused now, with a reason, and no row of it stored.
        assert outcomes["b.csv"].status == "rejected" and "Injected" in (outcomes["b.csv"].reason or "")
        assert "b.csv" in listing(settings, "hospital", "rejected")
        assert query(settings, "SELECT count(*) FROM record r JOIN exchange e ON e.id = r.exchange_id WHERE e.file_name = 'b.csv'") == [(0,)]
        assert "a library failing" not in caplog.text and "storing failed" not in caplog.text  # a library's text is never shown
    else:
        # The gateway's failure, not the file's: held in the inbox with a logged reason,
        # and completed once the fault is gone, with one receipt.
        assert "b.csv" not in outcomes
        assert "b.csv" in listing(settings, "hospital", "inbox")
        assert shown("b.csv") in caplog.text and "left in the inbox" in caplog.text  # the name masked (issue 14)
        failing["armed"] = False
        [later] = gateway.run_once()
        assert (later.file_name, later.status, later.accepted) == ("b.csv", "processed", 3)
        assert "b.csv" in listing(settings, "hospital", "processed")
    assert query(settings, "SELECT count(*) FROM receipt r JOIN exchange e ON e.id = r.exchange_id WHERE e.file_name = 'b.csv'") == [(1,)]
    assert query(settings, "SELECT count(*), count(DISTINCT business_key) FROM record") in ([(6, 6)], [(9, 9)])


def test_a_last_line_without_its_line_end_is_never_accepted_as_a_row(gateway, settings):
    """A cut row can still validate (here every cell is there, only its line end is
    missing: the cut could as well have fallen in the last cell): it is refused, saying why."""
    whole = hospital_births_file(40, 4)
    cut = whole[:-2]
    drop(settings, "hospital", "cut.csv", cut)
    [outcome] = gateway.run_once()
    assert (outcome.status, outcome.accepted, outcome.rejected) == ("processed", 3, 1)
    report = (settings.mailbox_root / "hospital" / "outbox" / "cut.csv.errors.csv").read_text("utf-8-sig")
    assert "line_end_missing" in report and "没有换行符" in report
    assert query(settings, "SELECT row_number, code FROM rowerror WHERE level = 'error'") == [(5, "line_end_missing")]


def test_a_receipted_file_removed_before_it_was_archived_is_archived_from_its_kept_bytes(home, monkeypatch):
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0.5")
    monkeypatch.setenv("GATEWAY_ARRIVAL_WAIT_SECONDS", "30")
    gateway = Gateway(load_settings(home))
    settings = gateway.settings
    try:
        data = hospital_births_file(41, 3)
        path = settings.mailbox_root / "hospital" / "inbox" / "births.csv"
        path.write_bytes(data)
        [outcome] = gateway.run_once()
        assert listing(settings, "hospital", "inbox") == ["births.csv"]  # receipted, not yet quiet
        path.unlink()  # the clerk removes it
        assert gateway.run_once() == []
        assert (settings.mailbox_root / "hospital" / "processed" / "births.csv").read_bytes() == data
        assert query(settings, "SELECT archived_path, left_changed FROM exchange") == [("hospital/processed/births.csv", 0)]
        assert not list(settings.staging_dir.glob("held-*"))
        assert outcome.status == "processed"
    finally:
        gateway.close()
