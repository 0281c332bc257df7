"""Streaming readers shared by adapters (读取器), public for plugin authors (docs/plugins.md).

- `csv_rows` (gateway/readers/delimited.py): CSV with a header row, in the encoding the
  gateway detected; `normalize_header`; `CountingReader` (the ingest progress bar).
- `xlsx_rows`, `check_zip`, `sheet_names`, `XlsxLimits` (gateway/readers/xlsx.py): one sheet
  of a workbook, streamed, after zip-bomb and DOCTYPE checks.
- `iter_elements`, `root_tag`, `check_declared_encoding` (gateway/readers/xml.py): hardened
  streaming XML.
- `json_records`, `JsonRecord` (gateway/readers/json.py): the records of one array of a
  JSON document, streamed.

Every reader raises `FileRejected` for a file it cannot read as a whole, keeps memory
bounded whatever the input, and quotes nothing from the file unmasked.
"""

from __future__ import annotations

from gateway.readers.delimited import FIELD_LIMIT, LINE_LIMIT, CountingReader, csv_rows, normalize_header
from gateway.readers.json import JsonRecord, JsonValue, json_records
from gateway.readers.xlsx import XlsxLimits, cell_text, check_zip, sheet_names, xlsx_rows
from gateway.readers.xml import check_declared_encoding, iter_elements, local_name, root_tag

__all__ = [
    "FIELD_LIMIT",
    "LINE_LIMIT",
    "CountingReader",
    "JsonRecord",
    "JsonValue",
    "XlsxLimits",
    "cell_text",
    "check_declared_encoding",
    "check_zip",
    "csv_rows",
    "iter_elements",
    "json_records",
    "local_name",
    "normalize_header",
    "root_tag",
    "sheet_names",
    "xlsx_rows",
]
