"""Civil affairs (民政) XML: the conformance kit, the specimen through the real pipeline,
bad registrations, hostile XML (XXE, billion laughs, hidden DOCTYPEs, UTF-7), malformed
and oversized files, and files from other departments."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterator

import conftest
import pytest

from adapters.civil_affairs import CivilAffairsAdapter
from gateway.readers.xml import DeclarationGuard
from conftest import SPECIMENS, drop, error_report, specimen
from gateway.errors import FileRejected
from gateway.testing import adapter_test_class

SPECIMEN = "civil_affairs_202610.xml"
TEXT = specimen(SPECIMEN).decode("gb18030")
MARRIAGE, DIVORCE, UNDER_AGE, ADOPTION, CREMATION = (
    m.group(0).strip() for m in re.finditer(r"  <(婚姻登记|收养登记|火化登记)\b.*?</\1>", TEXT, flags=re.S)
)
ROOT_OPEN = '<民政数据交换 版本="1.0" 机关代码="440781" 导出时间="2026-11-01T08:00:00+08:00">'


def repeat_records(sample: bytes, rows: int) -> Iterator[bytes]:
    """A large export from the specimen: its registrations repeated `rows` times in all."""
    text = sample.decode("gb18030")
    start, end = text.index("  <婚姻登记"), text.rindex("</民政数据交换>")
    records = re.findall(r"  <(?:婚姻登记|收养登记|火化登记)\b.*?</(?:婚姻登记|收养登记|火化登记)>\n", text[start:end], flags=re.S)
    yield text[:start].encode("gb18030")
    for n in range(rows):
        yield records[n % len(records)].encode("gb18030")
    yield text[end:].encode("gb18030")


TestCivilAffairs = adapter_test_class(
    CivilAffairsAdapter,
    samples=[SPECIMENS / SPECIMEN],
    expected={SPECIMEN: (4, 1)},
    big_file=repeat_records,
)


# -- helpers ------------------------------------------------------------------------


def civil_xml(*records: str, encoding: str = "GB18030", prolog: str = "", sep: str = "\n") -> bytes:
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>' if encoding else ""
    text = sep.join([declaration + prolog, ROOT_OPEN, *records, "</民政数据交换>"]) + "\n"
    return text.encode(encoding or "utf-8")


def query(settings, sql: str, *args) -> list[tuple]:
    return conftest.query(settings, sql, *args)


def database_text(settings) -> str:
    return conftest.database_text(settings)


def report(settings, name: str, department: str = "civil-affairs") -> dict[int, list[tuple[str, str, str, str]]]:
    """The outbox's errors.csv as {row: [(column, field, masked value, code), ...]}."""
    return error_report(settings, department, name)


def codes(settings, name: str) -> dict[int, list[tuple[str, str]]]:
    return {row: [(column, code) for column, _, _, code in errors] for row, errors in report(settings, name).items()}


def run(gateway, settings, name: str, data: bytes, department: str = "civil-affairs"):
    drop(settings, department, name, data)
    [outcome] = gateway.run_once()
    return outcome


def everything_written(settings) -> str:
    """Every text the gateway wrote for people or machines: database, outbox, rejected reports."""
    texts = [database_text(settings)]
    for path in settings.mailbox_root.rglob("*"):
        if path.is_file() and path.parent.name in ("outbox",) or path.name.endswith(".errors.csv"):
            texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(texts)


# -- the specimen through the pipeline ---------------------------------------------


