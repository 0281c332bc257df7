"""National floating-population platform (`JHXX` inbox): the conformance kit, the specimen
through the real pipeline, hostile XML (entities, DTDs), malformed documents, bad
messages, the hardened XML helper, and the contracts' due-date and feedback rules."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator

import conftest
import pytest
from pydantic import ValidationError

from adapters.national_platform import NationalPlatformAdapter
from conftest import SPECIMENS, drop, error_report, specimen
from contracts.platform import (
    AssistCheckFeedback,
    AssistCheckRequest,
    ContentCategory,
    PlatformNotice,
    Urgency,
)
from gateway.errors import FileRejected
from gateway.testing import adapter_test_class
from gateway.readers.xml import iter_elements, root_tag

SPECIMEN = "national_platform_inbound_20261102.xml"
TEXT = specimen(SPECIMEN).decode("utf-8")
ROOT_OPEN = TEXT[: TEXT.index(">", TEXT.index("<JHXX")) + 1]
MESSAGES = TEXT[len(ROOT_OPEN) : TEXT.index("</JHXX>")]
XCXX_1 = MESSAGES[MESSAGES.index("<XCXX") : MESSAGES.index("</XCXX>") + len("</XCXX>")]
TBXX_1 = MESSAGES[MESSAGES.index("<TBXX") : MESSAGES.index("</TBXX>") + len("</TBXX>")]


def big_document(sample: bytes, rows: int) -> Iterator[bytes]:
    """The specimen's messages repeated to `rows` messages, for the kit's streaming test."""
    text = sample.decode("utf-8")
    opening = text[: text.index(">", text.index("<JHXX")) + 1]
    body = text[len(opening) : text.index("</JHXX>")].encode("utf-8")
    yield opening.encode("utf-8")
    for _ in range(rows // 3 + 1):
        yield body
    yield b"</JHXX>\n"


TestNationalPlatform = adapter_test_class(
    NationalPlatformAdapter,
    samples=[SPECIMENS / SPECIMEN],
    expected={SPECIMEN: (3, 0)},
    big_file=big_document,
)


# -- helpers ------------------------------------------------------------------------


def query(settings, sql: str, *args) -> list[tuple]:
    return conftest.query(settings, sql, *args)


def report(settings, name: str) -> dict[int, list[tuple[str, str, str]]]:
    """{message position: [(column, masked value, code)]} from the outbox's errors.csv."""
    return error_report(settings, "national-platform", name, (1, 3, 6))


def document(*messages: str, opening: str = ROOT_OPEN, prolog: str = '<?xml version="1.0" encoding="UTF-8"?>\n') -> bytes:
    body = "\n".join(messages)
    return f"{prolog}{opening[opening.index('<JHXX'):]}\n{body}\n</JHXX>\n".encode("utf-8")


def run(gateway, settings, name: str, data: bytes, department: str = "national-platform"):
    drop(settings, department, name, data)
    [outcome] = gateway.run_once()
    return outcome


# -- the specimen through the pipeline ---------------------------------------------


def test_specimen_gives_two_requests_and_a_notice_with_due_dates_and_batch(gateway, settings):
    outcome = run(gateway, settings, SPECIMEN, specimen(SPECIMEN))
    assert (outcome.status, outcome.accepted, outcome.rejected, outcome.duplicates) == ("processed", 3, 0, 0)
    stored = query(settings, "SELECT contract, business_key, row_number, payload FROM record ORDER BY leaf_index")
    assert [(c, k, n) for c, k, n, _ in stored] == [
        ("AssistCheckRequest", "XC-510722-20261102-0001", 1),
        ("AssistCheckRequest", "XC-510722-20261102-0002", 2),
        ("PlatformNotice", "TB-510722-20261102-0001", 3),
    ]
    urgent, priority, notice = (json.loads(payload) for *_, payload in stored)
    assert (urgent["urgency"], urgent["due_date"]) == ("1", "2026-11-17")  # 紧急: 15 days
    assert (priority["urgency"], priority["due_date"]) == ("2", "2026-12-02")  # 急: 30 days
    assert urgent["categories"] == ["01", "03", "07"] and urgent["direction"] == "HJD_TO_XJZD"
    assert urgent["subject"]["current_residence"] == "广东省台山市台城街道"
    assert (notice["category"], notice["feedback_required"], notice["due_date"]) == ("09", True, "2026-12-02")
    assert notice["notice_text"].startswith("生育信息通报")
    assert urgent["batch"] == {
        "version": "2.0",
        "sender": "510722",
        "receiver": "440781",
    }


def test_a_message_repeated_in_a_document_is_a_duplicate(gateway, settings):
    outcome = run(gateway, settings, "twice.xml", document(XCXX_1, TBXX_1, XCXX_1))
    assert (outcome.accepted, outcome.duplicates, outcome.rejected) == (2, 1, 0)


