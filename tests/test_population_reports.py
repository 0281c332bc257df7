"""Population reports (gateway/population_reports/, docs/reports.md): figures checked
against a count made here from the generated month's files, each balance check failing on
a purposely unbalanced input and naming the place, the XLSX/CSV/HTML files, the early
warning, and scheduled production into the office's outbox, signed."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import subprocess
from collections import Counter

import pytest
from openpyxl import load_workbook

import conftest
from conftest import drop, run_gateway
from gateway import clock
from gateway.population_reports import periods
from gateway.population_reports.figures import TOTAL, build
from gateway.population_reports.scheduled import produce_due, report_job
from gateway.population_reports.warning import build_warning
from gateway.devkit.sample_month import generate_month
from gateway.scheduler.runner import run_job

MONTH = periods.monthly("2026-10")  # 2026-09-21 – 2026-10-20
FULL_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
POLICE_ITEMS = {"出生登记": "births", "死亡注销": "deaths", "迁入": "moves_in", "迁出": "moves_out", "居住证": "residence_permits"}


@pytest.fixture
def sample(gateway, settings):
    """October 2026 from all six departments, through the real pipeline."""
    month = generate_month(2026, 10)
    month.drop(settings.mailbox_root)
    outcomes = gateway.run_once()
    assert {o.status for o in outcomes} == {"processed"}
    return month


def _file(month, department: str) -> str:
    [(_, data)] = month.files[department]
    return data.decode("utf-8-sig" if department == "police" else "gb18030")


def _ymd(text: str) -> dt.date:
    return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8])) if "-" not in text else dt.date.fromisoformat(text)


def independent_count(month, period: periods.Period) -> dict:
    """The report's figures counted straight from the files the departments sent."""
    by_division: Counter = Counter()  # (division, item, sex)
    totals: Counter = Counter()  # (item, sex)
    women: Counter = Counter()  # (division, item)
    police = list(csv.DictReader(io.StringIO(_file(month, "police"))))
    for row in police:
        day = _ymd(row["BDRQ"])
        if not period.contains(day):
            continue
        item = POLICE_ITEMS[row["YWLX"]]
        division = row["QYDZ_XZQHDM"] if item == "residence_permits" else row["HJDZ_XZQHDM"]
        by_division[(division, item, row["XBDM"])] += 1
        totals[(item, row["XBDM"])] += 1
        born = _ymd(row["CSRQ"])
        age = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
        if item in ("moves_in", "moves_out") and row["XBDM"] == "2" and 15 <= age <= 49:
            women[(division, item)] += 1
    civil = _file(month, "civil-affairs")
    for kind, day, body in re.findall(r'<婚姻登记 业务类型="(结婚|离婚)"[^>]*登记日期="([\d-]+)"[^>]*>(.*?)</婚姻登记>', civil, re.S):
        if period.contains(dt.date.fromisoformat(day)):
            item = "marriages" if kind == "结婚" else "divorces"
            totals[(item, "1")] += 1
            totals[(item, "2")] += 1
    for row in csv.DictReader(io.StringIO(_file(month, "school"))):
        if period.contains(dt.date(int(row["入学年月"][:4]), int(row["入学年月"][4:]), 1)):
            totals[("enrolments", "1" if row["性别"] == "男" else "2")] += 1
    occurred: dict[str, tuple[dt.date, str]] = {}
    for row in csv.DictReader(io.StringIO(_file(month, "hospital"))):
        occurred[row["出生医学证明编号"]] = (dt.date.fromisoformat(row["出生日期"]), "1" if row["性别"] == "男" else "2")
    for row in police:
        if row["YWLX"] == "出生登记" and row["CSYXZMBH"] not in occurred:
            occurred[row["CSYXZMBH"]] = (_ymd(row["CSRQ"]), row["XBDM"])
    births = Counter(sex for day, sex in occurred.values() if period.contains(day))
    return {"by_division": by_division, "totals": totals, "women": women, "births": births}


