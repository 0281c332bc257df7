"""A generated month (样本月): every department's exports for one month, in their real
formats, with discrepancies planted in known numbers, and a manifest of what a correct
gateway must find in them.

    month = generate_month(2026, 8)                     # deterministic: seeded by the month
    month.drop(settings.mailbox_root)                   # into each department's inbox
    month.manifest()                                    # JSON-able: expected discrepancies and counts
    later = generate_month(2026, 9, plant=False, supply=month)   # supplies some missing records

The files: `hospital_births_YYYYMM.csv` (GB18030, CRLF), `police_hukou_YYYYMM.csv` (UTF-8
with BOM, LF), `civil_affairs_YYYYMM.xml` (GB18030), `school_enrolments_YYYYMM.csv`
(GB18030), `housing_occupancy_YYYYMM.json` and `national_platform_inbound_YYYYMM01.xml`
(UTF-8). Every row is valid: the numbers in `counts` are what the gateway must accept.

Planted discrepancies (per reconciliation rule, see docs/reconciliation.md), all with
event dates between the 1st and the 20th so that every default grace period has ended by
the last day of the next month:

- `unregistered-births`: hospital births with no police newborn registration;
- `births-without-hospital-record`: police registrations citing an unknown certificate;
- `deaths-without-cremation`: police death cancellations with no cremation, plus one whose
  cremation lacks the ID number (same name, birth date given): a proposed match only;
- `cremations-without-death`: cremations with no police death cancellation, plus that
  ID-less cremation (open, with the same proposal);
- `tenants-without-residence-permit`: tenants with no residence permit.

The register (docs/register.md): the county's mothers live in villages of the example
`divisions.csv` (a few in 新围村, which no divisions.csv lists: unmatched), two of them marry
this month, and the first assist-check request asks about one of those two; `counts.register`
says how many women each village must hold (its own random stream: every other figure stays).
`counts.townships` gives, per township code (and `unplaced`), what the population report's 分乡镇
table must show for the month: hospital births by the mother's address, deaths by age band and
newborn registrations (往年出生补报 apart) by the registered address, each by sex where it has one.

`supply=previous` makes this month carry the missing record for the first half (rounded
down) of each rule's exactly-keyed planted items of `previous` (`supplied` in the
manifest); the fallback pair is never supplied.
"""

from __future__ import annotations

import calendar
import datetime as dt
import io
import json
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from stdnum.cn import ric

HOSPITAL = "hospital"
POLICE = "police"
CIVIL = "civil-affairs"
SCHOOL = "school"
HOUSING = "housing"
PLATFORM = "national-platform"

RULES = (
    "unregistered-births",
    "births-without-hospital-record",
    "deaths-without-cremation",
    "cremations-without-death",
    "tenants-without-residence-permit",
)
# How many of each a planted month holds (the fallback pair comes on top of the deaths and cremations).
PLANTED = {
    "unregistered-births": 4,
    "births-without-hospital-record": 3,
    "deaths-without-cremation": 3,
    "cremations-without-death": 2,
    "tenants-without-residence-permit": 5,
}

COUNTY = "440781"
BIRTH_DIVISIONS = ("440781", "440703", "440783", "440784")
ELSEWHERE = ("430102", "450102", "510722", "360102", "420102")
HOSPITALS = (("台山市人民医院", "12440781MB2C23455K"), ("台山市妇幼保健院", "12440781MB2C345659"))
FUNERAL_HOME = ("台山市殡仪馆", "12440781MB2C12345X")
STATIONS = ("台城派出所", "大江派出所", "水步派出所", "白沙派出所")
TOWNS = ("台城街道", "大江镇", "水步镇", "白沙镇", "四九镇")
SURNAMES = "陈黄李王张刘周吴郑何梁谢罗许邓冯曾彭肖蔡潘田董袁于余叶蒋杜苏魏程吕丁沈任姚卢傅钟"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国志红德文春梅海燕子涵宇轩博浩然欣怡思雨佳琪晨阳"

HOSPITAL_HEADER = (
    "出生医学证明编号,新生儿姓名,性别,出生日期,出生时间,出生体重(克),出生孕周,胎次,母亲姓名,母亲公民身份号码,"
    "父亲姓名,父亲公民身份号码,接生机构名称,接生机构代码,家庭住址,户籍地行政区划代码"
)
POLICE_COLUMNS = (
    "YWLX", "GMSFHM", "XM", "XBDM", "MZDM", "CSRQ", "HH", "YHZGXDM", "HJDZ", "HJDZ_XZQHDM", "BDRQ", "BDYY",
    "QYDZ", "QYDZ_XZQHDM", "ZQZBH", "JZZBH", "JZZYXQZ", "CSYXZMBH", "DJPCS",
)
SCHOOL_HEADER = (
    "学籍号,姓名,性别,出生日期,身份证件类型,身份证件号,学校标识码,学校名称,学段,入学年月,户口所在地,现住址,"
    "监护人1姓名,监护人1身份证件号"
)


