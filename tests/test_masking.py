import pytest

from gateway.masking import mask_value

# Nothing here reads or writes the gateway database: run on one backend (tests/conftest.py).
pytestmark = pytest.mark.backend_independent


def test_masks_by_kind():
    assert mask_value("440781199203154325", "id_number") == "440781***********5"
    assert mask_value("陈小明", "name") == "陈**"
    assert mask_value("黄\U0002003e然", "name") == "黄**"
    assert mask_value("广东省台山市台城街道环城南路12号", "address") == "广东省台山市****"
    assert mask_value("E12345678", "document_number") == "E*******8"
    assert mask_value("", "name") == ""


def test_id_shaped_text_is_masked_in_any_field():
    assert mask_value("see 440781199203154325 here", None) == "see 440781***********5 here"
    assert mask_value("2026-02-30", None) == "2026-02-30"
    assert mask_value("x" * 100, None).endswith("(100 characters)")


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("13800001111", "138****1111"),       # a mobile: first 3, last 4
        (" 13800001111 ", "138****1111"),
        ("0762-2223333", "0762-***3333"),     # a landline: area code and last 4
        ("020-22223333", "020-****3333"),
        ("13800001111-", "138****1111"),      # malformed: its digits, never the text as is
        ("5551", "****"),
    ],
)
def test_a_phone_number_keeps_its_first_3_and_last_4_digits(value, masked):
    from gateway.masking import mask_value

    assert mask_value(value, "phone") == masked


def test_phone_and_free_text_fields_are_marked_personal_and_checked():
    from typing import ClassVar

    from pydantic import ValidationError

    from contracts import Contract
    from contracts.fields import FreeText, Phone
    from gateway.masking import mask_value, personal_kinds

    class Call(Contract):
        contract_name: ClassVar[str] = "Call"
        business_key_fields: ClassVar[tuple[str, ...]] = ("phone",)
        phone: Phone
        note: FreeText | None = None

    assert Call.field_kinds() == ((("phone",), "phone"), (("note",), "free_text"))
    assert {"phone", "free_text"} <= personal_kinds()
    assert Call.model_validate({"phone": " 0762-2223333 ", "note": " 来电 "}).phone == "0762-2223333"
    assert Call.model_validate({"phone": "１３８０００01111"}).phone == "13800001111", "full-width digits fold"
    for bad in ("138 0000 1111", "138-0000-111x", "12345", "+8613800001111"):
        with pytest.raises(ValidationError) as info:
            Call.model_validate({"phone": bad})
        assert info.value.errors()[0]["type"] == "phone_format"
    assert mask_value("家属来电说明", "free_text") == "家**"


def test_phone_shaped_runs_are_masked_in_any_text_people_see():
    """A phone number that lands in a field not marked as one (a shifted row), in a
    library's message or in a console reason is masked like an ID number."""
    from gateway.masking import mask_identifiers, mask_untrusted, mask_value, scrub_message
    from gateway.store.audit import mask_text

    assert mask_untrusted("13812345678") == "138****5678"
    assert mask_untrusted("0762-7654321") == "0762-***4321"
    assert mask_value("call 13812345678 now", None) == "call 138****5678 now"
    assert "13812345678" not in scrub_message("invalid literal for int(): 13812345678x")
    assert mask_text("报告人 13912345678，户主 440781199203154325") == "报告人 139****5678，户主 440781***********5"
    # not a phone: dates, counts, a longer run of digits (an ID number is masked as one)
    assert mask_identifiers("2026-10-03 20261003 3000 rows") == "2026-10-03 20261003 3000 rows"
    assert mask_identifiers("138123456789") == "138123456789"  # 12 digits: neither
    assert mask_identifiers("138123456789012") == "138123********2"  # 15 digits: a legacy ID number


# -- issue 20: every identifier kind in every text people see -------------------------------


def test_legacy_and_embedded_id_numbers_are_masked_whole():
    from gateway.masking import mask_identifiers

    legacy = "440781" + "760918" + "523"  # 15 digits: 6-digit division, YYMMDD, 3 digits
    assert mask_identifiers(f"户籍 {legacy} 迁出") == "户籍 440781********3 迁出"
    full = "44078119" + "9203154325"
    # Inside a platform message id (XXBH), or run together with more digits: the whole run.
    assert mask_identifiers(f"XC{full}0001") == "XC440781" + "*" * 15 + "1"
    assert mask_identifiers(f"TB-13927654321{legacy}01") == "TB-139276" + "*" * 21 + "1"
    assert mask_identifiers(f"{full[:17]}X") == "440781***********X"
    # 14 digits or fewer (a timestamp, a 12-digit division code) are not ID-shaped.
    assert mask_identifiers("20261102100000 440781001001") == "20261102100000 440781001001"


def test_a_receipt_is_shown_with_its_file_name_masked():
    import json

    from gateway.masking import mask_file_name, mask_receipt_body

    name = "欧阳明月" + "44078119" + "9203154325" + ".csv"
    body = json.dumps({"file_name": name, "file_sha256": "a" * 20 + "1234567890123456789012345" + "b" * 19,
                       "reason": "see 13927654321", "counts": {"rows": 3}, "department": "hospital"}, ensure_ascii=False)
    shown = json.loads(mask_receipt_body(body))
    assert shown["file_name"] == mask_file_name(name) and "欧阳" not in mask_receipt_body(body)
    assert shown["file_sha256"] == json.loads(body)["file_sha256"]  # a hash as signed, not garbled
    assert shown["reason"] == "see 139****4321" and shown["counts"] == {"rows": 3} and shown["department"] == "hospital"


def test_the_log_filter_masks_what_a_module_forgot():
    import logging

    from gateway.masking import MaskingFilter

    record = logging.LogRecord("gateway.x", logging.INFO, __file__, 1, "assist-check %s (%s)", (7, "XC" + "44078119" + "92031543250001"), None)
    assert MaskingFilter().filter(record) and record.getMessage() == "assist-check 7 (XC440781" + "*" * 15 + "1)"


def test_the_crawls_scanner_finds_a_known_number_inside_a_longer_one():
    from gateway.store.audit import IdScanner

    full, legacy, phone = "44078119" + "9203154325", "440781" + "760918" + "523", "139" + "27654321"
    scanner = IdScanner([full, legacy], phones=[phone], embedded=True)
    assert [f.masked for f in scanner.scan(f"XC{full}0001")] == ["440781***********5"]
    assert sorted(f.kind for f in scanner.scan(f"TB{phone}{legacy}01")) == ["ID number", "phone number"]
    assert scanner.scan("XC440781" + "*" * 15 + "1 TB-139276" + "*" * 21 + "1") == []
    assert IdScanner([full]).scan(f"XC{full}0001") == []  # the suite-wide scan keeps to whole tokens
