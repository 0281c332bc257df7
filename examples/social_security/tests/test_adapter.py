"""The kit's standard tests, and one pass of the gateway over the bureau's workbook."""

from __future__ import annotations

from pathlib import Path

from gateway.testing import adapter_test_class, run_pass

from gateway_social_security.adapter import SocialSecurityDeathsAdapter

SAMPLE = Path(__file__).parent / "samples" / "pension_deaths_202610.xlsx"

# 3 deaths accepted; refused: no pension number, a phone that is not a number, a report
# dated before the death.
TestSocialSecurityDeaths = adapter_test_class(
    SocialSecurityDeathsAdapter,
    samples=[SAMPLE],
    expected={SAMPLE.name: (3, 3)},
    stream_rows=5_000,
)


def test_one_pass_receipts_the_workbook_and_explains_each_refused_row(gateway_home):
    result = run_pass(gateway_home, "social-security", {SAMPLE.name: SAMPLE.read_bytes()})
    outcome = result.files[SAMPLE.name]
    assert (outcome.status, outcome.accepted, outcome.rejected) == ("processed", 3, 3)
    assert result.receipt_for(SAMPLE.name)["counts"]["accepted"] == 3
    reasons = {(row.row, row.code): row.reason_zh for row in result.report_for(SAMPLE.name)}
    assert reasons == {
        ("6", "pension_no_missing"): "缺少养老保险个人编号",
        ("7", "phone_format"): reasons[("7", "phone_format")],
        ("8", "report_before_death"): "报告日期早于死亡日期",
    }
    assert "电话" in reasons[("7", "phone_format")]
    columns = {row.code: row.column for row in result.report_for(SAMPLE.name)}
    assert columns == {"pension_no_missing": "养老保险个人编号", "phone_format": "报告人联系电话", "report_before_death": "报告日期"}
    # what the clerk reads names the column, never the phone number or the name
    report = "\n".join(str(row) for row in result.report_for(SAMPLE.name))
    assert "13700002222" not in report and "吴婆" not in report and "电话未留" not in report