@dataclass(frozen=True)
class PlantedDiscrepancy:
    """One discrepancy a correct gateway must find: `key` is the subject's identifier as
    the rule reports it: the birth certificate number (births), the ID number (deaths,
    cremations, tenants), or the cremation certificate number (证号) for a cremation
    recorded without the ID number."""

    rule: str
    key: str
    event_date: dt.date
    proposal: bool = False
    """True when the records match only by the fallback (name and birth date): a proposal."""

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "key": self.key, "event_date": self.event_date.isoformat(), "proposal": self.proposal}


@dataclass
class SampleMonth:
    """One generated month: the files per department, the planted discrepancies, the
    records of `supply`'s discrepancies this month closes, and the expected counts."""

    year: int
    month: int
    files: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    planted: list[PlantedDiscrepancy] = field(default_factory=list)
    supplied: list[PlantedDiscrepancy] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    details: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict, repr=False)
    """What a later month needs to supply each planted item's missing record (not in the manifest)."""

    @property
    def label(self) -> str:
        return f"{self.year:04d}{self.month:02d}"

    def planted_keys(self, rule: str) -> set[str]:
        return {p.key for p in self.planted if p.rule == rule}

    def supplied_keys(self, rule: str) -> set[str]:
        return {p.key for p in self.supplied if p.rule == rule}

    def drop(self, mailbox_root: Path, *, age: float = 60.0) -> list[Path]:
        """Write every file into `mailbox_root/<department>/inbox/` as a client does
        (NAME.part, then rename), with an mtime `age` seconds old so it is settled."""
        written = []
        for department, files in self.files.items():
            inbox = Path(mailbox_root) / department / "inbox"
            inbox.mkdir(parents=True, exist_ok=True)
            for name, data in files:
                partial = inbox / (name + ".part")
                partial.write_bytes(data)
                target = inbox / name
                os.replace(partial, target)
                if age:
                    past = dt.datetime.now().timestamp() - age
                    os.utime(target, (past, past))
                written.append(target)
        return written

    def write(self, folder: Path) -> Path:
        """Write the files under `folder/<department>/` and `manifest.json` beside them."""
        folder = Path(folder)
        for department, files in self.files.items():
            (folder / department).mkdir(parents=True, exist_ok=True)
            for name, data in files:
                (folder / department / name).write_bytes(data)
        path = folder / "manifest.json"
        path.write_text(json.dumps(self.manifest(), ensure_ascii=False, indent=2), encoding="utf-8")
        return path

    def manifest(self) -> dict[str, Any]:
        """What a correct gateway finds: planted and supplied discrepancies, per rule, and the counts."""
        return {
            "month": f"{self.year:04d}-{self.month:02d}",
            "files": {department: [name for name, _ in files] for department, files in self.files.items()},
            "planted": {rule: sorted(p.key for p in self.planted if p.rule == rule) for rule in RULES},
            "planted_items": [p.to_json() for p in self.planted],
            "proposals": {rule: sorted(p.key for p in self.planted if p.rule == rule and p.proposal) for rule in RULES},
            "supplied": {rule: sorted(p.key for p in self.supplied if p.rule == rule) for rule in RULES},
            "counts": self.counts,
        }


# -- identities -----------------------------------------------------------------------------


