"""The mailbox rules (DESIGN.md, "The mailbox"): only complete files are taken, the inbox
decides the department, and nothing in processed/ or rejected/ is ever overwritten."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import conftest
import pytest

from conftest import drop, specimen
from gateway.config import load_settings
from gateway.exchange.lifecycle import FILE_REASONS, Gateway

SPECIMEN = "hospital_births_202610.csv"
TEXT = specimen(SPECIMEN).decode("gb18030")


def births(tag: str) -> bytes:
    """The specimen (3 good rows, 3 bad) under certificate numbers of its own."""
    return TEXT.replace("Q44078126", f"Q4407{tag}").encode("gb18030")


def query(settings, sql: str, *args) -> list[tuple]:
    return conftest.query(settings, sql, *args)


def listing(settings, department: str, folder: str) -> list[str]:
    return sorted(os.listdir(settings.mailbox_root / department / folder))


def assert_ledger_gapless(settings) -> None:
    chain = query(settings, "SELECT sequence, sha256, previous_sha256 FROM receipt ORDER BY sequence")
    assert [row[0] for row in chain] == list(range(1, len(chain) + 1))
    previous = "0" * 64
    for _, sha, prev in chain:
        assert prev == previous
        previous = sha


@pytest.fixture
def settling(home, monkeypatch) -> Iterator[Gateway]:
    """A gateway whose files must sit unchanged for one second before they are taken."""
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "1")
    settings = load_settings(home)
    assert settings.settle_seconds == 1
    gw = Gateway(settings)
    yield gw
    gw.close()


# -- only complete files are taken --------------------------------------------------


@pytest.mark.parametrize(
    "name", ["births.csv.part", "births.csv.filepart", "births.csv.tmp", "BIRTHS.CSV.PART", ".births.csv", "~$births.csv"]
)
def test_temporary_names_are_never_taken(gateway, settings, name):
    inbox = settings.mailbox_root / "hospital" / "inbox"
    (inbox / name).write_bytes(births("6001"))
    past = time.time() - 3600
    os.utime(inbox / name, (past, past))
    assert gateway.ready_files() == ([], 0.0)
    assert gateway.run_once() == []
    assert listing(settings, "hospital", "inbox") == [name]
    assert listing(settings, "hospital", "processed") == listing(settings, "hospital", "rejected") == []
    assert listing(settings, "hospital", "outbox") == []
    assert query(settings, "SELECT count(*) FROM exchange") == [(0,)]

    # Once the upload is renamed to its real name, it is taken.
    os.rename(inbox / name, inbox / "births.csv")
    [outcome] = gateway.run_once()
    assert (outcome.file_name, outcome.status, outcome.accepted) == ("births.csv", "processed", 3)


def test_a_fresh_file_is_not_ready_but_run_once_waits_for_it(settling):
    settings = settling.settings
    path = drop(settings, "hospital", "births.csv", births("6002"), age=0)
    mtime = path.stat().st_mtime

    ready, wait = settling.ready_files()
    assert ready == []
    assert 0 < wait <= 1.0

    taken_at: list[float] = []
    process = settling.process_safely

    def timed(found):
        taken_at.append(time.time())
        return process(found)

    settling.process_safely = timed  # type: ignore[method-assign]
    started = time.monotonic()
    [outcome] = settling.run_once()
    assert (outcome.file_name, outcome.status, outcome.accepted) == ("births.csv", "processed", 3)
    assert len(taken_at) == 1 and taken_at[0] - mtime >= 1.0  # only once it had settled
    assert time.monotonic() - started < 10
    # Receipted at once; taken after the short settle alone, it stays in the inbox (a
    # client may only be pausing) until unchanged for arrival_wait_seconds.
    assert "births.csv.receipt.json" in listing(settings, "hospital", "outbox")
    assert listing(settings, "hospital", "inbox") == ["births.csv"]
    assert listing(settings, "hospital", "processed") == []
    assert settling.run_once() == []  # nothing to wait for: it is receipted
    settling.arrival.wait_seconds = 2.0
    time.sleep(2.1)
    [again] = settling.run_once()
    assert (again.exchange_id, again.status) == (outcome.exchange_id, "processed")
    assert listing(settings, "hospital", "inbox") == []
    assert listing(settings, "hospital", "processed") == ["births.csv"]
    assert query(settings, "SELECT count(*) FROM receipt") == [(1,)]


def test_run_once_without_waiting_leaves_a_fresh_file_for_the_next_pass(settling):
    settings = settling.settings
    drop(settings, "hospital", "births.csv", births("6003"), age=0)
    assert settling.run_once(wait_for_fresh=False) == []
    assert listing(settings, "hospital", "inbox") == ["births.csv"]
    assert query(settings, "SELECT count(*) FROM exchange") == [(0,)]
    time.sleep(1.1)
    [outcome] = settling.run_once(wait_for_fresh=False)
    assert outcome.status == "processed"


def test_a_file_whose_size_changes_between_polls_is_not_taken_on_that_poll(settling):
    settings = settling.settings
    path = drop(settings, "hospital", "births.csv", births("6004")[:300], age=60)
    old = path.stat()
    assert settling.ready_files() == ([], 1.0)  # never taken on first sight, however old its mtime
    now = time.time() + 1.1
    [first], _ = settling.ready_files(now)  # unchanged a settle later: ready
    assert first.size == 300

    # The department's client goes on writing, keeping the old mtime (a copy tool with -p):
    # only the size tells that the file is still growing.
    path.write_bytes(births("6004"))
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert path.stat().st_mtime == old.st_mtime
    ready, wait = settling.ready_files(now + 1.1)
    assert ready == [] and wait == 1.0

    [again], _ = settling.ready_files(now + 2.2)  # unchanged for a settle since: ready now
    assert again.size == len(births("6004"))
    [outcome] = settling.run_once()
    assert (outcome.status, outcome.accepted, outcome.rejected) == ("processed", 3, 3)
    assert (settings.mailbox_root / "hospital" / "processed" / "births.csv").read_bytes() == births("6004")


def test_a_file_whose_mtime_changes_between_polls_is_not_taken_on_that_poll(settling):
    settings = settling.settings
    path = drop(settings, "hospital", "births.csv", births("6005"), age=60)
    now = time.time()
    assert settling.ready_files(now)[0] == []
    assert len(settling.ready_files(now + 1.1)[0]) == 1
    past = time.time() - 30
    os.utime(path, (past, past))  # rewritten in place: same size, new (still old enough) mtime
    assert settling.ready_files(now + 2.2)[0] == []
    assert len(settling.ready_files(now + 3.3)[0]) == 1


def test_a_file_changed_while_it_is_staged_is_left_for_a_later_pass(gateway, settings):
    path = drop(settings, "hospital", "births.csv", births("6006"))
    [found], _ = gateway.ready_files()
    path.write_bytes(births("6007"))  # rewritten after it was listed
    assert gateway.process(found) is None
    assert listing(settings, "hospital", "inbox") == ["births.csv"]
    assert query(settings, "SELECT count(*) FROM record") == [(0,)]
    assert query(settings, "SELECT count(*) FROM receipt") == [(0,)]
    assert os.listdir(settings.staging_dir) == []
    assert gateway.run_once() == []  # changed since the last poll: not on this one
    [outcome] = gateway.run_once()
    assert (outcome.status, outcome.accepted) == ("processed", 3)
    assert query(settings, "SELECT count(*) FROM record WHERE substr(business_key, 10) LIKE 'Q44076007%'") == [(3,)]
    assert query(settings, "SELECT count(*) FROM exchange WHERE status = 'processed'") == [(1,)]
    assert_ledger_gapless(settings)


# -- the inbox decides the department -----------------------------------------------


def _department_without_adapter(gateway: Gateway) -> str:
    for department in ("police", "population-office"):
        if department in gateway.settings.departments and not gateway.plugins.adapters_for(department):
            return department
    pytest.fail("every candidate department has an adapter now; pick another one here")


def test_the_inbox_decides_the_department_not_the_file_name(gateway, settings):
    department = _department_without_adapter(gateway)
    data = specimen(SPECIMEN)  # named hospital_births_..., and hospital content through and through
    drop(settings, department, SPECIMEN, data)
    [outcome] = gateway.run_once()
    assert (outcome.department, outcome.status) == (department, "rejected")
    assert outcome.reason and outcome.reason.startswith(FILE_REASONS["no_adapter"][1])
    assert query(settings, "SELECT department, status, reason_code, adapter FROM exchange") == [
        (department, "rejected", "no_adapter", None)
    ]
    assert query(settings, "SELECT count(*) FROM record") == [(0,)]
    assert listing(settings, department, "inbox") == []
    assert listing(settings, department, "rejected") == [SPECIMEN, f"{SPECIMEN}.errors.csv"]
    assert (settings.mailbox_root / department / "rejected" / SPECIMEN).read_bytes() == data
    assert listing(settings, "hospital", "outbox") == listing(settings, "hospital", "processed") == []
    receipt = json.loads((settings.mailbox_root / department / "outbox" / f"{SPECIMEN}.receipt.json").read_bytes())
    assert (receipt["department"], receipt["status"]) == (department, "rejected")
    report = (settings.mailbox_root / department / "outbox" / f"{SPECIMEN}.errors.csv").read_text(encoding="utf-8-sig")
    assert FILE_REASONS["no_adapter"][0] in report and "no_adapter" in report

    # The same bytes in the hospital's inbox are hospital records.
    drop(settings, "hospital", SPECIMEN, data)
    [outcome] = gateway.run_once()
    assert (outcome.department, outcome.status, outcome.accepted) == ("hospital", "processed", 3)
    assert_ledger_gapless(settings)


def test_a_fifo_in_the_inbox_is_rejected_without_being_opened(gateway, settings):
    fifo = settings.mailbox_root / "hospital" / "inbox" / "pipe.csv"
    os.mkfifo(fifo)  # opening it for reading would block the gateway forever
    started = time.monotonic()
    [outcome] = gateway.run_once()
    assert time.monotonic() - started < 30
    assert (outcome.status, outcome.reason) == ("rejected", FILE_REASONS["special"][1])
    assert listing(settings, "hospital", "rejected") == ["pipe.csv", "pipe.csv.errors.csv"]
    assert listing(settings, "hospital", "inbox") == []


def test_a_folder_in_the_inbox_is_refused_with_a_reason_beside_a_good_file(gateway, settings):
    folder = settings.mailbox_root / "hospital" / "inbox" / "archive 2025"
    folder.mkdir()
    (folder / "old.csv").write_bytes(births("6009"))
    drop(settings, "hospital", "births.csv", births("6008"))
    outcomes = {o.file_name: o for o in gateway.run_once()}
    assert outcomes["births.csv"].status == "processed"
    refused = outcomes["archive 2025"]
    assert refused.status == "rejected" and "folder" in (refused.reason or "")
    assert listing(settings, "hospital", "inbox") == []
    # Nothing in it is lost: the folder moved to rejected/ as it was, with its receipt.
    assert (settings.mailbox_root / "hospital" / "rejected" / "archive 2025" / "old.csv").read_bytes() == births("6009")
    assert "archive 2025.receipt.json" in listing(settings, "hospital", "outbox")


# -- nothing is overwritten ----------------------------------------------------------


def test_the_same_name_twice_with_different_content_keeps_both_in_processed(gateway, settings):
    first, second = births("6010"), births("6011")
    drop(settings, "hospital", "births.csv", first)
    [one] = gateway.run_once()
    drop(settings, "hospital", "births.csv", second)
    [two] = gateway.run_once()
    assert (one.status, one.accepted, two.status, two.accepted) == ("processed", 3, "processed", 3)

    processed = settings.mailbox_root / "hospital" / "processed"
    renamed = f"births.exchange-{two.exchange_id}.csv"
    assert listing(settings, "hospital", "processed") == sorted(["births.csv", renamed])
    assert (processed / "births.csv").read_bytes() == first
    assert (processed / renamed).read_bytes() == second
    assert query(settings, "SELECT id, archived_path FROM exchange ORDER BY id") == [
        (one.exchange_id, "hospital/processed/births.csv"),
        (two.exchange_id, f"hospital/processed/{renamed}"),
    ]
    # Neither receipt nor report overwrote the other in the outbox.
    stem = f"births.csv.exchange-{two.exchange_id}"
    assert listing(settings, "hospital", "outbox") == sorted(
        [f"{name}{ext}" for name in ("births.csv", stem) for ext in (".errors.csv", ".receipt.json", ".receipt.json.asc")]
    )
    outbox = settings.mailbox_root / "hospital" / "outbox"
    assert json.loads((outbox / "births.csv.receipt.json").read_bytes())["exchange_id"] == one.exchange_id
    assert json.loads((outbox / f"{stem}.receipt.json").read_bytes())["exchange_id"] == two.exchange_id
    assert query(settings, "SELECT count(*) FROM record") == [(6,)]
    assert_ledger_gapless(settings)


def test_the_same_bad_name_twice_keeps_both_in_rejected_each_with_its_report(gateway, settings):
    drop(settings, "hospital", "bad.csv", b"")
    [one] = gateway.run_once()
    drop(settings, "hospital", "bad.csv", b"Jos\xe9\xff\r\n")
    [two] = gateway.run_once()
    assert one.reason and one.reason.startswith(FILE_REASONS["empty"][1])
    assert two.reason and two.reason.startswith(FILE_REASONS["encoding"][1])
    renamed = f"bad.exchange-{two.exchange_id}.csv"
    assert listing(settings, "hospital", "rejected") == sorted(
        ["bad.csv", "bad.csv.errors.csv", renamed, f"{renamed}.errors.csv"]
    )
    rejected = settings.mailbox_root / "hospital" / "rejected"
    assert (rejected / "bad.csv").read_bytes() == b""
    assert (rejected / renamed).read_bytes() == b"Jos\xe9\xff\r\n"
    assert "empty" in (rejected / "bad.csv.errors.csv").read_text(encoding="utf-8-sig")
    assert "encoding" in (rejected / f"{renamed}.errors.csv").read_text(encoding="utf-8-sig")
    assert_ledger_gapless(settings)
