"""Housing registry (房管): the conformance kit, the specimen page through the real
pipeline, bad items, malformed pages, the streaming page reader, and the contract."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import conftest
import pytest
from pydantic import ValidationError

import adapters.housing_registry as housing
from adapters.housing_registry import HousingRegistryAdapter, parse_page
from conftest import SPECIMENS, drop, error_report, specimen
from contracts.housing import HousingOccupancy
from gateway.adapter import RawRow
from gateway.errors import FileRejected
from gateway.testing import adapter_test_class, run_pass

SPECIMEN = "housing_occupancy_page1.json"
PAGE = json.loads(specimen(SPECIMEN))
ITEMS = PAGE["items"]
KEYS = [
    "粤(2021)台山市不动产权第0012345号|2026-10-21T09:30:00+08:00",
    "粤(2019)台山市不动产权第0008888号|2026-10-22T15:00:00+08:00",
]


def big_page(sample: bytes, rows: int) -> Iterator[bytes]:
    """A page of `rows` items made from the sample's, for the kit's streaming test."""
    items = json.loads(sample)["items"]
    yield b'{"items": [\n'
    for n in range(rows):
        yield (b",\n" if n else b"") + json.dumps(items[n % len(items)], ensure_ascii=False).encode()
    yield b'\n], "nextCursor": "end"}\n'


TestHousingRegistry = adapter_test_class(
    HousingRegistryAdapter,
    samples=[SPECIMENS / SPECIMEN],
    expected={SPECIMEN: (2, 0)},
    big_file=big_page,
)


# -- helpers ------------------------------------------------------------------------


def query(settings, sql: str, *args) -> list[tuple]:
    return conftest.query(settings, sql, *args)


def report(settings, name: str) -> dict[int, list[tuple[str, str, str]]]:
    """{item: [(column, masked value, code)]} from the outbox's errors.csv."""
    return error_report(settings, "housing", name, (1, 3, 6))


def page(items: list, cursor: str | None = "c1") -> bytes:
    body = {"items": items} if cursor is None else {"items": items, "nextCursor": cursor}
    return json.dumps(body, ensure_ascii=False, indent=2).encode("utf-8")


def item(**changes) -> dict:
    changed = copy.deepcopy(ITEMS[0])
    changed.update(changes)
    return changed


def run(gateway, settings, name: str, data: bytes, department: str = "housing"):
    drop(settings, department, name, data)
    [outcome] = gateway.run_once()
    return outcome


# -- the specimen through the pipeline ---------------------------------------------


def test_specimen_page_gives_two_occupancy_records(settings):
    result = run_pass(settings.home, "housing", {SPECIMEN: specimen(SPECIMEN)})
    outcome = result.files[SPECIMEN]
    assert (outcome.status, outcome.accepted, outcome.rejected, outcome.duplicates) == ("processed", 2, 0, 0)
    receipt = result.receipt_for(SPECIMEN)
    assert receipt["exchange_id"] == outcome.exchange_id and receipt["counts"]["accepted"] == 2 and receipt["adapter"] == "housing-registry"
    assert result.reports == {}
    stored = query(settings, "SELECT contract, business_key, payload FROM record ORDER BY leaf_index")
    assert [(contract, key) for contract, key, _ in stored] == [("HousingOccupancy", key) for key in KEYS]
    first = json.loads(stored[0][2])
    assert [o["role"] for o in first["occupants"]] == ["owner", "family"]
    assert first["owners"][0]["sex"] == "1" and first["rental_registered"] is False
    # Warnings (a retired division code in an owner's ID) are stored but reject nothing.
    assert query(settings, "SELECT DISTINCT level, code FROM rowerror") == [("warning", "division_unknown")]
    outbox = sorted(p.name for p in (settings.mailbox_root / "housing" / "outbox").iterdir())
    assert outbox == [f"{SPECIMEN}.receipt.json", f"{SPECIMEN}.receipt.json.asc"]


def test_an_item_repeated_in_a_page_is_a_duplicate_and_a_later_change_a_new_record(gateway, settings):
    changed = item(updatedAt="2026-10-25T08:00:00+08:00", rentalRegistered=True)
    outcome = run(gateway, settings, "p.json", page([ITEMS[0], ITEMS[1], ITEMS[0], changed]))
    assert (outcome.accepted, outcome.duplicates, outcome.rejected, outcome.corrected) == (3, 1, 0, 0)


def test_the_same_instant_in_another_offset_is_the_same_record(gateway, settings):
    run(gateway, settings, SPECIMEN, specimen(SPECIMEN))
    utc = item(updatedAt="2026-10-21T01:30:00Z")
    outcome = run(gateway, settings, "utc.json", page([utc]))
    assert (outcome.accepted, outcome.duplicates) == (0, 1)


