"""The report's files: XLSX (one sheet per table), CSV (one per table, UTF-8 with BOM),
the HTML page with charts, and the JSON summary. Each is written as NAME.part and renamed."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from gateway.population_reports.figures import PopulationReport
from gateway.population_reports.html_page import render
from gateway.population_reports.tables import Table, summary, tables

FORMATS = ("xlsx", "csv", "html")
UNBALANCED_FILL = PatternFill("solid", fgColor="F8D7DA")


def _replace(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data)
    os.replace(partial, path)


def write_xlsx(report: PopulationReport, path: Path) -> None:
    book = Workbook()
    book.remove(book.active)
    failing_rows = {(f.table, f.row) for f in report.failures}
    for table in tables(report):
        sheet = book.create_sheet(table.name)
        sheet.append([f"{report.period.title}  {report.period.first} – {report.period.last}  {report.status}"])
        sheet["A1"].font = Font(bold=True, size=12, color="000000" if report.balanced else "B00020")
        sheet.append(table.headers)
        for cell in sheet[2]:
            cell.font = Font(bold=True)
            cell.alignment = Alignment(wrap_text=True, vertical="center")
        for row in table.rows:
            sheet.append(row)
            if (table.name, row[0]) in failing_rows:
                for cell in sheet[sheet.max_row]:
                    cell.fill = UNBALANCED_FILL
        sheet.freeze_panes = "B3"
        for index, header in enumerate(table.headers, start=1):
            sheet.column_dimensions[get_column_letter(index)].width = max(10, min(40, len(header) * 2 + 2))
    buffer = io.BytesIO()
    book.save(buffer)
    _replace(path, buffer.getvalue())


def _csv_text(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(table.headers)
    for row in table.rows:
        writer.writerow(["" if cell is None else cell for cell in row])
    return buffer.getvalue()


def write_csvs(report: PopulationReport, directory: Path) -> list[Path]:
    """One CSV per table, UTF-8 with BOM (spreadsheets open it directly)."""
    written = []
    for table in tables(report):
        path = directory / f"{report.period.stem}.{table.key}.csv"
        _replace(path, _csv_text(table).encode("utf-8-sig"))
        written.append(path)
    return written


def write_html(report: PopulationReport, path: Path) -> None:
    _replace(path, render(report).encode("utf-8"))


def write_summary(report: PopulationReport, path: Path, files: list[Path]) -> dict:
    data = summary(report)
    data["files"] = [file.name for file in files]
    _replace(path, (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    return data


def write_all(report: PopulationReport, directory: Path, formats: list[str] | tuple[str, ...] = FORMATS) -> list[Path]:
    """Every asked format into `directory`, then the summary (STEM.json) last."""
    unknown = [name for name in formats if name not in FORMATS]
    if unknown:
        from gateway.errors import UnknownName

        raise UnknownName("report format", unknown[0], list(FORMATS))
    directory.mkdir(parents=True, exist_ok=True)
    stem = report.period.stem
    files: list[Path] = []
    if "xlsx" in formats:
        write_xlsx(report, directory / f"{stem}.xlsx")
        files.append(directory / f"{stem}.xlsx")
    if "csv" in formats:
        files += write_csvs(report, directory)
    if "html" in formats:
        write_html(report, directory / f"{stem}.html")
        files.append(directory / f"{stem}.html")
    write_summary(report, directory / f"{stem}.json", files)
    return [*files, directory / f"{stem}.json"]