def test_figures_match_a_count_made_from_the_departments_files(gateway, settings, sample):
    quarter = periods.quarterly("2026Q4")  # 2026-09-21 – 2026-12-20: the whole generated month
    for period in (MONTH, quarter):
        expected = independent_count(sample, period)
        report = build(gateway.engine, settings, period)
        assert report.balanced, [f.text() for f in report.failures]
        rows = {row.division: row for row in report.changes}
        for (division, item, sex), count in expected["by_division"].items():
            assert rows[division].counts[item][0 if sex == "1" else 1] == count, (period.label, division, item, sex)
        for item in ("births", "deaths", "moves_in", "moves_out", "residence_permits", "marriages", "divorces", "enrolments"):
            male, female = expected["totals"][(item, "1")], expected["totals"][(item, "2")]
            assert rows[TOTAL].counts[item] == [male, female, male + female], (period.label, item)
        assert report.occurred == [expected["births"]["1"], expected["births"]["2"], sum(expected["births"].values())]
        assert report.sex_ratio == pytest.approx(expected["births"]["1"] * 100 / expected["births"]["2"])
    # The month holds only what falls on 21 September – 20 October; the quarter holds all of October.
    assert rows[TOTAL].counts["births"][2] == sample.counts["police_birth_registrations"]
    assert rows[TOTAL].counts["adoptions"][2] == sample.counts["adoptions"]
    women = {row.division: (row.moves_in, row.moves_out) for row in report.women}
    assert women[TOTAL] == (sum(v for (d, i), v in expected["women"].items() if i == "moves_in"),
                            sum(v for (d, i), v in expected["women"].items() if i == "moves_out"))
    assert women[TOTAL] != (0, 0)
    assert build(gateway.engine, settings, MONTH).women is None  # only the quarter has that table


def test_a_correction_replaces_the_record_it_corrects(gateway, settings, sample):
    before = build(gateway.engine, settings, MONTH).changes[-1].counts["deaths"]
    [death] = [r for r in csv.DictReader(io.StringIO(_file(sample, "police"))) if r["YWLX"] == "死亡注销" and MONTH.contains(_ymd(r["BDRQ"]))][:1]
    header = list(death)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerow([{**death, "BDYY": "死亡(更正)"}.get(c, "") for c in header])
    drop(settings, "police", "police_correction.csv", out.getvalue().encode("utf-8-sig"))
    [outcome] = gateway.run_once()
    assert outcome.corrected == 1
    assert build(gateway.engine, settings, MONTH).changes[-1].counts["deaths"] == before


def test_each_balance_check_fails_on_unbalanced_input_and_names_the_place(gateway, settings, sample):
    expected = independent_count(sample, MONTH)
    header = "YWLX,GMSFHM,XM,XBDM,MZDM,CSRQ,HH,YHZGXDM,HJDZ,HJDZ_XZQHDM,BDRQ,BDYY,QYDZ,QYDZ_XZQHDM,ZQZBH,JZZBH,JZZYXQZ,CSYXZMBH,DJPCS"
    rows = [
        # a death whose sex is 9 未说明: counted in 合计 only
        "死亡注销,440781193804050137,刘大爷,9,01,19380405,440781000456,01,广东省台山市白沙镇,440781,20261011,死亡,,,,,,,白沙派出所",
        # a move in without the division code: counted in the total row only
        "迁入,450102199606112246,覃桂花,2,12,19960611,440781000789,02,广东省台山市台城街道,,20261015,投靠配偶,广西壮族自治区南宁市兴宁区,450102,ZQ2026-0789,,,,台城派出所",
    ]
    drop(settings, "police", "police_extra.csv", ("\n".join([header, *rows]) + "\n").encode("utf-8-sig"))
    gateway.run_once()
    # Snapshots: the start is counted, the end is off by 5 men.
    start_m, start_f = 60000, 58000
    net = Counter()
    for (division, item, sex), count in expected["by_division"].items():
        if division == "440781" and item in ("births", "deaths", "moves_in", "moves_out"):
            net[sex] += count * (1 if item in ("births", "moves_in") else -1)
    end_m, end_f = start_m + net["1"] + 5, start_f + net["2"]
    (settings.home / "population_snapshots.csv").write_text(
        f"时点,行政区划代码,男,女\n2026-09-20,440781,{start_m},{start_f}\n2026-10-20,440781,{end_m},{end_f}\n", encoding="utf-8-sig"
    )
    report = build(gateway.engine, settings, MONTH)
    assert not report.balanced and report.status == "不平衡 unbalanced"
    found = {(f.check, f.table, f.row, f.column): f for f in report.failures}
    sex = found[("sex", "人口变动", TOTAL, "死亡")]
    assert (sex.expected, sex.found) == (sex.found + 1, sex.found) and "1 with the sex unknown" in sex.detail
    divisions = found[("divisions", "人口变动", TOTAL, "迁入 合计")]
    assert divisions.expected - divisions.found == 1 and "without a 行政区划代码" in divisions.detail
    population = found[("population", "户籍人口", "440781", "期末 男")]
    assert (population.found - population.expected) == 5 and f"期初 {start_m}" in population.detail and "+5" in population.detail
    assert ("population", "户籍人口", "440781", "期末 女") not in found  # women add up
    # The CLI still writes every file, marks it unbalanced, and says where; exit status 3.
    out = settings.home / "out"
    result = run_gateway(settings.home, "report", "monthly", "--month", "2026-10", "--out", str(out), "--json", check=False)
    assert result.returncode == 3, result.stderr
    summary = json.loads(result.stdout)
    assert summary["balanced"] is False and summary["status"] == "不平衡 unbalanced"
    assert {(f["check"], f["row"], f["column"]) for f in summary["failures"]} >= {("population", "440781", "期末 男"), ("sex", TOTAL, "死亡")}
    page = (out / "population-monthly-2026-10.html").read_text(encoding="utf-8")
    assert "不平衡 unbalanced" in page and "期末 男" in page
    checks = load_workbook(out / "population-monthly-2026-10.xlsx")["平衡检查"]
    assert any(row[2] == "440781" and row[3] == "期末 男" for row in checks.iter_rows(min_row=3, values_only=True))