def test_specimen_gives_four_records_and_rejects_the_under_age_marriage(gateway, settings):
    outcome = run(gateway, settings, SPECIMEN, specimen(SPECIMEN))
    assert (outcome.status, outcome.accepted, outcome.rejected, outcome.duplicates) == ("processed", 4, 1, 0)
    stored = query(settings, "SELECT contract, business_key, row_number, payload FROM record ORDER BY leaf_index")
    # Row numbers are the registrations' positions in the file (the third is the rejected one).
    assert [(contract, key, row) for contract, key, row, _ in stored] == [
        ("MarriageEvent", "J440781-2026-001234", 1),
        ("MarriageEvent", "L440781-2026-000321", 2),
        ("AdoptionEvent", "S440781-2026-000012", 4),
        ("CremationEvent", "H440781-2026-004567", 5),
    ]
    marriage, divorce, adoption, cremation = (json.loads(payload) for *_, payload in stored)
    assert marriage["kind"] == "marriage" and marriage["husband"]["prior_status"] == "10"
    assert marriage["husband"]["sex"] == "1" and marriage["wife"]["sex"] == "2"
    assert marriage["wife"]["nationality"] == "中国"
    assert divorce["kind"] == "divorce" and divorce["original_certificate_no"] == "J440781-2015-000777"
    assert adoption["placing_party"] == "台山市社会福利院"
    assert [a["name"] for a in adoption["adopters"]] == ["郑国华"] and adoption["adoptee"]["sex"] == "2"
    assert cremation["deceased"]["id_number"] == "440781193804050137"
    assert (cremation["death_date"], cremation["cremation_date"]) == ("2026-10-11", "2026-10-13")
    assert cremation["funeral_home_code"] == "12440781MB2C12345X"

    assert report(settings, SPECIMEN) == {3: [("当事人[男方]/出生日期", "husband.birth_date", "2006-01-01", "marriage_age")]}
    assert (settings.mailbox_root / "civil-affairs" / "processed" / SPECIMEN).read_bytes() == specimen(SPECIMEN)


def test_names_outside_the_bmp_survive_the_gb18030_xml(gateway, settings):
    data = TEXT.replace("周建国", "黄\U0002003e然").encode("gb18030")
    outcome = run(gateway, settings, SPECIMEN, data)
    assert outcome.accepted == 4
    [(payload,)] = query(settings, "SELECT payload FROM record WHERE business_key = 'J440781-2026-001234'")
    assert json.loads(payload)["husband"]["name"] == "黄\U0002003e然"


def test_the_same_registrations_in_utf8_or_undeclared_are_duplicates(gateway, settings):
    run(gateway, settings, SPECIMEN, specimen(SPECIMEN))
    utf8 = TEXT.replace('encoding="GB18030"', 'encoding="UTF-8"').encode("utf-8")
    undeclared = TEXT.replace('<?xml version="1.0" encoding="GB18030"?>\n', "").encode("gb18030")
    for name, data in (("utf8.xml", utf8), ("undeclared.xml", undeclared)):
        outcome = run(gateway, settings, name, data)
        assert (outcome.status, outcome.accepted, outcome.duplicates, outcome.rejected) == ("processed", 0, 4, 1), name


def test_a_registration_repeated_in_one_file_is_counted_as_a_duplicate(gateway, settings):
    outcome = run(gateway, settings, "twice.xml", civil_xml(MARRIAGE, CREMATION, MARRIAGE))
    assert (outcome.accepted, outcome.duplicates, outcome.rejected) == (2, 1, 0)


def test_rows_are_positions_also_when_the_export_is_one_line(gateway, settings):
    bad = CREMATION.replace('火化日期="2026-10-13"', '火化日期="2026-10-10"')
    outcome = run(gateway, settings, "oneline.xml", civil_xml(MARRIAGE, bad, ADOPTION, sep=""))
    assert (outcome.accepted, outcome.rejected) == (2, 1)
    assert query(settings, "SELECT row_number FROM record ORDER BY leaf_index") == [(1,), (3,)]
    assert codes(settings, "oneline.xml") == {2: [("火化日期", "cremation_before_death")]}


# -- bad registrations ----------------------------------------------------------------


def test_sex_that_disagrees_with_the_id_number_is_a_row_error(gateway, settings):
    swapped = MARRIAGE.replace('角色="男方"', '角色="X"').replace('角色="女方"', '角色="男方"').replace('角色="X"', '角色="女方"')
    outcome = run(gateway, settings, "swapped.xml", civil_xml(swapped))
    assert (outcome.accepted, outcome.rejected) == (0, 1)
    assert report(settings, "swapped.xml") == {
        1: [
            ("当事人[男方]/公民身份号码", "husband.id_number", "", "id_sex_mismatch"),
            ("当事人[女方]/公民身份号码", "wife.id_number", "", "id_sex_mismatch"),
        ]
    }


