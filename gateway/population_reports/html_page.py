"""The HTML page of a report: title, period, when it was made, the balance status (and
where it fails), the charts, then the tables. Self-contained: inline CSS and SVG, no script,
nothing fetched when it is opened."""

from __future__ import annotations

from html import escape

from gateway import clock
from gateway.population_reports import charts
from gateway.population_reports.figures import PopulationReport
from gateway.population_reports.periods import KIND_LABELS
from gateway.population_reports.tables import Cell, tables

STYLE = """
body { font-family: "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", system-ui, sans-serif; margin: 0; color: #222; background: #f6f7f9; }
header { background: #1f3b57; color: #fff; padding: 20px 32px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; opacity: .85; }
main { max-width: 1180px; margin: 0 auto; padding: 16px 32px 48px; }
.status { border-radius: 8px; padding: 12px 16px; margin: 16px 0; font-weight: 600; }
.status.ok { background: #e6f4ea; color: #1e6b34; }
.status.bad { background: #fdecea; color: #8a1c14; }
.status ul { margin: 8px 0 0; font-weight: 400; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 12px 0; }
.card { background: #fff; border-radius: 8px; padding: 12px 16px; min-width: 120px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.card b { display: block; font-size: 22px; }
.card span { color: #666; font-size: 13px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
figure { background: #fff; margin: 0; padding: 12px; border-radius: 8px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
figcaption { font-weight: 600; margin-bottom: 6px; }
svg.chart { width: 100%; height: auto; }
svg .tick { font-size: 11px; fill: #555; }
svg .value { font-size: 10px; fill: #333; }
svg .axis { font-size: 12px; fill: #333; }
section { margin-top: 24px; }
.scroll { overflow-x: auto; background: #fff; border-radius: 8px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
table { border-collapse: collapse; font-size: 13px; white-space: nowrap; }
th, td { border-bottom: 1px solid #eee; padding: 4px 8px; text-align: right; }
th { background: #eef2f6; position: sticky; top: 0; }
td:first-child, th:first-child { text-align: left; }
tr.total td { font-weight: 700; border-top: 2px solid #999; }
tr.fail td { background: #fdecea; }
.notes { color: #555; font-size: 13px; }
footer { color: #777; font-size: 12px; margin-top: 32px; }
"""


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1f}"
    return escape(str(value))


def render(report: PopulationReport) -> str:
    period, options = report.period, report.options
    generated = clock.in_china(report.generated_at).strftime("%Y-%m-%d %H:%M")
    total = report.changes[-1].counts
    ratio = report.sex_ratio
    cards = [
        ("出生登记 births", total["births"][2]), ("死亡 deaths", total["deaths"][2]),
        ("迁入 moves in", total["moves_in"][2]), ("迁出 moves out", total["moves_out"][2]),
        ("出生人口 births occurred", report.occurred[2]),
        ("出生人口性别比 sex ratio at birth", "—" if ratio is None else f"{ratio:.1f}"),
    ]
    if report.balanced:
        checked = not any(row.end is None for row in report.population)
        population = "the registered population adds up" if checked else "the registered population is not checked against a counted end (see the note)"
        status = f'<div class="status ok">平衡 balanced: male + female = total in every row, the divisions sum to the total; {population}.</div>'
    else:
        items = "".join(f"<li>{escape(f.text())}</li>" for f in report.failures)
        status = f'<div class="status bad">不平衡 unbalanced: {len(report.failures)} check(s) fail<ul>{items}</ul></div>'
    months = [row.month for row in report.months]
    births_chart = charts.births_and_deaths(months, [r.births[2] for r in report.months], [r.deaths[2] for r in report.months])
    ratio_chart = charts.sex_ratio(
        months, [r.sex_ratio for r in report.months], [r.occurred[2] for r in report.months], options.sex_ratio_low, options.sex_ratio_high
    )
    failing = {(f.table, f.row) for f in report.failures}
    sections = []
    for table in tables(report):
        head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
        body = []
        for row in table.rows:
            classes = []
            if row[0] == "合计":
                classes.append("total")
            if (table.name, row[0]) in failing:
                classes.append("fail")
            attr = f' class="{" ".join(classes)}"' if classes else ""
            body.append(f"<tr{attr}>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>")
        sections.append(
            f'<section id="{table.key}"><h2>{escape(table.name)}</h2><div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div></section>"
        )
    notes = "".join(f"<p>{escape(note)}</p>" for note in report.notes)
    return f"""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>人口变动{KIND_LABELS[period.kind]} {escape(period.label)}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>人口变动{KIND_LABELS[period.kind]} {escape(period.label)}</h1>
<p>统计期 {period.first} – {period.last}（每月21日至20日）· 报送期限 {period.due} · 生成于 {generated}（北京时间）</p>
</header>
<main>
{status}
<div class="cards">{"".join(f'<div class="card"><b>{escape(str(v))}</b><span>{escape(k)}</span></div>' for k, v in cards)}</div>
<div class="charts">
<figure id="births-deaths"><figcaption>出生与死亡（按月） births and deaths by month</figcaption>{births_chart}</figure>
<figure id="sex-ratio"><figcaption>出生人口性别比 sex ratio at birth (band {options.sex_ratio_low:g}–{options.sex_ratio_high:g}; n = births)</figcaption>{ratio_chart}</figure>
</div>
<div class="notes">{notes}</div>
{"".join(sections)}
<footer>Interagency data-exchange gateway · {report.records} current records read · figures count current record versions only; see docs/reports.md for the definitions.</footer>
</main>
</body>
</html>
"""