def test_a_message_redelivered_in_a_later_document_is_a_duplicate(gateway, settings):
    # The document's send time and cursor are not part of the record: the same message in
    # a later document is the same record.
    run(gateway, settings, "first.xml", document(XCXX_1))
    later = ROOT_OPEN.replace("2026-11-02T10:00:00", "2026-11-03T10:00:00").replace("-0003", "-0007")
    outcome = run(gateway, settings, "later.xml", document(XCXX_1, opening=later))
    assert (outcome.accepted, outcome.corrected, outcome.duplicates) == (0, 0, 1)


def test_subject_values_as_child_elements_read_the_same(gateway, settings):
    children = XCXX_1.replace(
        '<DX XM="杨春梅" GMSFHM="510722199402122287" CSRQ="1994-02-12" XJZD="广东省台山市台城街道"/>',
        "<DX><XM>杨春梅</XM><GMSFHM>510722199402122287</GMSFHM><CSRQ>1994-02-12</CSRQ>"
        "<XJZD>广东省台山市台城街道</XJZD></DX>",
    )
    assert children != XCXX_1
    run(gateway, settings, "attributes.xml", document(XCXX_1))
    outcome = run(gateway, settings, "children.xml", document(children))
    assert (outcome.accepted, outcome.duplicates) == (0, 1)


# -- bad messages -----------------------------------------------------------------------


def test_bad_messages_are_row_errors_naming_the_attribute(gateway, settings):
    messages = [
        XCXX_1.replace('JJCD="1"', 'JJCD="3"'),
        XCXX_1.replace('LB="01,03,07"', 'LB="01,12"'),
        XCXX_1.replace('GMSFHM="510722199402122287"', 'GMSFHM="510722199402122288"'),
        XCXX_1.replace('CSRQ="1994-02-12"', 'CSRQ="1994-02-13"'),
        XCXX_1.replace('FQSJ="2026-11-02"', 'FQSJ="2026-02-30"'),
        TBXX_1.replace('XYFK="1"', 'XYFK="2"'),
        '<QTXX XXBH="QT-1"/>',
        XCXX_1.replace("</XCXX>", '<DX XM="x" GMSFHM="510722199402122287"/></XCXX>'),
        TBXX_1.replace('<DX XM="杨春梅" GMSFHM="510722199402122287" CSRQ="1994-02-12"/>', ""),
        XCXX_1.replace('LB="01,03,07"', 'LB=""'),
    ]
    outcome = run(gateway, settings, "bad.xml", document(*messages))
    assert (outcome.accepted, outcome.rejected) == (0, len(messages))
    found = {n: [(column, code) for column, _, code in errors] for n, errors in report(settings, "bad.xml").items()}
    assert found == {
        1: [("JJCD", "urgency_code")],
        2: [("XCNR/LB", "category_code")],
        3: [("DX/GMSFHM", "id_check_char")],
        4: [("DX/GMSFHM", "id_birth_mismatch")],
        5: [("FQSJ", "date_impossible")],
        6: [("XYFK", "flag_code")],
        7: [("QTXX", "message_unknown")],
        8: [("DX", "element_repeated")],
        9: [("DX", "missing")],
        10: [("XCNR/LB", "missing")],
    }
    shown = (settings.mailbox_root / "national-platform" / "outbox" / "bad.xml.errors.csv").read_text(encoding="utf-8-sig")
    assert "510722***********8" in shown and "510722199402122288" not in shown


# -- hostile and broken documents -------------------------------------------------------


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE JHXX [<!ENTITY xxe SYSTEM "file://{secret}">]>',
        '<!DOCTYPE JHXX [<!ENTITY % remote SYSTEM "file://{secret}"> %remote;]>',
        '<!DOCTYPE JHXX SYSTEM "file://{secret}">',
        '<!DOCTYPE JHXX [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY xxe "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>',
    ],
    ids=["external_entity", "parameter_entity", "external_dtd", "entity_expansion"],
)
def test_a_doctype_is_refused_and_the_file_it_points_at_never_read(gateway, settings, tmp_path, doctype):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-PLATFORM-c0ffee", encoding="utf-8")
    hostile = TBXX_1.replace("生育信息通报", "&xxe;生育信息通报")
    prolog = '<?xml version="1.0" encoding="UTF-8"?>\n' + doctype.format(secret=secret) + "\n"
    data = document(XCXX_1, hostile, prolog=prolog)
    outcome = run(gateway, settings, "xxe.xml", data)
    assert outcome.status == "rejected"
    assert query(settings, "SELECT reason_code FROM exchange") == [("xml_unsafe",)]
    assert query(settings, "SELECT count(*) FROM record") == [(0,)]
    leaked = [
        path for path in settings.home.rglob("*")
        if path.is_file() and b"SECRET-PLATFORM" in path.read_bytes()
    ]
    assert leaked == []
    rejected = settings.mailbox_root / "national-platform" / "rejected"
    assert sorted(p.name for p in rejected.iterdir()) == ["xxe.xml", "xxe.xml.errors.csv"]