def test_marriage_and_divorce_rules(gateway, settings):
    records = [
        DIVORCE.replace(' 原结婚证号="J440781-2015-000777"', ""),
        MARRIAGE.replace('证号="J440781-2026-001234"', '证号="J1" 原结婚证号="J0"'),
        MARRIAGE.replace('证号="J440781-2026-001234"', '证号="J2"').replace('婚前状况="未婚"/>\n    <当事人 角色="女方"', '婚前状况="已婚"/>\n    <当事人 角色="女方"'),
        # The woman born 2004-05-05 is 20 on 2024-05-05: old enough that very day, not the day before.
        UNDER_AGE.replace("440781200601010517", "440781199508180110").replace("2006-01-01", "1995-08-18")
        .replace('登记日期="2026-10-22"', '登记日期="2024-05-04"').replace('证号="J440781-2026-001240"', '证号="J3"'),
        UNDER_AGE.replace("440781200601010517", "440781199508180110").replace("2006-01-01", "1995-08-18")
        .replace('登记日期="2026-10-22"', '登记日期="2024-05-05"').replace('证号="J440781-2026-001240"', '证号="J4"'),
    ]
    outcome = run(gateway, settings, "rules.xml", civil_xml(*records))
    assert (outcome.accepted, outcome.rejected) == (1, 4)
    assert codes(settings, "rules.xml") == {
        1: [("原结婚证号", "divorce_certificate_missing")],
        2: [("原结婚证号", "marriage_original_certificate")],
        3: [("当事人[男方]/婚前状况", "marriage_party_married")],
        4: [("当事人[女方]/出生日期", "marriage_age")],
    }


def test_cremation_and_adoption_rules(gateway, settings):
    records = [
        CREMATION.replace('火化日期="2026-10-13"', '火化日期="2026-10-10"'),
        CREMATION.replace('证号="H440781-2026-004567"', '证号="H2"').replace('死亡日期="2026-10-11"', '死亡日期="1938-04-04"'),
        CREMATION.replace('证号="H440781-2026-004567"', '证号="H3"').replace(' 死亡证明编号="S2026-0099"', ""),
        ADOPTION.replace('登记日期="2026-10-08"', '登记日期="2024-02-29"'),
        ADOPTION.replace('<收养人 ', '<收养人 姓名="何玉兰" 公民身份号码="440781199006120425"/>\n    <收养人 ')
        .replace('证号="S440781-2026-000012"', '证号="S2"'),
        ADOPTION.replace("<被收养人 ", '<被收养人 姓名="郑安" 出生日期="2024-03-01"/><被收养人 ').replace('证号="S440781-2026-000012"', '证号="S3"'),
    ]
    outcome = run(gateway, settings, "events.xml", civil_xml(*records))
    assert (outcome.accepted, outcome.rejected) == (1, 5)
    assert codes(settings, "events.xml") == {
        1: [("火化日期", "cremation_before_death")],
        2: [("逝者/死亡日期", "death_before_birth")],
        3: [("逝者/死亡证明编号", "missing")],
        4: [("登记日期", "date_before_birth")],
        6: [("被收养人", "too_long")],
    }
    [(payload,)] = query(settings, "SELECT payload FROM record")
    assert [a["name"] for a in json.loads(payload)["adopters"]] == ["何玉兰", "郑国华"]


def test_wrong_values_are_row_errors_naming_the_attribute(gateway, settings):
    records = [
        MARRIAGE.replace('登记日期="2026-10-12"', '登记日期="十月十二日"'),
        MARRIAGE.replace('婚前状况="未婚"/>\n  </婚姻登记>', '婚前状况="保密"/>\n  </婚姻登记>'),
        MARRIAGE.replace('业务类型="结婚"', '业务类型="订婚"'),
        MARRIAGE.replace('出生日期="1997-04-02"', '出生日期="1997-04-03"'),
        ADOPTION.replace('性别="2"', '性别="F"'),
    ]
    outcome = run(gateway, settings, "values.xml", civil_xml(*records))
    assert (outcome.accepted, outcome.rejected) == (0, 5)
    assert codes(settings, "values.xml") == {
        1: [("登记日期", "date_format")],
        2: [("当事人[女方]/婚前状况", "marital_status_code")],
        3: [("业务类型", "literal_error")],
        4: [("当事人[女方]/公民身份号码", "id_birth_mismatch")],
        5: [("被收养人/性别", "sex_code")],
    }


