"""The county's divisions (区划): HOME/divisions.csv, one row per county, township (乡镇/街道)
and village (村/社区居委会), with the 12-digit statistical division code (统计用区划代码).

```
代码,名称,级别
440781000000,台山市,county
440781101000,大江镇,township
440781101201,公益村,village
```

`级别` is `county`, `township` or `village` (or 县/乡镇/村). On load every row is checked: a
12-digit code, a township's code is its county's first 6 digits + 3 + `000`, a village's
first 9 digits name a listed township; one county; names unique within their township.

`match()` places an address in a village: by a 12-digit code first, then by the names of a
township and one of its villages written in the address. What cannot be placed is
`unmatched` (never guessed); an address with another county's code is `elsewhere`.

It sits in routing (below the register) because the township-scoped sharing agreements
place each routed record with it; `gateway.register.divisions` re-exports it. It imports
nothing of the gateway but `gateway.errors`.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from gateway.errors import GatewayError

FILE_NAME = "divisions.csv"
LEVELS = {"county": "county", "县": "county", "区县": "county", "township": "township", "乡镇": "township",
          "乡镇街道": "township", "街道": "township", "village": "village", "村": "village", "村居": "village", "社区": "village"}
HEADERS = {"code": ("代码", "统计用区划代码", "code"), "name": ("名称", "name"), "level": ("级别", "level")}
_SUFFIXES = (("村民委员会", "村"), ("村委会", "村"), ("社区居民委员会", "社区"), ("社区居委会", "社区"),
             ("居民委员会", ""), ("居委会", ""))

EXAMPLE = """\
代码,名称,级别
440781000000,台山市,county
440781001000,台城街道,township
440781001001,城东社区,village
440781001002,城西社区,village
440781101000,大江镇,township
440781101201,公益村,village
440781101202,麦巷村,village
440781102000,水步镇,township
440781102201,水步村,village
440781103000,四九镇,township
440781103201,四九村,village
440781104000,白沙镇,township
440781104201,白沙村,village
"""


class DivisionsError(GatewayError):
    """HOME/divisions.csv is missing or wrong; the message names the row."""


@dataclass(frozen=True)
class Division:
    code: str
    name: str
    level: str

    @property
    def township_code(self) -> str:
        return self.code[:9] + "000"

    @property
    def recipient(self) -> str:
        """The township's recipient name (`town-440781101`): mailbox folder, account, agreements."""
        return f"town-{self.code[:9]}"

    def names(self) -> tuple[str, ...]:
        forms = [self.name]
        for suffix, short in _SUFFIXES:
            if self.name.endswith(suffix) and len(self.name) > len(suffix):
                core = self.name[: -len(suffix)]
                forms.append(core + short if short and not core.endswith(short) else core)
        return tuple(dict.fromkeys(f for f in forms if f))


@dataclass(frozen=True)
class Placement:
    """Where an address lies: `status` is village | township | unmatched | elsewhere | none."""

    status: str
    township: str | None = None
    village: str | None = None
    reason: str = ""


@dataclass
class Divisions:
    county: Division
    townships: dict[str, Division] = field(default_factory=dict)
    villages: dict[str, Division] = field(default_factory=dict)

    @property
    def county_code(self) -> str:
        return self.county.code[:6]

    def villages_of(self, township_code: str) -> list[Division]:
        return [v for v in self.villages.values() if v.township_code == township_code]

    def find(self, text: str, level: str, within: str | None = None) -> Division:
        """A township or village by code (9 or 12 digits) or name; `within` a township code."""
        pool = self.townships if level == "township" else self.villages
        text = text.strip()
        candidates = [
            d for d in pool.values()
            if (within is None or d.township_code == within)
            and (d.code == text or d.code[:9] == text or text in d.names() or d.recipient == text)
        ]
        if len(candidates) == 1:
            return candidates[0]
        label = "乡镇（街道） township" if level == "township" else "村（居） village"
        choices = ", ".join(f"{d.code} {d.name}" for d in pool.values() if within is None or d.township_code == within)
        if not candidates:
            raise DivisionsError(f"没有这个{label}: {text!r} is not in divisions.csv. Valid choices: {choices}")
        raise DivisionsError(f"{label} {text!r} is ambiguous: {', '.join(d.code for d in candidates)}; give the code")

    def name_of(self, code: str | None) -> str:
        if not code:
            return ""
        division = self.villages.get(code) or self.townships.get(code)
        return division.name if division else code

    def match(self, address: str | None, code: str | None = None) -> Placement:
        """Place an address (and the record's division code) in a village of the county."""
        code = (code or "").strip()
        if len(code) == 12 and code.isdigit():
            if code in self.villages:
                return Placement("village", self.villages[code].township_code, code)
            if code in self.townships:
                return self._by_names(address, self.townships[code])
            if code[:6] != self.county_code:
                return Placement("elsewhere", reason="division code of another county")
        elif code and code[:6] != self.county_code:
            return Placement("elsewhere", reason="division code of another county")
        for found in re.findall(r"\d{12}", address or ""):
            if found in self.villages:
                return Placement("village", self.villages[found].township_code, found)
        if not address:
            return Placement("none")
        townships = [t for t in self.townships.values() if any(n in address for n in t.names())]
        if len(townships) != 1:
            reason = "no township of the county named" if not townships else "more than one township named"
            return Placement("unmatched", reason=reason)
        return self._by_names(address, townships[0])

    def _by_names(self, address: str | None, township: Division) -> Placement:
        villages = [v for v in self.villages_of(township.code) if any(n in (address or "") for n in v.names())]
        if len(villages) == 1:
            return Placement("village", township.code, villages[0].code)
        reason = "no village of the township named" if not villages else "more than one village named"
        return Placement("unmatched", township.code, None, reason)