class _People:
    """Unique valid ID numbers and names for one month (seeded)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.ids: set[str] = set()
        self.names: set[str] = set()

    def id_number(self, division: str, born: dt.date, sex: str) -> str:
        while True:
            sequence = self.rng.randrange(0, 500) * 2 + (1 if sex == "1" else 0)
            if sequence == 0:
                continue
            body = f"{division}{born:%Y%m%d}{sequence:03d}"
            number = body + ric.calc_check_digit(body + "0")
            if number not in self.ids:
                self.ids.add(number)
                return number

    def name(self, surname: str | None = None) -> str:
        while True:
            given = "".join(self.rng.choice(GIVEN) for _ in range(self.rng.choice((1, 2, 2))))
            candidate = (surname or self.rng.choice(SURNAMES)) + given
            if candidate not in self.names:
                self.names.add(candidate)
                return candidate

    def birth_date(self, on: dt.date, min_age: int, max_age: int) -> dt.date:
        # Born between max_age and min_age years before `on`, never on 29 February.
        year = on.year - self.rng.randint(min_age, max_age)
        return dt.date(year, self.rng.randint(1, 12), self.rng.randint(1, 28))


def _day(rng: random.Random, year: int, month: int, first: int = 1, last: int | None = None) -> dt.date:
    last = last or calendar.monthrange(year, month)[1]
    return dt.date(year, month, rng.randint(first, last))


def _ymd(day: dt.date) -> str:
    return f"{day:%Y%m%d}"


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


# -- the month ------------------------------------------------------------------------------


def generate_month(
    year: int,
    month: int,
    *,
    seed: int | None = None,
    plant: bool = True,
    supply: SampleMonth | None = None,
    births: int = 40,
    deaths: int = 20,
    tenants: int = 20,
) -> SampleMonth:
    """Generate one month's exports for all six departments (see the module docstring).

    :param seed: default: derived from the month, so the same call gives the same bytes.
    :param plant: plant the discrepancies of `PLANTED` (False: every record has its match).
    :param supply: an earlier generated month whose missing records this month partly supplies.
    :param births: hospital births whose police registration is in order (on top of the planted).
    """
    rng = random.Random(seed if seed is not None else year * 100 + month)
    people = _People(rng)
    result = SampleMonth(year, month)
    last_day = calendar.monthrange(year, month)[1]
    hospital_rows: list[list[str]] = []
    police_rows: list[dict[str, str]] = []
    civil_elements: list[str] = []
    counts: dict[str, Any] = {}
    planted_day = lambda: _day(rng, year, month, 1, 20)  # noqa: E731 - due by the end of next month

    def household(division: str = COUNTY) -> str:
        return f"{division}{rng.randint(100000, 999999)}"

    def address(division: str = COUNTY) -> str:
        if division == COUNTY:
            return f"广东省台山市{rng.choice(TOWNS)}{rng.randint(1, 99)}号"
        return f"外省市{division}某街道{rng.randint(1, 99)}号"

    cert_serial = [0]

    def certificate_no(series: str = "Q") -> str:
        cert_serial[0] += 1
        return f"{series}{COUNTY}{year % 100:02d}{month:02d}{cert_serial[0]:04d}"

    # -- births: hospital certificates and police newborn registrations ------------------

    def hospital_birth(born: dt.date, cert: str) -> dict[str, str]:
        sex = rng.choice("12")
        division = rng.choice(BIRTH_DIVISIONS)
        mother_born = people.birth_date(born, 22, 38)
        surname = rng.choice(SURNAMES)
        mother = people.name()
        father = people.name(surname) if rng.random() < 0.8 else ""
        child = people.name(surname if father else mother[0])
        institution, code = rng.choice(HOSPITALS)
        hospital_rows.append([
            cert, child, "男" if sex == "1" else "女", born.isoformat(),
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}", str(rng.randint(2600, 4200)), str(rng.randint(37, 41)),
            str(rng.randint(1, 3)), mother, people.id_number(division, mother_born, "2"),
            father, people.id_number(division, people.birth_date(born, 24, 40), "1") if father else "",
            institution, code, address(division), division,
        ])
        return {"child": child, "sex": sex, "born": born.isoformat(), "division": division}

    def police_birth(born: dt.date, cert: str, child: str, sex: str, registered: dt.date) -> None:
        police_rows.append({
            "YWLX": "出生登记", "GMSFHM": people.id_number(COUNTY, born, sex), "XM": child, "XBDM": sex, "MZDM": "01",
            "CSRQ": _ymd(born), "HH": household(), "YHZGXDM": "20", "HJDZ": address(), "HJDZ_XZQHDM": COUNTY,
            "BDRQ": _ymd(registered), "BDYY": "出生", "CSYXZMBH": cert, "DJPCS": rng.choice(STATIONS),
        })

    for _ in range(births):
        born = _day(rng, year, month)
        cert = certificate_no()
        info = hospital_birth(born, cert)
        registered = min(born + dt.timedelta(days=rng.randint(1, 6)), dt.date(year, month, last_day))
        police_birth(born, cert, info["child"], info["sex"], registered)
    if plant:
        for _ in range(PLANTED["unregistered-births"]):
            born = planted_day()
            cert = certificate_no()
            result.details[("unregistered-births", cert)] = hospital_birth(born, cert)
            result.planted.append(PlantedDiscrepancy("unregistered-births", cert, born))
        for _ in range(PLANTED["births-without-hospital-record"]):
            born = planted_day()
            cert = certificate_no("H")  # a home birth's certificate, issued by another county's office
            sex, child = rng.choice("12"), people.name()
            police_birth(born, cert, child, sex, born + dt.timedelta(days=rng.randint(0, 5)))
            result.details[("births-without-hospital-record", cert)] = {"child": child, "sex": sex, "born": born.isoformat()}
            result.planted.append(PlantedDiscrepancy("births-without-hospital-record", cert, born))

    # -- deaths and cremations ------------------------------------------------------------
    cremation_serial = [0]

    def cremation(died: dt.date, name: str, born: dt.date, sex: str, id_number: str | None, cremated: dt.date) -> str:
        cremation_serial[0] += 1
        number = f"H{COUNTY}-{year}-{month:02d}{cremation_serial[0]:03d}"
        person = f"姓名={quoteattr(name)}"
        if id_number:
            person += f" 公民身份号码={quoteattr(id_number)}"
        else:  # no ID number: the fallback needs the birth date and sex
            person += f" 出生日期={quoteattr(born.isoformat())} 性别={quoteattr(sex)}"
        person += f" 死亡日期={quoteattr(died.isoformat())} 死亡证明编号={quoteattr(f'S{year}-{month:02d}{cremation_serial[0]:03d}')}"
        civil_elements.append(
            f'  <火化登记 证号={quoteattr(number)} 殡仪馆={quoteattr(FUNERAL_HOME[0])} 殡仪馆代码={quoteattr(FUNERAL_HOME[1])} '
            f'火化日期={quoteattr(cremated.isoformat())}>\n    <逝者 {person}/>\n  </火化登记>'
        )
        return number

    def police_death(died: dt.date, name: str, born: dt.date, sex: str, id_number: str) -> None:
        police_rows.append({
            "YWLX": "死亡注销", "GMSFHM": id_number, "XM": name, "XBDM": sex, "MZDM": "01", "CSRQ": _ymd(born),
            "HH": household(), "YHZGXDM": "01", "HJDZ": address(), "HJDZ_XZQHDM": COUNTY, "BDRQ": _ymd(died),
            "BDYY": "死亡", "DJPCS": rng.choice(STATIONS),
        })

    def person(on: dt.date, min_age: int, max_age: int, division: str = COUNTY) -> tuple[str, dt.date, str, str]:
        sex = rng.choice("12")
        born = people.birth_date(on, min_age, max_age)
        return people.name(), born, sex, people.id_number(division, born, sex)

    for _ in range(deaths):
        died = _day(rng, year, month, 1, max(1, last_day - 3))
        name, born, sex, number = person(died, 60, 95)
        police_death(died, name, born, sex, number)
        cremation(died, name, born, sex, number, died + dt.timedelta(days=rng.randint(0, 3)))
    if plant:
        for _ in range(PLANTED["deaths-without-cremation"]):
            died = planted_day()
            name, born, sex, number = person(died, 60, 95)
            police_death(died, name, born, sex, number)
            result.details[("deaths-without-cremation", number)] = {
                "name": name, "born": born.isoformat(), "sex": sex, "died": died.isoformat()}
            result.planted.append(PlantedDiscrepancy("deaths-without-cremation", number, died))
        for _ in range(PLANTED["cremations-without-death"]):
            died = planted_day()
            name, born, sex, number = person(died, 60, 95)
            cremation(died, name, born, sex, number, died + dt.timedelta(days=2))
            result.details[("cremations-without-death", number)] = {
                "name": name, "born": born.isoformat(), "sex": sex, "died": died.isoformat(), "id_number": number}
            result.planted.append(PlantedDiscrepancy("cremations-without-death", number, died))
        # The fallback pair: a death, and its cremation without the ID number, one day off on the birth date.
        died = planted_day()
        name, born, sex, number = person(died, 60, 95)
        police_death(died, name, born, sex, number)
        cert = cremation(died, name, born + dt.timedelta(days=1), sex, None, died + dt.timedelta(days=1))
        result.planted.append(PlantedDiscrepancy("deaths-without-cremation", number, died, proposal=True))
        result.planted.append(PlantedDiscrepancy("cremations-without-death", cert, died, proposal=True))

    # -- residence permits and housing tenants ---------------------------------------------
    permit_serial = [0]

    def permit(name: str, born: dt.date, sex: str, number: str, issued: dt.date, home_division: str, here: str) -> None:
        permit_serial[0] += 1
        police_rows.append({
            "YWLX": "居住证", "GMSFHM": number, "XM": name, "XBDM": sex, "MZDM": "01", "CSRQ": _ymd(born),
            "HJDZ": address(home_division), "HJDZ_XZQHDM": home_division, "BDRQ": _ymd(issued), "BDYY": "就业",
            "QYDZ": here, "QYDZ_XZQHDM": COUNTY, "JZZBH": f"JZ{COUNTY}-{year}-{month:02d}{permit_serial[0]:03d}",
            "JZZYXQZ": _ymd(issued.replace(year=issued.year + 1)), "DJPCS": rng.choice(STATIONS),
        })

    housing_items: list[dict[str, Any]] = []
    property_serial = [0]

    def property_item(occupants: list[dict[str, Any]], updated: dt.date) -> None:
        property_serial[0] += 1
        owner_name, owner_born, owner_sex, owner_id = person(updated, 35, 70)
        housing_items.append({
            "propertyCertNo": f"粤({year - rng.randint(1, 15)})台山市不动产权第{year % 100:02d}{month:02d}{property_serial[0]:03d}号",
            "divisionCode": COUNTY,
            "community": f"{rng.choice(TOWNS)}社区",
            "address": address(),
            "building": str(rng.randint(1, 20)),
            "unit": str(rng.randint(1, 4)),
            "room": str(rng.randint(101, 1802)),
            "owners": [{"name": owner_name, "idNo": owner_id}],
            "occupants": occupants,
            "rentalRegistered": True,
            "updatedAt": f"{updated.isoformat()}T{rng.randint(8, 17):02d}:{rng.randint(0, 59):02d}:00+08:00",
        })

    def tenant(moved_in: dt.date) -> tuple[dict[str, Any], tuple[str, dt.date, str, str, str]]:
        division = rng.choice(ELSEWHERE)
        name, born, sex, number = person(moved_in, 20, 50, division)
        return (
            {"name": name, "idNo": number, "role": "tenant", "moveIn": moved_in.isoformat(), "moveOut": None},
            (name, born, sex, number, division),
        )

    tenants_total = 0
    for _ in range(tenants):
        moved_in = _day(rng, year, month, 1, max(1, last_day - 2))
        occupant, (name, born, sex, number, division) = tenant(moved_in)
        property_item([occupant], moved_in)
        permit(name, born, sex, number, min(moved_in + dt.timedelta(days=2), dt.date(year, month, last_day)), division, address())
        tenants_total += 1
    if plant:
        for _ in range(PLANTED["tenants-without-residence-permit"]):
            moved_in = planted_day()
            occupant, (name, born, sex, number, division) = tenant(moved_in)
            property_item([occupant], moved_in)
            result.details[("tenants-without-residence-permit", number)] = {
                "name": name, "born": born.isoformat(), "sex": sex, "division": division}
            tenants_total += 1
            result.planted.append(PlantedDiscrepancy("tenants-without-residence-permit", number, moved_in))
    # Owners and their families are not tenants: no permit needed.
    for _ in range(5):
        updated = _day(rng, year, month)
        name, born, sex, number = person(updated, 30, 60)
        property_item([{"name": name, "idNo": number, "role": "owner", "moveIn": (updated - dt.timedelta(days=400)).isoformat(),
                        "moveOut": None}], updated)

    # -- what `supply` left missing, arriving now ---------------------------------------------
    if supply is not None:
        first_of_month = dt.date(year, month, 1)
        by_rule: dict[str, list[PlantedDiscrepancy]] = {}
        for item in supply.planted:
            if not item.proposal:
                by_rule.setdefault(item.rule, []).append(item)
        for rule, items in by_rule.items():
            for item in items[: len(items) // 2]:
                _supply(item, supply, first_of_month, hospital_rows, police_rows, cremation, police_death, permit, rng, people)
                result.supplied.append(item)

    # -- moves in and out ------------------------------------------------------------------
    for direction, label in (("in", "迁入"), ("out", "迁出")):
        for _ in range(rng.randint(6, 12)):
            moved = _day(rng, year, month)
            far = rng.choice(ELSEWHERE)
            name, born, sex, number = person(moved, 18, 60, far if direction == "in" else COUNTY)
            police_rows.append({
                "YWLX": label, "GMSFHM": number, "XM": name, "XBDM": sex, "MZDM": "01", "CSRQ": _ymd(born),
                "HH": household(), "YHZGXDM": "02", "HJDZ": address(), "HJDZ_XZQHDM": COUNTY, "BDRQ": _ymd(moved),
                "BDYY": "投靠亲属" if direction == "in" else "务工", "QYDZ": address(far), "QYDZ_XZQHDM": far,
                "ZQZBH": f"ZQ{year}-{rng.randint(1000, 9999)}", "DJPCS": rng.choice(STATIONS),
            })

    # -- marriages, divorces, an adoption ----------------------------------------------------
    marriages = divorces = 0
    office = "台山市民政局婚姻登记处"
    for index in range(rng.randint(5, 9)):
        day = _day(rng, year, month)
        kind = "离婚" if index % 4 == 3 else "结婚"
        number = f"{'L' if kind == '离婚' else 'J'}{COUNTY}-{year}-{month:02d}{index + 1:03d}"
        extra = f' 原结婚证号="J{COUNTY}-{year - 8}-000{index}"' if kind == "离婚" else ""
        status = "已婚" if kind == "离婚" else "未婚"
        parties = []
        for role, sex, low in (("男方", "1", 23), ("女方", "2", 21)):
            name, born, _, id_number = (lambda b: (people.name(), b, sex, people.id_number(COUNTY, b, sex)))(people.birth_date(day, low, 40))
            parties.append(
                f'    <当事人 角色="{role}" 姓名={quoteattr(name)} 公民身份号码="{id_number}" 出生日期="{born.isoformat()}" '
                f'国籍="中国" 婚前状况="{status}"/>'
            )
        civil_elements.append(
            f'  <婚姻登记 业务类型="{kind}" 证号="{number}" 登记日期="{day.isoformat()}" 登记机关="{office}"{extra}>\n'
            + "\n".join(parties) + "\n  </婚姻登记>"
        )
        if kind == "结婚":
            marriages += 1
        else:
            divorces += 1
    day = _day(rng, year, month)
    adopter_name, _, _, adopter_id = person(day, 30, 45)
    adoptee_name, adoptee_born, adoptee_sex, adoptee_id = person(day, 2, 6)
    civil_elements.append(
        f'  <收养登记 证号="S{COUNTY}-{year}-{month:02d}001" 登记日期="{day.isoformat()}" 送养方="台山市社会福利院">\n'
        f'    <收养人 姓名={quoteattr(adopter_name)} 公民身份号码="{adopter_id}"/>\n'
        f'    <被收养人 姓名={quoteattr(adoptee_name)} 公民身份号码="{adoptee_id}" 出生日期="{adoptee_born.isoformat()}" 性别="{adoptee_sex}"/>\n'
        "  </收养登记>"
    )

    # -- school enrolments -------------------------------------------------------------------
    school_rows = []
    stages = Counter()
    first = dt.date(year, month, 1)
    for stage, code, school, low, high in (
        ("幼儿园", "2144012345", "台城第一幼儿园", 3, 4),
        ("小学", "2144023456", "台山市实验小学", 6, 6),
        ("初中", "3144034567", "台山市第一中学", 12, 13),
    ):
        for _ in range(rng.randint(3, 6)):
            name, born, sex, number = person(first, low, high)
            guardian, _, _, guardian_id = person(first, 28, 45)
            school_rows.append([
                f"G{number}", name, "男" if sex == "1" else "女", born.isoformat(), "居民身份证", number, code, school, stage,
                f"{year}{month:02d}", "广东省台山市", rng.choice(TOWNS), guardian, guardian_id,
            ])
            stages[stage] += 1

    # -- the register: the county's mothers live in villages, some marry (own seed) --------------
    register, asked, extra_marriages = _place_mothers(year, month, seed, hospital_rows, civil_elements)
    marriages += extra_marriages
    townships = _township_counts(hospital_rows, police_rows)

    # -- the national platform: assist-check requests and a notice ------------------------------
    platform_parts = []
    sent = dt.date(year, month, min(2, last_day))
    for index in range(3):
        name, born, _, number = person(sent, 22, 40, rng.choice(ELSEWHERE))
        if index == 0 and asked is not None:  # the first request asks about a mother of the month
            name, born, number = asked
        platform_parts.append(
            f'  <XCXX XXBH="XC-510722-{sent:%Y%m%d}-{index + 1:04d}" JJCD="{1 + index % 2}" FQSJ="{sent.isoformat()}" FX="HJD_TO_XJZD">\n'
            f'    <DX XM={quoteattr(name)} GMSFHM="{number}" CSRQ="{born.isoformat()}" XJZD="广东省台山市{rng.choice(TOWNS)}"/>\n'
            '    <XCNR LB="01,05">基本信息、流入信息</XCNR>\n  </XCXX>'
        )
    name, born, _, number = person(sent, 22, 40, "510722")
    platform_parts.append(
        f'  <TBXX XXBH="TB-510722-{sent:%Y%m%d}-0001" LB="09" XYFK="1" FQSJ="{sent.isoformat()}">\n'
        f'    <DX XM={quoteattr(name)} GMSFHM="{number}" CSRQ="{born.isoformat()}"/>\n'
        "    <TBNR>生育信息通报</TBNR>\n  </TBXX>"
    )

    # -- the files ---------------------------------------------------------------------------
    label = f"{year:04d}{month:02d}"
    hospital_text = "\r\n".join([HOSPITAL_HEADER, *(",".join(row) for row in hospital_rows)]) + "\r\n"
    buffer = io.StringIO()
    buffer.write(",".join(POLICE_COLUMNS) + "\n")
    for row in police_rows:
        buffer.write(",".join(row.get(column, "") for column in POLICE_COLUMNS) + "\n")
    civil_text = (
        '<?xml version="1.0" encoding="GB18030"?>\n'
        f'<民政数据交换 版本="1.0" 机关代码="{COUNTY}" 导出时间="{_next(year, month)}T08:00:00+08:00">\n'
        + "\n".join(civil_elements) + "\n</民政数据交换>\n"
    )
    school_text = "\r\n".join([SCHOOL_HEADER, *(",".join(row) for row in school_rows)]) + "\r\n"
    platform_text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<JHXX BBH="2.0" FSDW="510722" JSDW="{COUNTY}" FSSJ="{sent.isoformat()}T10:00:00+08:00" CURSOR="{sent:%Y%m%d}100000-{len(platform_parts):04d}">\n'
        + "\n".join(platform_parts) + "\n</JHXX>\n"
    )
    result.files = {
        HOSPITAL: [(f"hospital_births_{label}.csv", hospital_text.encode("gb18030"))],
        POLICE: [(f"police_hukou_{label}.csv", ("\ufeff" + buffer.getvalue()).encode("utf-8"))],
        CIVIL: [(f"civil_affairs_{label}.xml", civil_text.encode("gb18030"))],
        SCHOOL: [(f"school_enrolments_{label}.csv", school_text.encode("gb18030"))],
        HOUSING: [(f"housing_occupancy_{label}.json", json.dumps({"items": housing_items}, ensure_ascii=False, indent=2).encode("utf-8"))],
        PLATFORM: [(f"national_platform_inbound_{label}02.xml", platform_text.encode("utf-8"))],
    }
    hospital_births = Counter((row[15], "1" if row[2] == "男" else "2") for row in hospital_rows)
    police = Counter(row["YWLX"] for row in police_rows)
    police_births = Counter(row["XBDM"] for row in police_rows if row["YWLX"] == "出生登记")
    births_by = {
        division: {"male": hospital_births[(division, "1")], "female": hospital_births[(division, "2")]}
        for division in sorted({d for d, _ in hospital_births})
    }
    counts.update({
        "hospital_births": len(hospital_rows),
        "births_by_division_and_sex": births_by,
        "births_by_sex": {"male": sum(v["male"] for v in births_by.values()), "female": sum(v["female"] for v in births_by.values())},
        "police_birth_registrations": police["出生登记"],
        "police_birth_registrations_by_sex": {"male": police_births["1"], "female": police_births["2"]},
        "deaths": police["死亡注销"],
        "cremations": sum(1 for element in civil_elements if element.startswith("  <火化登记")),
        "moves_in": police["迁入"],
        "moves_out": police["迁出"],
        "residence_permits": police["居住证"],
        "marriages": marriages,
        "divorces": divorces,
        "adoptions": 1,
        "enrolments": sum(stages.values()),
        "enrolments_by_stage": dict(stages),
        "housing_items": len(housing_items),
        "tenants": tenants_total,
        "register": register,
        "townships": townships,
        "assist_check_requests": 3,
        "platform_notices": 1,
        "records": {
            HOSPITAL: len(hospital_rows),
            POLICE: len(police_rows),
            CIVIL: len(civil_elements),
            SCHOOL: len(school_rows),
            HOUSING: len(housing_items),
            PLATFORM: len(platform_parts),
        },
    })
    result.counts = counts
    return result


# The villages of the example HOME/divisions.csv (gateway/register/divisions.py) by township.
VILLAGES = {
    "台城街道": (("440781001001", "城东社区"), ("440781001002", "城西社区")),
    "大江镇": (("440781101201", "公益村"), ("440781101202", "麦巷村")),
    "水步镇": (("440781102201", "水步村"),),
    "四九镇": (("440781103201", "四九村"),),
    "白沙镇": (("440781104201", "白沙村"),),
}
UNLISTED_VILLAGE = "新围村"  # in no divisions.csv: its mothers are listed as unmatched


def _place_mothers(
    year: int, month: int, seed: int | None, hospital_rows: list[list[str]], civil_elements: list[str]
) -> tuple[dict[str, Any], tuple[str, dt.date, str] | None, int]:
    """Give the county's mothers (户籍 in the county) a village in their address, a few a village
    that no divisions.csv lists, marry two of them, and count what the register must hold.
    Its own random stream, so every other figure of the month stays as it was."""
    rng = random.Random((seed if seed is not None else year * 100 + month) * 7919 + 18)
    people = _People(rng)
    villages = [(town, code, name) for town, listed in VILLAGES.items() for code, name in listed]
    placed: dict[str, tuple[str, str | None]] = {}  # mother's ID -> (address, village code or None)
    for row in hospital_rows:
        mother = row[9]
        if row[15] != COUNTY or not mother:
            continue
        if mother not in placed:
            town, code, name = rng.choice(villages)
            unlisted = rng.random() < 0.15
            address = f"广东省台山市{town}{UNLISTED_VILLAGE if unlisted else name}{rng.randint(1, 99)}号"
            placed[mother] = (address, None if unlisted else code)
        row[14] = placed[mother][0]
    women = Counter(code for _, code in placed.values() if code)
    married: Counter[str] = Counter()
    wives = [(row[8], row[9]) for row in hospital_rows if row[9] in placed and placed[row[9]][1]]
    wives = list(dict.fromkeys(wives))[:2]
    for index, (name, number) in enumerate(wives):
        born = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        day = _day(rng, year, month, 1, 20)
        husband_born = people.birth_date(day, 24, 40)
        husband = people.id_number(COUNTY, husband_born, "1")
        civil_elements.append(
            f'  <婚姻登记 业务类型="结婚" 证号="J{COUNTY}-{year}-{month:02d}9{index:02d}" 登记日期="{day.isoformat()}" '
            f'登记机关="台山市民政局婚姻登记处">\n'
            f'    <当事人 角色="男方" 姓名={quoteattr(people.name())} 公民身份号码="{husband}" 出生日期="{husband_born.isoformat()}" '
            f'国籍="中国" 婚前状况="未婚"/>\n'
            f'    <当事人 角色="女方" 姓名={quoteattr(name)} 公民身份号码="{number}" 出生日期="{born.isoformat()}" '
            f'国籍="中国" 婚前状况="未婚"/>\n  </婚姻登记>'
        )
        married[placed[number][1]] += 1  # type: ignore[index]
    asked = None
    if wives:
        name, number = wives[0]
        asked = (name, dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14])), number)
    register = {
        "as_of": dt.date(year, month, calendar.monthrange(year, month)[1]).isoformat(),
        "women_by_village": dict(sorted(women.items())),
        "married_women_by_village": dict(sorted(married.items())),
        "unmatched_mothers": sum(1 for _, code in placed.values() if code is None),
        "assist_check_about_a_mother": f"XC-510722-{year:04d}{month:02d}02-0001" if asked else None,
    }
    return register, asked, len(wives)


# The population report's 分乡镇 age bands (gateway/register/township_report.py), counted here independently.
DEATH_AGE_BANDS = (("0", 0, 0), ("1-14", 1, 14), ("15-49", 15, 49), ("50-64", 50, 64), ("65+", 65, 200))
UNPLACED = "unplaced"


def _township_of(address: str) -> str:
    """The 12-digit code of the township an address names, or `unplaced` (another county's address)."""
    named = [listed[0][0][:9] + "000" for town, listed in VILLAGES.items() if town in address]
    return named[0] if len(named) == 1 else UNPLACED


def _age(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _township_counts(hospital_rows: list[list[str]], police_rows: list[dict[str, str]]) -> dict[str, Any]:
    """Per township (and `unplaced`): the month's figures of the population report's 分乡镇 table.
    Hospital births by the mother's address, deaths and newborn registrations by the registered address."""
    sexes = lambda: {"male": 0, "female": 0}  # noqa: E731
    found: dict[str, Any] = {
        code: {"hospital_births": sexes(), "infant_deaths": sexes(), "deaths": {band: sexes() for band, _, _ in DEATH_AGE_BANDS},
               "registrations": 0, "late_registrations": 0}
        for code in [*(listed[0][0][:9] + "000" for listed in VILLAGES.values()), UNPLACED]
    }
    for row in hospital_rows:
        found[_township_of(row[14])]["hospital_births"]["male" if row[2] == "男" else "female"] += 1
    for row in police_rows:
        day = dt.date(int(row["BDRQ"][:4]), int(row["BDRQ"][4:6]), int(row["BDRQ"][6:8]))
        born = dt.date(int(row["CSRQ"][:4]), int(row["CSRQ"][4:6]), int(row["CSRQ"][6:8]))
        place = found[_township_of(row["HJDZ"])]
        if row["YWLX"] == "出生登记":
            place["late_registrations" if born.year < day.year else "registrations"] += 1
        elif row["YWLX"] == "死亡注销":
            sex, age = "male" if row["XBDM"] == "1" else "female", _age(born, day)
            if age < 1:
                place["infant_deaths"][sex] += 1
            place["deaths"][next(band for band, low, high in DEATH_AGE_BANDS if low <= age <= high)][sex] += 1
    return found


def _next(year: int, month: int) -> str:
    next_year, next_month = _next_month(year, month)
    return f"{next_year:04d}-{next_month:02d}-01"


def _supply(item, previous, first_of_month, hospital_rows, police_rows, cremation, police_death, permit, rng, people) -> None:  # type: ignore[no-untyped-def]
    """Add to this month the record whose absence made `item` a discrepancy."""
    detail = previous.details.get((item.rule, item.key))
    if detail is None:
        raise ValueError(f"{item.rule} {item.key}: the earlier month kept no detail to supply it from")
    arrives = first_of_month + dt.timedelta(days=rng.randint(0, 9))
    if item.rule == "unregistered-births":
        born = dt.date.fromisoformat(detail["born"])
        police_rows.append({
            "YWLX": "出生登记", "GMSFHM": people.id_number(COUNTY, born, detail["sex"]), "XM": detail["child"],
            "XBDM": detail["sex"], "MZDM": "01", "CSRQ": _ymd(born), "HH": f"{COUNTY}{rng.randint(100000, 999999)}",
            "YHZGXDM": "20", "HJDZ": f"广东省台山市{rng.choice(TOWNS)}", "HJDZ_XZQHDM": COUNTY, "BDRQ": _ymd(arrives),
            "BDYY": "出生", "CSYXZMBH": item.key, "DJPCS": rng.choice(STATIONS),
        })
    elif item.rule == "births-without-hospital-record":
        sex = detail["sex"]
        mother_born = people.birth_date(dt.date.fromisoformat(detail["born"]), 22, 38)
        institution, code = HOSPITALS[0]
        hospital_rows.append([
            item.key, detail["child"], "男" if sex == "1" else "女", detail["born"], "08:00", "3100", "39", "1",
            people.name(), people.id_number(COUNTY, mother_born, "2"), "", "", institution, code,
            f"广东省台山市{rng.choice(TOWNS)}", COUNTY,
        ])
    elif item.rule == "deaths-without-cremation":
        died = dt.date.fromisoformat(detail["died"])
        cremation(died, detail["name"], dt.date.fromisoformat(detail["born"]), detail["sex"], item.key, arrives)
    elif item.rule == "cremations-without-death":
        police_death(dt.date.fromisoformat(detail["died"]), detail["name"], dt.date.fromisoformat(detail["born"]),
                     detail["sex"], detail["id_number"])
    elif item.rule == "tenants-without-residence-permit":
        permit(detail["name"], dt.date.fromisoformat(detail["born"]), detail["sex"], item.key, arrives,
               detail["division"], f"广东省台山市{rng.choice(TOWNS)}")