def test_parties_must_be_one_man_and_one_woman(gateway, settings):
    two_men = MARRIAGE.replace('角色="女方"', '角色="男方"')
    no_wife = re.sub(r'\n    <当事人 角色="女方"[^>]*/>', "", MARRIAGE)
    outcome = run(gateway, settings, "parties.xml", civil_xml(two_men, no_wife))
    assert (outcome.accepted, outcome.rejected) == (0, 2)
    assert codes(settings, "parties.xml") == {1: [("当事人/角色", "party_role")], 2: [("当事人[女方]", "missing")]}


def test_an_unknown_registration_element_is_a_row_error(gateway, settings):
    outcome = run(gateway, settings, "unknown.xml", civil_xml(MARRIAGE, '<死亡登记 证号="D1"/>', CREMATION))
    assert (outcome.accepted, outcome.rejected) == (2, 1)
    assert codes(settings, "unknown.xml") == {2: [("死亡登记", "record_type_unknown")]}


def test_a_bad_funeral_home_code_is_only_a_warning(gateway, settings):
    outcome = run(gateway, settings, "code.xml", civil_xml(CREMATION.replace("12440781MB2C12345X", "12440781MB2C12345Y")))
    assert (outcome.accepted, outcome.rejected) == (1, 0)
    warnings = query(settings, "SELECT column_name, code, level FROM rowerror")
    assert ("殡仪馆代码", "credit_code_invalid", "warning") in warnings


# -- hostile, broken and oversized XML -------------------------------------------------


def test_xxe_reading_a_local_file_is_rejected_and_nothing_leaks(gateway, settings, tmp_path, caplog):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7f3a9c", encoding="ascii")
    hostile = CREMATION.replace('殡仪馆="台山市殡仪馆"', '殡仪馆="&xxe;"').replace("刘大爷", "保密人")
    data = civil_xml(hostile, prolog=f'\n<!DOCTYPE 民政数据交换 [<!ENTITY xxe SYSTEM "file://{secret}">]>')
    caplog.set_level(logging.DEBUG)
    outcome = run(gateway, settings, "xxe.xml", data)
    assert outcome.status == "rejected" and outcome.accepted == 0
    assert query(settings, "SELECT reason_code FROM exchange") == [("xml_unsafe",)]
    assert "DOCTYPE" in outcome.reason
    written = everything_written(settings) + caplog.text
    for leaked in ("TOP-SECRET-7f3a9c", "保密人", "440781193804050137", str(secret)):
        assert leaked not in written
    assert (settings.mailbox_root / "civil-affairs" / "rejected" / "xxe.xml.errors.csv").exists()


def test_billion_laughs_is_rejected_at_once(gateway, settings, caplog):
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10 if n > 1 else "&lol;" * 10}">' for n in range(1, 10)
    )
    bomb = CREMATION.replace('殡仪馆="台山市殡仪馆"', '殡仪馆="&lol9;"')
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    outcome = run(gateway, settings, "laughs.xml", civil_xml(bomb, prolog=f"\n<!DOCTYPE 民政数据交换 [{entities}]>"))
    assert time.monotonic() - started < 10
    assert outcome.status == "rejected" and query(settings, "SELECT reason_code FROM exchange") == [("xml_unsafe",)]
    assert "lollol" not in everything_written(settings) + caplog.text


@pytest.mark.parametrize(
    "prolog",
    [
        "\n<!DOCTYPE 民政数据交换>",
        '\n<!DOCTYPE 民政数据交换 SYSTEM "http://127.0.0.1:9/evil.dtd">',
        "\n<!doctype 民政数据交换>",
        "\n<!-- " + "填充" * 3000 + " -->\n<!DOCTYPE 民政数据交换>",  # beyond the first KiB
    ],
    ids=["plain", "external-dtd", "lowercase", "after-long-comment"],
)
def test_any_doctype_rejects_the_file(gateway, settings, prolog):
    outcome = run(gateway, settings, "doctype.xml", civil_xml(MARRIAGE, prolog=prolog))
    assert outcome.status == "rejected"
    assert query(settings, "SELECT reason_code FROM exchange") == [("xml_unsafe",)]


