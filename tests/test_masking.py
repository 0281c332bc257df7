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