def test_an_unregistered_tenant_is_a_warning(gateway, settings):
    tenant_unregistered = copy.deepcopy(ITEMS[1])
    tenant_unregistered["rentalRegistered"] = False
    outcome = run(gateway, settings, "t.json", page([tenant_unregistered]))
    assert (outcome.accepted, outcome.rejected) == (1, 0)
    assert ("warning", "rental_unregistered", "rentalRegistered") in query(
        settings, "SELECT level, code, column_name FROM rowerror"
    )


def test_bad_items_are_row_errors_naming_the_json_field(settings):
    bad_owner = item(owners=[{"name": "李强", "idNo": "440781199005084515"}])
    moved_out_early = copy.deepcopy(ITEMS[0])
    moved_out_early["occupants"][1]["moveOut"] = "2020-01-01"
    bad_role = copy.deepcopy(ITEMS[0])
    bad_role["occupants"][0]["role"] = "landlord"
    items = [
        bad_owner,
        moved_out_early,
        bad_role,
        item(rentalRegistered="yes"),
        item(updatedAt="2026-10-21 09:30:00"),
        item(owners=[]),
        item(divisionCode=440781),
        "not an object",
        item(room={"no": 502}),
    ]
    result = run_pass(settings.home, "housing", {"bad.json": page(items)})
    outcome = result.files["bad.json"]
    assert (outcome.accepted, outcome.rejected) == (0, len(items))
    assert {row.code for row in result.report_for("bad.json")} >= {"id_check_char", "role_code", "bool_type"}
    found = report(settings, "bad.json")
    assert found[1] == [("owners[].idNo", "440781***********5", "id_check_char")]
    assert [(c, code) for c, _, code in found[2]] == [("occupants[].moveOut", "move_out_before_move_in")]
    assert [(c, code) for c, _, code in found[3]] == [("occupants[].role", "role_code")]
    assert [(c, code) for c, _, code in found[4]] == [("rentalRegistered", "bool_type")]
    assert [(c, code) for c, _, code in found[5]] == [("updatedAt", "timezone_missing")]
    assert [(c, code) for c, _, code in found[6]] == [("owners", "too_short")]
    assert [(c, code) for c, _, code in found[7]] == [("divisionCode", "string_type")]
    assert [code for _, _, code in found[8]] == ["item_not_object"]
    assert [(c, code) for c, _, code in found[9]] == [("room", "string_type")]
    shown = (settings.mailbox_root / "housing" / "outbox" / "bad.json.errors.csv").read_text(encoding="utf-8-sig")
    assert "440781199005084515" not in shown


def test_a_key_twice_in_one_item_rejects_that_item(gateway, settings):
    good = json.dumps(ITEMS[1], ensure_ascii=False)
    twice = json.dumps(ITEMS[0], ensure_ascii=False)[:-1] + ', "rentalRegistered": true}'
    data = ('{"items": [' + twice + ", " + good + '], "nextCursor": null}').encode()
    outcome = run(gateway, settings, "dup-key.json", data)
    assert (outcome.accepted, outcome.rejected) == (1, 1)
    assert report(settings, "dup-key.json")[1] == [("rentalRegistered", "", "json_duplicate_key")]


def test_a_name_outside_the_bmp_survives(gateway, settings):
    outcome = run(gateway, settings, "bmp.json", page([item(owners=[{"name": "黄\U0002003e然", "idNo": "440781199005084514"}])]))
    assert outcome.accepted == 1
    [(payload,)] = query(settings, "SELECT payload FROM record")
    assert json.loads(payload)["owners"][0]["name"] == "黄\U0002003e然"


# -- whole pages that cannot be read ---------------------------------------------------


@pytest.mark.parametrize("chunk", [7, 64 * 1024])
def test_malformed_json_is_rejected_with_line_and_column(gateway, settings, monkeypatch, chunk):
    monkeypatch.setattr(housing, "CHUNK", chunk)
    text = specimen(SPECIMEN).decode("utf-8")
    lines = text.split("\n")
    broken_line = next(n for n, line in enumerate(lines) if '"building": "3"' in line)
    lines[broken_line] = lines[broken_line].rstrip(",")  # a missing comma
    outcome = run(gateway, settings, "broken.json", "\n".join(lines).encode("utf-8"))
    assert outcome.status == "rejected"
    assert query(settings, "SELECT reason_code FROM exchange") == [("json_malformed",)]
    column = lines[broken_line + 1].index('"unit"') + 1
    assert f"line {broken_line + 2}, column {column}" in outcome.reason
    assert query(settings, "SELECT count(*) FROM record") == [(0,)]


