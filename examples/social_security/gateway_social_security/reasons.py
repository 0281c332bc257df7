"""The bureau's own rejection codes, with the texts a clerk reads in the rejection report."""

from __future__ import annotations

REASONS: dict[str, tuple[str, str]] = {
    "report_before_death": ("报告日期早于死亡日期", "the report date lies before the death date"),
    "pension_no_missing": ("缺少养老保险个人编号", "the pension number (养老保险个人编号) is missing"),
}
