"""`gateway adapters new NAME --format csv|xlsx|xml|json`: a ready-to-install adapter
plugin package (适配器插件脚手架).

The package holds a contract of its own, an adapter reading a sample in the chosen format
with the public readers (`gateway.readers`: `csv_rows`, `xlsx_rows`, `iter_elements`,
`json_records`), the plugin module registered under the `gateway` entry-point group, and a
test file that is one call into the conformance kit, so its tests pass the moment it is
written. Every format's sample holds the same three records, the third with a wrong ID
check character: 2 accepted, 1 refused.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path
from string import Template

from gateway.errors import GatewayError

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

PYPROJECT = Template('''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "gateway-$name"
version = "0.1.0"
description = "Gateway adapter plugin: $name"
requires-python = ">=3.11"
dependencies = ["interagency-gateway>=$gateway_version"]

[project.optional-dependencies]
test = ["pytest>=8.0"]

[project.entry-points.gateway]
$module = "$package.plugin"

[tool.setuptools]
packages = ["$package"]

[tool.pytest.ini_options]
testpaths = ["tests"]
''')

INIT = Template('''\
"""Gateway adapter plugin for $name."""
''')

CONTRACT = Template('''\
"""The record $name sends. Replace the fields with the real ones; keep the business key
the identifier that names the same real-world event in every file."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from contracts import Contract, Person
from contracts.fields import Address, PastDate, Text


class ${klass}Record(Contract):
    """One row of $name's export."""

    contract_name: ClassVar[str] = "${klass}Record"
    business_key_fields: ClassVar[tuple[str, ...]] = ("reference",)

    reference: Text = Field(max_length=40, description="the source's own record number")
    person: Person
    address: Address | None = None
    event_date: PastDate
''')

CSV_ADAPTER = Template('''\
"""Reads $name's CSV export. The gateway stages, decodes (UTF-8 or GB18030), stores,
deduplicates and signs; this module only maps columns to the contract."""

from __future__ import annotations

from collections.abc import Iterator

from gateway import Adapter
from gateway.adapter import RawRow, SourceFile
from gateway.readers import csv_rows

from .contract import ${klass}Record

COLUMNS = {
    "编号": "reference",
    "姓名": "person.name",
    "公民身份号码": "person.id_number",
    "地址": "address",
    "日期": "event_date",
}


class ${klass}Adapter(Adapter):
    """$name: one ${klass}Record per CSV row."""

    name = "$name"
    department = "$department"
    contracts = (${klass}Record,)
    file_types = (".csv",)
    description = "$name CSV export"
    columns = {field: column for column, field in COLUMNS.items()}

    def accepts(self, source: SourceFile) -> bool:
        return source.suffix in self.file_types and (not source.head() or "编号" in source.head())

    def parse(self, source: SourceFile) -> Iterator[RawRow]:
        return csv_rows(source, tuple(COLUMNS))

    def normalize(self, row: RawRow) -> ${klass}Record:
        get = row.fields.get
        return ${klass}Record.model_validate(
            {
                "reference": get("编号"),
                "person": {"name": get("姓名"), "id_number": get("公民身份号码")},
                "address": get("地址"),
                "event_date": get("日期"),
            }
        )
''')

PLUGIN = Template('''\
"""Registers the adapter with the gateway (entry point group `gateway`)."""

from gateway import hookimpl

from .adapter import ${klass}Adapter


@hookimpl
def register_adapters(register):
    register(${klass}Adapter)
''')

SAMPLE = (
    "编号,姓名,公民身份号码,地址,日期\n"
    "A-0001,陈丽,440781199203154325,广东省台山市台城街道环城南路12号,2026-10-03\n"
    "A-0002,李强,440781199005084514,广东省台山市台城街道,2026/10/5\n"
    "A-0003,王芳,440781199203154326,广东省台山市大江镇,20261008\n"
)

XLSX_ADAPTER = Template('''\
"""Reads $name's XLSX export (sheet 1; title rows above the header are skipped). The
gateway stages, stores, deduplicates and signs; `gateway.readers.xlsx_rows` refuses a zip
bomb or a DOCTYPE and streams the rows; this module only maps columns to the contract."""

from __future__ import annotations

from collections.abc import Iterator

from gateway import Adapter
from gateway.adapter import RawRow, SourceFile
from gateway.readers import xlsx_rows

from .contract import ${klass}Record

COLUMNS = {
    "编号": "reference",
    "姓名": "person.name",
    "公民身份号码": "person.id_number",
    "地址": "address",
    "日期": "event_date",
}
REQUIRED = ("编号", "姓名", "公民身份号码", "日期")