@pytest.mark.parametrize(
    "data",
    [
        # In UTF-7 "+ADw-" is "<": the DOCTYPE is invisible to anything reading the bytes.
        b'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE JHXX+AD4-+ADw-JHXX/+AD4-',
        b'<?xml version="1.0" encoding="UTF-7"?>+ADw-JHXX BBH="2.0"/+AD4-',
        b'<?xml version="1.0" encoding="ISO-8859-1"?><JHXX/>',
    ],
    ids=["utf7_doctype", "utf7_plain", "latin1"],
)
def test_an_encoding_other_than_utf8_or_gb18030_is_refused(gateway, settings, data):
    outcome = run(gateway, settings, "encoding.xml", data)
    assert outcome.status == "rejected"
    assert query(settings, "SELECT reason_code FROM exchange") == [("xml_encoding",)]


def test_a_gb18030_document_that_says_so_is_read(gateway, settings):
    data = document(XCXX_1, TBXX_1).decode("utf-8").replace('encoding="UTF-8"', 'encoding="GB18030"').encode("gb18030")
    outcome = run(gateway, settings, "gb.xml", data)
    assert (outcome.status, outcome.accepted) == ("processed", 2)
    [(payload,)] = query(settings, "SELECT payload FROM record WHERE contract = 'PlatformNotice'")
    assert json.loads(payload)["subject"]["name"] == "杨春梅"


def test_malformed_xml_is_rejected_with_its_line(gateway, settings):
    data = document(XCXX_1, TBXX_1.replace("</TBNR>", "</TBN>"))
    outcome = run(gateway, settings, "broken.xml", data)
    assert outcome.status == "rejected"
    assert query(settings, "SELECT reason_code FROM exchange") == [("xml_malformed",)]
    line = data.decode().splitlines().index(next(l for l in data.decode().splitlines() if "</TBN>" in l)) + 1
    assert f"line {line}," in outcome.reason
    assert query(settings, "SELECT count(*) FROM record") == [(0,)]


def test_an_invalid_document_header_rejects_the_file(gateway, settings):
    outcome = run(gateway, settings, "header.xml", document(XCXX_1, opening=ROOT_OPEN.replace('FSDW="510722"', 'FSDW="51072"')))
    assert outcome.status == "rejected"
    assert query(settings, "SELECT reason_code FROM exchange") == [("xml_header",)]
    assert "FSDW" in outcome.reason


def test_an_empty_inbox_document_is_an_exchange_with_nothing_in_it(gateway, settings):
    outcome = run(gateway, settings, "empty.xml", document())
    assert (outcome.status, outcome.accepted, outcome.rejected) == ("processed", 0, 0)


def test_another_xml_in_the_platform_inbox_is_refused(gateway, settings):
    outcome = run(gateway, settings, "civil.xml", specimen("civil_affairs_202610.xml"))
    assert outcome.status == "rejected"
    assert query(settings, "SELECT reason_code FROM exchange") == [("no_adapter",)]


def test_a_hospital_file_in_the_platform_inbox_names_the_hospital_adapter(gateway, settings):
    outcome = run(gateway, settings, "births.csv", specimen("hospital_births_202610.csv"))
    assert outcome.status == "rejected" and "hospital-births" in outcome.reason


def test_a_platform_document_in_the_school_inbox_names_the_platform_adapter(gateway, settings):
    outcome = run(gateway, settings, SPECIMEN, specimen(SPECIMEN), department="school")
    assert outcome.status == "rejected" and "national-platform" in outcome.reason


# -- the hardened XML helper (gateway/readers/xml.py) -------------------------------------------


@pytest.mark.backend_independent
def test_iter_elements_yields_wanted_children_and_clears_them():
    data = b"<R a='1'><A n='1'><x/></A><B/><!-- c --><A n='2'/></R>"
    seen = []
    for position, element in iter_elements(io.BytesIO(data), {"A"}, root="R"):
        seen.append((position, element.get("n"), element.getparent().get("a"), len(element)))
    assert seen == [(1, "1", "1", 1), (2, "2", "1", 0)]
    assert root_tag(io.BytesIO(data)) == "R"
    with pytest.raises(FileRejected) as wrong_root:
        list(iter_elements(io.BytesIO(data), {"A"}, root="JHXX"))
    assert wrong_root.value.code == "xml_root"