@pytest.mark.parametrize(
    "data, code",
    [
        (specimen(SPECIMEN)[:700], "json_malformed"),  # cut off
        (b'[{"propertyCertNo": "x"}]', "json_structure"),
        (b'{"nextCursor": "c"}', "json_structure"),
        (b'{"items": {}}', "json_structure"),
        (b'{"items": [], "items": []}', "json_structure"),
        (b'{"items": [{"a": NaN}]}', "json_malformed"),
        (b'{"items": [1,]}', "json_malformed"),
        (b'{"items": []} trailing', "json_malformed"),
        (b'', "json_structure"),
    ],
    ids=["truncated", "array", "no_items", "items_not_array", "items_twice", "nan", "trailing_comma", "trailing_data", "empty"],
)
def test_pages_that_cannot_be_read_are_rejected(gateway, settings, data, code):
    outcome = run(gateway, settings, "page.json", data)
    assert outcome.status == "rejected"
    assert query(settings, "SELECT reason_code FROM exchange") == [(code,)]
    assert query(settings, "SELECT count(*) FROM record") == [(0,)]


def test_an_item_beyond_the_configured_size_rejects_the_page(gateway, settings):
    settings.adapters["housing-registry"] = {"max_item_kb": 1}
    outcome = run(gateway, settings, "big.json", page([ITEMS[0], item(address="台" * 2000)]))
    assert outcome.status == "rejected"
    assert query(settings, "SELECT reason_code FROM exchange") == [("json_too_large",)]


def test_a_page_in_the_wrong_inbox_names_the_housing_adapter(gateway, settings):
    outcome = run(gateway, settings, SPECIMEN, specimen(SPECIMEN), department="school")
    assert outcome.status == "rejected" and "housing-registry" in outcome.reason


def test_a_platform_document_in_the_housing_inbox_names_the_platform_adapter(gateway, settings):
    name = "national_platform_inbound_20261102.xml"
    outcome = run(gateway, settings, name, specimen(name))
    assert outcome.status == "rejected" and "national-platform" in outcome.reason


# -- the page reader the HTTP pull reuses ---------------------------------------------


@pytest.mark.backend_independent
def test_parse_page_reads_items_then_the_cursor():
    reader = parse_page(b"\xef\xbb\xbf" + specimen(SPECIMEN))
    items = list(reader)
    assert [i.position for i in items] == [1, 2]
    assert items[0].value["propertyCertNo"] == ITEMS[0]["propertyCertNo"]
    assert reader.next_cursor == "2026-10-22T15:00:00+08:00#2"


@pytest.mark.backend_independent
def test_the_cursor_may_come_first_or_be_absent_and_asking_early_reads_through():
    assert parse_page(b'{"nextCursor": "n", "items": [{"a": 1}]}').next_cursor == "n"
    assert parse_page(page(ITEMS, cursor=None)).next_cursor is None
    assert parse_page(b'{"items": [], "nextCursor": null}').next_cursor is None


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64])
@pytest.mark.backend_independent
def test_values_cut_by_the_buffer_are_read_whole(monkeypatch, chunk):
    monkeypatch.setattr(housing, "CHUNK", chunk)
    data = b'{ "total" : 1234567890 , "items" : [ 1234567 , -2.5e3 , "\xe5\x8f\xb0\xf0\xa0\x80\xbe" , {"k": [true, null]} ] , "nextCursor":"x" }'
    reader = parse_page(data)
    assert [i.value for i in reader] == [1234567, -2500.0, "台\U0002003e", {"k": [True, None]}]
    assert reader.next_cursor == "x"


@pytest.mark.backend_independent
def test_a_page_that_is_not_utf8_is_refused():
    with pytest.raises(FileRejected) as refused:
        list(parse_page('{"items": ["陈"]}'.encode("gb18030")))
    assert refused.value.code == "encoding"


# -- the contract ----------------------------------------------------------------------


@pytest.mark.backend_independent
def test_update_times_need_an_offset_and_are_kept_in_china_time():
    data = HousingRegistryAdapter().normalize(RawRow(1, ITEMS[0])).model_dump()
    data["updated_at"] = "2026-10-21T01:30:00+00:00"
    assert HousingOccupancy.model_validate(data).updated_at.isoformat() == "2026-10-21T09:30:00+08:00"
    data["updated_at"] = "2026-10-21T09:30:00"
    with pytest.raises(ValidationError) as refused:
        HousingOccupancy.model_validate(data)
    assert refused.value.errors()[0]["type"] == "timezone_missing"


@pytest.mark.backend_independent
def test_certificate_numbers_with_full_width_brackets_are_the_same_key():
    data = HousingRegistryAdapter().normalize(RawRow(1, ITEMS[0])).model_dump()
    data["property_cert_no"] = "粤（2021）台山市不动产权第0012345号"
    assert HousingOccupancy.model_validate(data).business_key() == KEYS[0]