class ${klass}Adapter(Adapter):
    """$name: one ${klass}Record per row of the workbook's first sheet."""

    name = "$name"
    department = "$department"
    contracts = (${klass}Record,)
    file_types = (".xlsx",)
    description = "$name XLSX export"
    columns = {field: column for column, field in COLUMNS.items()}

    def accepts(self, source: SourceFile) -> bool:
        return source.suffix in self.file_types  # parse says why a workbook is not ours

    def parse(self, source: SourceFile) -> Iterator[RawRow]:
        # 日期 may be a date cell, a serial day number (45933) or text (2026年10月5日).
        return xlsx_rows(source, sheet=0, header=REQUIRED, known=tuple(COLUMNS), date_columns=("日期",))

    def normalize(self, row: RawRow) -> ${klass}Record:
        get = row.fields.get
        return ${klass}Record.model_validate(
            {
                "reference": get("编号"),
                "person": {"name": get("姓名"), "id_number": get("公民身份号码")},
                "address": get("地址") or None,
                "event_date": get("日期"),
            }
        )
''')

XML_ADAPTER = Template('''\
"""Reads $name's XML export: `<记录集>` holding one `<记录>` per record, a child element per
field. `gateway.readers.iter_elements` refuses a DOCTYPE or an entity and streams the
records; this module only maps elements to the contract."""

from __future__ import annotations

from collections.abc import Iterator

from gateway import Adapter
from gateway.adapter import RawRow, SourceFile
from gateway.readers import check_declared_encoding, iter_elements, local_name

from .contract import ${klass}Record

ROOT, RECORD = "记录集", "记录"
COLUMNS = {
    "编号": "reference",
    "姓名": "person.name",
    "公民身份号码": "person.id_number",
    "地址": "address",
    "日期": "event_date",
}


class ${klass}Adapter(Adapter):
    """$name: one ${klass}Record per <记录> element."""

    name = "$name"
    department = "$department"
    contracts = (${klass}Record,)
    file_types = (".xml",)
    description = "$name XML export"
    columns = {field: column for column, field in COLUMNS.items()}

    def accepts(self, source: SourceFile) -> bool:
        head = source.head()
        return source.suffix in self.file_types and (not head or f"<{ROOT}" in head)

    def parse(self, source: SourceFile) -> Iterator[RawRow]:
        check_declared_encoding(source)
        for position, element in iter_elements(source.path, {RECORD}, root=ROOT):
            fields = {}
            for child in element:
                name = local_name(child)
                if name in fields:
                    yield RawRow(position, {}, ("element_repeated", name, f"<{name}> appears twice"))
                    break
                fields[name] = (child.text or "").strip()
            else:
                yield RawRow(position, fields)

    def normalize(self, row: RawRow) -> ${klass}Record:
        get = row.fields.get
        return ${klass}Record.model_validate(
            {
                "reference": get("编号"),
                "person": {"name": get("姓名"), "id_number": get("公民身份号码")},
                "address": get("地址") or None,
                "event_date": get("日期"),
            }
        )
''')

JSON_ADAPTER = Template('''\
"""Reads $name's JSON export: an object whose `records` array holds one object per
record. `gateway.readers.json_records` streams the array (one record in memory); this
module only maps keys to the contract."""

from __future__ import annotations

from collections.abc import Iterator

from gateway import Adapter
from gateway.adapter import RawRow, SourceFile
from gateway.readers import json_records

from .contract import ${klass}Record

POINTER = "/records"
COLUMNS = {
    "编号": "reference",
    "姓名": "person.name",
    "公民身份号码": "person.id_number",
    "地址": "address",
    "日期": "event_date",
}


class ${klass}Adapter(Adapter):
    """$name: one ${klass}Record per element of `records`."""

    name = "$name"
    department = "$department"
    contracts = (${klass}Record,)
    file_types = (".json",)
    description = "$name JSON export"
    columns = {field: column for column, field in COLUMNS.items()}

    def accepts(self, source: SourceFile) -> bool:
        head = source.head()
        return source.suffix in self.file_types and (not head or '"records"' in head)

    def parse(self, source: SourceFile) -> Iterator[RawRow]:
        for record in json_records(source, POINTER):
            if record.duplicate_keys:
                keys = ", ".join(sorted(set(record.duplicate_keys)))
                yield RawRow(record.position, {}, ("json_duplicate_key", keys, f"key(s) {keys} appear twice"))
            elif not isinstance(record.value, dict):
                yield RawRow(record.position, {}, ("item_not_object", "", "the record is not a JSON object"))
            else:
                yield RawRow(record.position, record.value)

    def normalize(self, row: RawRow) -> ${klass}Record:
        get = row.fields.get
        return ${klass}Record.model_validate(
            {
                "reference": get("编号"),
                "person": {"name": get("姓名"), "id_number": get("公民身份号码")},
                "address": get("地址") or None,
                "event_date": get("日期"),
            }
        )