def _level(text: str) -> str | None:
    return LEVELS.get(text.strip().lower())


def parse_divisions(text: str, origin: str = FILE_NAME) -> Divisions:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [cell.strip().lower() for cell in next(reader, [])]
    columns: dict[str, int] = {}
    for key, names in HEADERS.items():
        for index, cell in enumerate(header):
            if cell in names:
                columns[key] = index
    missing = [HEADERS[k][0] for k in HEADERS if k not in columns]
    if missing:
        raise DivisionsError(f"{origin}: the header lacks {', '.join(missing)} (代码,名称,级别 / code,name,level)")
    rows: list[tuple[int, Division]] = []
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        def get(key: str) -> str:
            return cells[columns[key]].strip() if columns[key] < len(cells) else ""

        code, name, level_text = get("code"), get("name"), get("level")
        level = _level(level_text)
        if not re.fullmatch(r"\d{12}", code):
            raise DivisionsError(f"{origin} row {number}: 代码 {code!r} must be a 12-digit 统计用区划代码")
        if not name:
            raise DivisionsError(f"{origin} row {number}: 名称 is empty")
        if level is None:
            raise DivisionsError(f"{origin} row {number}: 级别 {level_text!r} must be county, township or village (县/乡镇/村)")
        shape = {"county": code[6:] == "000000", "township": code[6:9] != "000" and code[9:] == "000",
                 "village": code[6:9] != "000" and code[9:] != "000"}[level]
        if not shape:
            raise DivisionsError(
                f"{origin} row {number}: 代码 {code} does not have a {level}'s shape "
                "(county: 6 digits + 000000; township: 9 digits + 000; village: 12 digits, its first 9 a township)"
            )
        rows.append((number, Division(code, name, level)))
    counties = [d for _, d in rows if d.level == "county"]
    if len(counties) != 1:
        raise DivisionsError(f"{origin}: exactly one county row is needed, found {len(counties)}")
    result = Divisions(counties[0])
    for number, division in rows:
        if division.level == "county":
            continue
        if division.code[:6] != result.county_code:
            raise DivisionsError(f"{origin} row {number}: {division.code} is not in county {result.county_code}")
        pool = result.townships if division.level == "township" else result.villages
        if division.code in pool:
            raise DivisionsError(f"{origin} row {number}: 代码 {division.code} is listed twice")
        pool[division.code] = division
    for number, village in rows:
        if village.level != "village":
            continue
        if village.township_code not in result.townships:
            raise DivisionsError(f"{origin} row {number}: village {village.code} lies in township {village.township_code}, which is not listed")
    seen: dict[tuple[str, str], str] = {}
    for division in [*result.townships.values(), *result.villages.values()]:
        named = (division.township_code if division.level == "village" else "", division.name)
        if named in seen:
            raise DivisionsError(f"{origin}: the name {division.name} is used by both {seen[named]} and {division.code}")
        seen[named] = division.code
    return result


def load_divisions(home: Path) -> Divisions:
    path = home / FILE_NAME
    if not path.exists():
        raise DivisionsError(
            f"No {path}: write the county's townships and villages there (代码,名称,级别), "
            "or run `gateway register divisions --example` for a starting point"
        )
    raw = path.read_bytes()
    for encoding in ("utf-8", "gb18030"):
        try:
            return parse_divisions(raw.decode(encoding), str(path))
        except UnicodeDecodeError:
            continue
    raise DivisionsError(f"{path}: not UTF-8 or GB18030 text")


def write_example(home: Path) -> Path | None:
    """Write the example divisions.csv unless one is there."""
    path = home / FILE_NAME
    if path.exists():
        return None
    path.write_text(EXAMPLE, encoding="utf-8")
    return path