def test_xlsx_csv_and_html_files(gateway, settings, sample):
    out = settings.home / "out"
    result = run_gateway(settings.home, "report", "quarterly", "--quarter", "2026Q4", "--out", str(out), "--json")
    summary = json.loads(result.stdout)
    assert summary["balanced"] is True and summary["period"] == "2026Q4"
    stem = out / "population-quarterly-2026Q4"
    book = load_workbook(f"{stem}.xlsx")
    assert book.sheetnames == ["人口变动", "户籍人口", "出生死亡与性别比", "育龄妇女迁移", "分乡镇", "平衡检查"]
    # No divisions.csv in this home: the county only, the items no feed holds said as such.
    townships = list(book["分乡镇"].iter_rows(min_row=3, values_only=True))
    assert [row[:2] for row in townships] == [
        (None, "未落到乡镇 unplaced"), (TOTAL, "全县 county"),
        ("围产期保健 perinatal care", "未掌握：本网关未接入该数据 / not held by any feed"),
        ("防疫 immunisation", "未掌握：本网关未接入该数据 / not held by any feed")]
    assert townships[1][-2] + townships[1][-1] == summary["totals"]["births"]["total"]
    assert any("no HOME/divisions.csv" in note for note in summary["notes"])
    changes = list(book["人口变动"].iter_rows(min_row=2, values_only=True))
    assert changes[0][:4] == ("行政区划代码", "出生 男", "出生 女", "出生 合计") and "居住证 合计" in changes[0]
    total = changes[-1]
    assert total[0] == TOTAL and total[1:4] == tuple(summary["totals"]["births"][k] for k in ("male", "female", "total"))
    assert all(isinstance(v, int) for v in total[1:])
    raw = (out / "population-quarterly-2026Q4.changes.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))[-1] == [str(v) for v in total]
    page = (out / "population-quarterly-2026Q4.html").read_text(encoding="utf-8")
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert page.count("<svg") == 2 and not FULL_ID.search(page)
    report = build(gateway.engine, settings, periods.quarterly("2026Q4"))
    bars = dict(re.findall(r'class="bar births" data-month="([\d-]+)" data-value="(\d+)"', page))
    assert len(bars) == 12 and {m: int(v) for m, v in bars.items()} == {r.month: r.births[2] for r in report.months}
    deaths = dict(re.findall(r'class="bar deaths" data-month="([\d-]+)" data-value="(\d+)"', page))
    assert int(deaths["2026-10"]) + int(deaths["2026-11"]) == summary["totals"]["deaths"]["total"]
    points = re.findall(r'class="point(?: outside)?" data-month="([\d-]+)" data-ratio="([\d.]+)" data-births="(\d+)"', page)
    months = {r.month: r for r in report.months}
    assert points and all(float(ratio) == pytest.approx(months[m].sex_ratio, abs=0.05) and int(n) == months[m].occurred[2] for m, ratio, n in points)
    assert 'class="band"' in page and "103–107" in page


def test_early_warning_lines(gateway, settings, sample):
    (settings.home / "gateway.toml").write_text(
        (settings.home / "gateway.toml").read_text(encoding="utf-8")
        + '\n[population_reports]\nmin_births_for_sex_ratio = 10\nsenders = ["police", "hospital", "housing-board"]\n', encoding="utf-8"
    )
    from gateway.platform import assist_checks
    from gateway.config import load_settings

    settings = load_settings(settings.home)
    with clock.pinned(dt.datetime(2026, 10, 3, 9, 0, tzinfo=clock.CHINA)):  # the platform's file of 2 October
        assist_checks.sync(gateway.engine, settings)
    expected = independent_count(sample, MONTH)["births"]
    ratio = expected["1"] * 100 / expected["2"]
    assert not 103 <= ratio <= 107
    # Evaluated at the end of the month (well after every request's due date): nothing was answered.
    warning = build_warning(gateway.engine, settings, "2026-10", as_of=dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    lines = {line.kind: line for line in warning.lines if line.raised and "division" not in line.text}
    assert f"{ratio:.1f}" in lines["sex-ratio"].text and f"{sum(expected.values())} births" in lines["sex-ratio"].text
    assert "county 全县" in lines["sex-ratio"].text and lines["sex-ratio"].count == sum(expected.values())
    overdue = lines["assist-checks-overdue"]
    due = conftest.query(settings, "SELECT due_date FROM assistcheck")
    assert len(due) == sample.counts["assist_check_requests"]
    past_due = [d for (d,) in due if str(d)[:10] < "2026-10-21"]  # due before the evaluation day (21 October)
    assert overdue.count == len(past_due) >= 1 and all(not FULL_ID.search(d) for d in overdue.details)
    # Exchanges are stamped with the real time. Police and hospital have submission schedules:
    # in the month that contains today their files are not due yet (or were received), so they
    # are not silent; `housing-board` has no schedule and is judged by its exchanges: none.
    # 2026-10 (in the past) has no submission obligation tracked: judged by exchanges, none.
    today_month = periods.month_of(clock.today())
    current = build_warning(gateway.engine, settings, today_month)
    silent = [line for line in current.lines if line.kind == "silent-departments"][0]
    assert silent.raised and silent.count == 1 and "housing-board" in silent.text
    assert not any(d.startswith(("police: missed", "hospital: missed")) for d in silent.details)
    assert [d for d in silent.details if d.startswith("housing-board")] == [
        "housing-board: 0 exchange(s) (无报送计划 no submission schedule: judged by the exchanges received)"]
    assert lines["silent-departments"].count == 3
    assert all("judged by the exchanges received" in d for d in lines["silent-departments"].details)
    # Few births: shown with the count, never warned about.
    settings.population_reports["min_births_for_sex_ratio"] = 100
    calm = build_warning(gateway.engine, settings, "2026-10", as_of=dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    [srb] = [line for line in calm.lines if line.kind == "sex-ratio"]
    assert not srb.raised and "fewer than 100 births" in srb.text and f"on {sum(expected.values())} births" in srb.text
    # By the end of the December month (21 Nov – 20 Dec) every planted unregistered birth is past its grace period.
    later = build_warning(gateway.engine, settings, "2026-12", as_of=dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    [unregistered] = [line for line in later.lines if line.kind == "unregistered-births"]
    assert unregistered.raised and unregistered.count == len(sample.planted_keys("unregistered-births"))
    cli = run_gateway(settings.home, "report", "warning", "--month", "2026-10", "--json", check=False)
    assert cli.returncode == 4 and json.loads(cli.stdout)["warnings"] >= 2


def _verify(home, tmp_path, path) -> str:
    keyring = tmp_path / "officer"
    keyring.mkdir(mode=0o700, exist_ok=True)
    env = {"GNUPGHOME": str(keyring), "PATH": "/usr/bin:/bin"}
    for key in (home / "keys").glob("*.asc"):
        subprocess.run(["gpg", "--batch", "--import", str(key)], env=env, check=True, capture_output=True)
    result = subprocess.run(["gpg", "--batch", "--status-fd", "1", "--verify", f"{path}.asc", str(path)], env=env, capture_output=True, text=True)
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True)
    return result.stdout


def _at(year: int, month: int, day: int) -> dt.datetime:
    return dt.datetime(year, month, day, 9, 0, tzinfo=clock.CHINA)


def test_scheduled_production_on_due_dates_signed_once_and_caught_up(gateway, settings, home, tmp_path, sample):
    outbox = settings.mailbox_root / "population-office" / "outbox"

    def produced() -> set[str]:
        return {p.name.removesuffix(".json") for p in outbox.glob("population-*.json")}

    with clock.pinned(_at(2026, 10, 27)):
        first = produce_due(gateway)
    # The day before October's due date: September's monthly (due 28 Sep) and the latest of each kind.
    assert produced() == {"population-monthly-2026-09", "population-monthly-2026-08", "population-quarterly-2026Q3",
                          "population-half-year-2026H1", "population-annual-2025"}
    assert len(first.produced) == 5
    with clock.pinned(_at(2026, 10, 27)):
        assert produce_due(gateway).produced == []  # nothing twice
    with clock.pinned(_at(2026, 10, 28)):
        result = run_job(gateway.engine, report_job(settings), lease_seconds=30)
    assert result is not None and result.error is None and "population-monthly-2026-10 (balanced)" in result.summary
    assert "population-monthly-2026-10" in produced()
    summary = json.loads((outbox / "population-monthly-2026-10.json").read_text(encoding="utf-8"))
    assert summary["period"] == "2026-10" and summary["totals"]["births"]["total"] == build(gateway.engine, settings, MONTH).changes[-1].counts["births"][2]
    for name in [*summary["files"], "population-monthly-2026-10.json"]:
        assert "[GNUPG:] GOODSIG" in _verify(home, tmp_path, outbox / name), name
    # The gateway was down from 11 November to 15 January: the next start produces what it missed.
    with clock.pinned(_at(2027, 1, 15)):
        caught = produce_due(gateway)
    assert {p.period.stem for p in caught.produced} == {
        "population-monthly-2026-11", "population-monthly-2026-12", "population-quarterly-2026Q4",
        "population-half-year-2026H2", "population-annual-2026",
    }
    assert [p.period.due for p in caught.produced] == sorted(p.period.due for p in caught.produced)
    tampered = outbox / "population-annual-2026.html"
    tampered.write_bytes(tampered.read_bytes().replace(b"</html>", b"<!-- edited --></html>"))
    assert "BADSIG" in _verify(home, tmp_path, tampered)


def test_bad_periods_and_a_bad_snapshots_file_are_clear_errors(home, settings):
    bad = run_gateway(home, "report", "monthly", "--month", "2026-13", check=False)
    assert bad.returncode == 2 and "write the month as YYYY-MM" in bad.stdout + bad.stderr
    bad = run_gateway(home, "report", "quarterly", "--quarter", "2026Q5", check=False)
    assert bad.returncode == 2 and "YYYYQn" in bad.stdout + bad.stderr
    (home / "population_snapshots.csv").write_text("时点,行政区划代码,男,女\n2026-09-20,4407,1,2\n", encoding="utf-8")
    bad = run_gateway(home, "report", "monthly", "--month", "2026-10", "--out", str(home / "out"), check=False)
    assert bad.returncode == 2 and "population_snapshots.csv, line 2" in bad.stdout + bad.stderr and "six digits" in bad.stdout + bad.stderr
    assert not (home / "out").exists()


def test_the_township_breakdown_matches_the_generated_months_manifest(gateway, settings):
    from gateway.register.divisions import EXAMPLE
    from gateway.register.township_report import AGE_BANDS, NOT_HELD_TEXT
    from gateway.population_reports.tables import tables
    from stdnum.cn import ric

    (settings.home / "divisions.csv").write_text(EXAMPLE, encoding="utf-8")
    month = generate_month(2026, 10)
    month.drop(settings.mailbox_root)
    # On top of the month: a birth of last December registered now (往年出生补报) and an infant's death.
    def make_id(born: str, sequence: int) -> str:
        body = f"440781{born}{sequence:03d}"
        return body + ric.calc_check_digit(body + "0")
    header = "YWLX,GMSFHM,XM,XBDM,MZDM,CSRQ,HH,YHZGXDM,HJDZ,HJDZ_XZQHDM,BDRQ,BDYY,QYDZ,QYDZ_XZQHDM,ZQZBH,JZZBH,JZZYXQZ,CSYXZMBH,DJPCS"
    drop(settings, "police", "police_extra_202610.csv", (
        f"\ufeff{header}\n"
        f"出生登记,{make_id('20251230', 17)},黄小满,1,01,20251230,440781000124,20,广东省台山市大江镇公益村4号,440781,20261015,出生,,,,,,Q440781259999,大江派出所\n"
        f"死亡注销,{make_id('20260501', 20)},黄小安,2,01,20260501,440781000457,20,广东省台山市四九镇四九村5号,440781,20261002,死亡,,,,,,,大江派出所\n"
    ).encode("utf-8"))
    assert {o.status for o in gateway.run_once()} == {"processed"}
    expected = month.manifest()["counts"]["townships"]
    expected["440781101000"]["late_registrations"] += 1
    expected["440781103000"]["infant_deaths"]["female"] += 1
    expected["440781103000"]["deaths"]["0"]["female"] += 1

    quarter = periods.quarterly("2026Q4")  # the whole generated month
    unfolded = build(gateway.engine, settings, quarter, update_register=False)  # a reader: the register is still empty
    assert list(unfolded.townships.divisions.townships) == ["440781001000", "440781101000", "440781102000", "440781103000", "440781104000"]
    assert all(sum(f.counts()) == 0 for code, f in unfolded.townships.figures.items() if code != "unplaced")
    report = build(gateway.engine, settings, quarter)  # folds the register first
    [table] = [t for t in tables(report) if t.key == "townships"]
    assert [t.key for t in tables(report)][-2:] == ["townships", "checks"]
    sexes = ("male", "female")

    def cells(figures: dict) -> list[int]:
        return [*(figures["hospital_births"][s] for s in sexes), *(figures["infant_deaths"][s] for s in sexes),
                *(figures["deaths"][band][s] for band, _, _ in AGE_BANDS for s in sexes),
                figures["registrations"], figures["late_registrations"]]

    rows = {row[0]: row for row in table.rows}
    names = {"440781001000": "台城街道", "440781101000": "大江镇", "440781102000": "水步镇", "440781103000": "四九镇", "440781104000": "白沙镇"}
    for code, name in names.items():
        assert rows[code][1] == name and rows[code][2:] == cells(expected[code]), (code, rows[code], expected[code])
    assert rows[None][1:] == ["未落到乡镇 unplaced", *cells(expected["unplaced"])]
    county = rows[TOTAL][2:]
    assert county == [sum(column) for column in zip(*(cells(v) for v in expected.values()))]
    assert sum(cells(expected["unplaced"])[:2]) > 0 and sum(county[:2]) == sum(r[2] + r[3] for r in table.rows[:6])
    # The county figures agree with the report's own: registrations (this year's and 补报) are its 出生, deaths its 死亡.
    totals = report.changes[-1].counts
    assert county[-2] + county[-1] == totals["births"][2] and sum(county[4:14]) == totals["deaths"][2]
    assert county[-1] == 1 and county[2:4] == [0, 1]
    assert [row[:2] for row in table.rows[-2:]] == [["围产期保健 perinatal care", NOT_HELD_TEXT], ["防疫 immunisation", NOT_HELD_TEXT]]
    assert not any("divisions.csv" in note for note in report.notes)

    out = settings.home / "out"
    summary = json.loads(run_gateway(settings.home, "report", "quarterly", "--quarter", "2026Q4", "--out", str(out), "--json").stdout)
    assert summary["townships"]["late_registrations"] == 1 and summary["townships"]["infant_deaths"] == {"male": 0, "female": 1}
    assert summary["townships"]["hospital_births"]["male"] + summary["townships"]["hospital_births"]["female"] == sum(county[:2])
    book = load_workbook(out / "population-quarterly-2026Q4.xlsx")
    sheet = list(book["分乡镇"].iter_rows(min_row=2, values_only=True))
    assert sheet[0][:3] == ("乡镇代码", "乡镇", "住院分娩 男") and sheet[2][:2] == ("440781101000", "大江镇")
    assert list(sheet[2][2:]) == cells(expected["440781101000"])
    page = (out / "population-quarterly-2026Q4.html").read_text(encoding="utf-8")
    assert page.index('id="townships"') < page.index('id="checks"') and "本网关未接入该数据 / not held by any feed" in page
    assert not FULL_ID.search(page)
    csv_rows = list(csv.reader(io.StringIO((out / "population-quarterly-2026Q4.townships.csv").read_text(encoding="utf-8-sig"))))
    assert csv_rows[0][:2] == ["乡镇代码", "乡镇"] and csv_rows[-1][0] == "防疫 immunisation"