''')

FORMATS = ("csv", "xlsx", "xml", "json")
ADAPTERS = {"csv": CSV_ADAPTER, "xlsx": XLSX_ADAPTER, "xml": XML_ADAPTER, "json": JSON_ADAPTER}
_SAMPLE_RECORDS = [
    {"编号": "A-0001", "姓名": "陈丽", "公民身份号码": "440781199203154325", "地址": "广东省台山市台城街道环城南路12号", "日期": "2026-10-03"},
    {"编号": "A-0002", "姓名": "李强", "公民身份号码": "440781199005084514", "地址": "广东省台山市台城街道", "日期": "2026年10月5日"},
    {"编号": "A-0003", "姓名": "王芳", "公民身份号码": "440781199203154326", "地址": "广东省台山市大江镇", "日期": "20261008"},
]


def sample_bytes(format: str) -> bytes:
    """The sample file of a format: three records, the third with a wrong ID check character."""
    if format == "csv":
        return SAMPLE.encode("utf-8")
    if format == "json":
        document = {"exportedAt": "2026-11-01T08:00:00+08:00", "records": _SAMPLE_RECORDS}
        return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    if format == "xml":
        records = "".join(
            "  <记录>" + "".join(f"<{key}>{value}</{key}>" for key, value in record.items()) + "</记录>\n"
            for record in _SAMPLE_RECORDS
        )
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<记录集 导出时间="2026-11-01T08:00:00+08:00">\n{records}</记录集>\n'.encode()
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "名册"
    sheet.append(["2026年10月 导出"])  # a title row above the header, as exports often have
    header = list(_SAMPLE_RECORDS[0])
    sheet.append(header)
    first, second, third = ([record[column] for column in header] for record in _SAMPLE_RECORDS)
    first[4] = dt.datetime(2026, 10, 3)  # a date cell
    third[4] = (dt.date(2026, 10, 8) - dt.date(1899, 12, 30)).days  # a serial day number
    for row in (first, second, third):
        sheet.append(row)
    sheet.cell(row=3, column=5).number_format = "yyyy-mm-dd"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()

TEST = Template('''\
"""The gateway's standard adapter tests, in one call."""

from pathlib import Path

from gateway.testing import adapter_test_class

from $package.adapter import ${klass}Adapter

SAMPLES = Path(__file__).parent / "samples"

Test${klass} = adapter_test_class(
    ${klass}Adapter,
    samples=[SAMPLES / "${module}_sample.${format}"],
    expected={"${module}_sample.${format}": (2, 1)},
)
''')

README = Template('''\
# gateway-$name

An adapter plugin for the interagency data-exchange gateway, reading $name's $upper export
into `${klass}Record`.

    pip install -e '.[test]'   # into the gateway's environment
    pytest                     # the gateway's conformance kit
    gateway adapters list      # shows $name

Files dropped into the `$department` inbox are read by this adapter. Once it is installed,
`gateway init` and `gateway run` make that inbox even when `departments` in `gateway.toml`
does not list `$department` (and say so); list it there to make that explicit.
''')


def scaffold(name: str, target: Path, department: str | None = None, format: str = "csv") -> Path:
    """Write the plugin package for adapter `name`, reading `format` (csv, xlsx, xml,
    json), into `target/gateway-NAME`."""
    from gateway import __version__

    if format not in FORMATS:
        raise GatewayError(f"格式 {format!r} 不受支持,可选 {', '.join(FORMATS)} / format {format!r} is not one of {', '.join(FORMATS)}")
    if department is not None and not _NAME.match(department):
        raise GatewayError(f"Department {department!r} must be lowercase letters and digits separated by dashes, e.g. water-board")
    if not _NAME.match(name):
        raise GatewayError(f"Adapter name {name!r} must be lowercase letters and digits separated by dashes, e.g. water-board")
    module = name.replace("-", "_")
    package = f"gateway_{module}"
    klass = "".join(part.capitalize() for part in name.split("-"))
    root = target / f"gateway-{name}"
    if root.exists():
        raise GatewayError(f"{root} exists already; choose another --directory or remove it")
    values = {
        "name": name,
        "module": module,
        "package": package,
        "klass": klass,
        "department": department or name,
        "gateway_version": __version__,
        "format": format,
        "upper": format.upper(),
    }
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{package}/__init__.py": INIT,
        f"{package}/contract.py": CONTRACT,
        f"{package}/adapter.py": ADAPTERS[format],
        f"{package}/plugin.py": PLUGIN,
        "tests/test_adapter.py": TEST,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.substitute(values), encoding="utf-8")
    sample = root / "tests" / "samples" / f"{module}_sample.{format}"
    sample.parent.mkdir(parents=True, exist_ok=True)
    sample.write_bytes(sample_bytes(format))
    return root