@pytest.mark.backend_independent
def test_a_document_with_many_children_keeps_memory_flat():
    class Counter(io.RawIOBase):
        """A stream of `<R>` + 300,000 `<A>` + `</R>` produced on the fly."""

        def __init__(self) -> None:
            self.parts = iter([b"<R>", *([b"<A x='" + b"1" * 50 + b"'/>"] * 300_000), b"</R>"])
            self.pending = b""

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            while len(self.pending) < len(buffer):
                part = next(self.parts, None)
                if part is None:
                    break
                self.pending += part
            size = min(len(buffer), len(self.pending))
            buffer[:size], self.pending = self.pending[:size], self.pending[size:]
            return size

    last = None
    for position, element in iter_elements(io.BufferedReader(Counter()), {"A"}):
        last = position
        # Earlier records are gone but the last one, cleared; ahead is only what the
        # parser has read in advance.
        previous = element.getprevious()
        assert previous is None or (not previous.attrib and previous.getprevious() is None)
        assert len(element.getparent()) < 2_000
    assert last == 300_000


# -- the contracts' rules ---------------------------------------------------------------

BATCH = {"version": "2.0", "sender": "510722", "receiver": "440781"}
SUBJECT = {"name": "杨春梅", "id_number": "510722199402122287"}


def request(**changes) -> dict:
    return {
        "message_id": "XC-1",
        "urgency": "1",
        "sent_date": "2026-11-02",
        "direction": "HJD_TO_XJZD",
        "subject": SUBJECT,
        "categories": ["07", "01", "01"],
        "batch": BATCH,
        **changes,
    }


@pytest.mark.parametrize("urgency, due", [("1", "2026-11-17"), ("紧急", "2026-11-17"), ("2", "2026-12-02"), ("急", "2026-12-02")])
@pytest.mark.backend_independent
def test_request_due_dates_are_15_or_30_calendar_days(urgency, due):
    record = AssistCheckRequest.model_validate(request(urgency=urgency))
    assert record.due_date == dt.date.fromisoformat(due)
    assert record.categories == [ContentCategory.BASIC, ContentCategory.THREE_CHECKS]


@pytest.mark.backend_independent
def test_a_stated_due_date_must_follow_from_the_sent_date():
    assert AssistCheckRequest.model_validate(request(due_date="2026-11-17")).due_date == dt.date(2026, 11, 17)
    with pytest.raises(ValidationError) as refused:
        AssistCheckRequest.model_validate(request(due_date="2026-11-20"))
    assert [(e["type"], e["loc"]) for e in refused.value.errors()] == [("due_date_mismatch", ("due_date",))]


@pytest.mark.backend_independent
def test_a_stored_request_reads_back_unchanged():
    record = AssistCheckRequest.model_validate(request())
    assert AssistCheckRequest.model_validate(json.loads(record.canonical())) == record


@pytest.mark.parametrize("flag, required", [("1", True), ("0", False)])
@pytest.mark.backend_independent
def test_notices_are_due_in_30_days_with_or_without_feedback(flag, required):
    notice = PlatformNotice.model_validate(
        {"message_id": "TB-1", "category": "9", "feedback_required": flag, "sent_date": "2026-11-02", "subject": SUBJECT, "batch": BATCH}
    )
    assert (notice.feedback_required, notice.due_date, notice.category) == (required, dt.date(2026, 12, 2), ContentCategory.CHILDBIRTH)


@pytest.mark.backend_independent
def test_urgency_labels_and_days():
    assert [(u.value, u.label, u.days) for u in Urgency] == [("1", "紧急", 15), ("2", "急", 30)]


@pytest.mark.backend_independent
def test_feedback_not_found_needs_a_remark_and_no_findings():
    base = {"message_id": "XC-1", "answered_at": "2026-11-05T09:00:00+08:00"}
    found = AssistCheckFeedback.model_validate({**base, "result": "1", "findings": [{"category": "01", "value": "在本地居住"}]})
    assert found.business_key() == "XC-1"
    assert AssistCheckFeedback.model_validate({**base, "result": "0", "remark": "查无此人"}).remark == "查无此人"
    cases = [
        ({**base, "result": "0"}, [("remark_required", ("remark",))]),
        ({**base, "result": "0", "remark": " "}, [("remark_required", ("remark",))]),
        ({**base, "result": "0", "remark": "x", "findings": [{"category": "01", "value": "v"}]}, [("findings_not_found", ("findings",))]),
        ({**base, "result": "1"}, [("findings_required", ("findings",))]),
        ({**base, "result": "2", "remark": "x"}, [("result_code", ("result",))]),
        ({**base, "result": "1", "answered_at": "2026-11-05T09:00:00", "findings": [{"category": "01", "value": "v"}]}, [("timezone_missing", ("answered_at",))]),
    ]
    for data, expected in cases:
        with pytest.raises(ValidationError) as refused:
            AssistCheckFeedback.model_validate(data)
        assert [(e["type"], e["loc"]) for e in refused.value.errors()] == expected, data
