"""Rejection reports for people: CSV in UTF-8 with BOM, so a spreadsheet opens them.

Columns: row, column, field, masked value, reason in Chinese, reason in English. Values
were masked before they were stored; nothing here sees a full identifier.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable
from pathlib import Path

from gateway.store.models import RowError

HEADER = ["行号 row", "列 column", "字段 field", "值(已脱敏) value (masked)", "原因 reason", "reason", "代码 code"]


def _neutralize(value: str) -> str:
    # A value starting with = + - @ would run as a formula when the clerk opens the CSV.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def write_report(path: Path, errors: Iterable[RowError]) -> str:
    """Write the report; return its sha256."""
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(HEADER)
        for error in errors:
            writer.writerow(
                [
                    error.row_number or "",
                    error.column_name,
                    error.field,
                    _neutralize(error.value_masked),
                    error.reason_zh,
                    error.reason_en,
                    error.code,
                ]
            )
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
