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