@pytest.mark.backend_independent
def test_a_declaration_split_across_reads_is_still_found():
    data = b"<a>" + b" " * 37 + b"<!DOCTYPE a>" + b"</a>"
    for size in (1, 5, 7, 40, 41, 44):
        guard = DeclarationGuard(io.BytesIO(data))
        with pytest.raises(FileRejected) as refused:
            while guard.read(size):
                pass
        assert refused.value.code == "xml_unsafe"


def test_utf7_declaration_that_could_hide_a_doctype_is_refused(gateway, settings):
    # In UTF-7, "+ADw-" is "<": a byte scan for "<!DOCTYPE" would never see this one.
    hidden = b'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE x+AD4-+ADw-x/+AD4-'
    outcome = run(gateway, settings, "utf7.xml", hidden)
    assert outcome.status == "rejected"
    assert query(settings, "SELECT reason_code FROM exchange") == [("xml_encoding",)]


def test_malformed_xml_rejects_the_whole_file_with_its_line(gateway, settings):
    broken = MARRIAGE.replace("</婚姻登记>", "</婚姻>")
    outcome = run(gateway, settings, "broken.xml", civil_xml(CREMATION, ADOPTION, broken))
    assert outcome.status == "rejected"
    assert query(settings, "SELECT reason_code FROM exchange") == [("xml_malformed",)]
    # The two good registrations before the break are not stored either: nothing half-stored.
    assert query(settings, "SELECT count(*) FROM record") == [(0,)]
    assert re.search(r"line 1[0-9], column \d+", outcome.reason), outcome.reason


def test_a_file_above_the_size_limit_is_rejected_unread(gateway, settings):
    settings.adapters["civil-affairs"] = {"max_file_bytes": 1000}
    outcome = run(gateway, settings, SPECIMEN, specimen(SPECIMEN))
    assert outcome.status == "rejected" and "max_file_bytes" in outcome.reason
    assert query(settings, "SELECT reason_code FROM exchange") == [("too_large",)]


def test_a_head_with_an_invalid_tag_name_is_no_crash(gateway, settings):
    outcome = run(gateway, settings, "odd.xml", b'<?xml version="1.0"?><+bad-/>')
    assert outcome.status == "rejected" and outcome.reason.startswith("no adapter")


def test_a_root_other_than_the_exchange_is_rejected_by_ingest(gateway, settings, tmp_path):
    path = tmp_path / "other.xml"
    path.write_bytes(b'<?xml version="1.0" encoding="UTF-8"?><JHXX/>')
    outcome = gateway.ingest(path, "civil-affairs")
    assert outcome.status == "rejected"
    assert query(settings, "SELECT reason_code FROM exchange") == [("xml_root",)]


# -- files that are not civil affairs' -------------------------------------------------


def test_civil_affairs_xml_in_the_police_inbox_names_the_civil_affairs_adapter(gateway, settings):
    outcome = run(gateway, settings, SPECIMEN, specimen(SPECIMEN), "police")
    assert outcome.status == "rejected"
    assert "civil-affairs input" in outcome.reason and "department civil-affairs" in outcome.reason


def test_other_departments_files_in_the_civil_affairs_inbox_are_rejected(gateway, settings):
    hospital = run(gateway, settings, "hospital_births_202610.csv", specimen("hospital_births_202610.csv"))
    assert hospital.status == "rejected" and "hospital-births" in hospital.reason
    # Same suffix, another root element: the adapter checks the root, not only ".xml".
    platform = run(gateway, settings, "inbound.xml", specimen("national_platform_inbound_20261102.xml"))
    assert platform.status == "rejected" and "civil-affairs (.xml)" in platform.reason
    assert query(settings, "SELECT count(*) FROM record") == [(0,)]
