"""`gateway adapters new NAME`: a ready-to-install adapter plugin package.

The package holds a contract of its own, an adapter reading a CSV sample, the plugin
module registered under the `gateway` entry-point group, and a test file that is one
call into the conformance kit, so its tests pass the moment it is written.
"""

from __future__ import annotations

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

ADAPTER = Template('''\
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

TEST = Template('''\
"""The gateway's standard adapter tests, in one call."""

from pathlib import Path

from gateway.testing import adapter_test_class

from $package.adapter import ${klass}Adapter

SAMPLES = Path(__file__).parent / "samples"

Test${klass} = adapter_test_class(
    ${klass}Adapter,
    samples=[SAMPLES / "${module}_sample.csv"],
    expected={"${module}_sample.csv": (2, 1)},
)
''')

README = Template('''\
# gateway-$name

An adapter plugin for the interagency data-exchange gateway, reading $name's CSV export
into `${klass}Record`.

    pip install -e '.[test]'   # into the gateway's environment
    pytest                     # the gateway's conformance kit
    gateway adapters list      # shows $name

Files dropped into the `$department` inbox are read by this adapter; add `$department` to
`departments` in `gateway.toml` if it is not there yet.
''')


def scaffold(name: str, target: Path, department: str | None = None) -> Path:
    """Write the plugin package for adapter `name` into `target/gateway-NAME`."""
    from gateway import __version__

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
    }
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{package}/__init__.py": INIT,
        f"{package}/contract.py": CONTRACT,
        f"{package}/adapter.py": ADAPTER,
        f"{package}/plugin.py": PLUGIN,
        "tests/test_adapter.py": TEST,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.substitute(values), encoding="utf-8")
    sample = root / "tests" / "samples" / f"{module}_sample.csv"
    sample.parent.mkdir(parents=True, exist_ok=True)
    sample.write_text(SAMPLE, encoding="utf-8")
    return root
