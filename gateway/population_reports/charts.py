"""Inline SVG charts for the HTML page: drawn here, so the page needs nothing from the
network and shows the same in any browser (and in a file archived for years)."""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 48
BIRTHS_COLOUR, DEATHS_COLOUR, RATIO_COLOUR, BAND_COLOUR = "#2f7ebc", "#b0413e", "#6a3d9a", "#d9f0d3"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000):
        if value <= step * 5:
            return step * 5 if value > step * 4 else step * (int(value // step) + 1)
    return value * 1.1


def _frame(
    title: str, ymax: float, ticks: int, y_label: str, labels: list[str], body: list[str], extra: str = "", y_base: float = 0
) -> str:
    """Axes, grid, tick labels (from `y_base` up by `ymax`), month labels, then `extra` and `body`."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(ticks + 1):
        value = y_base + ymax * i / ticks
        y = TOP + plot_h - plot_h * i / ticks
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{value:g}</text>')
    parts.append(extra)
    parts.extend(body)
    step = plot_w / max(1, len(labels))
    for i, label in enumerate(labels):
        x = LEFT + step * (i + 0.5)
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" class="tick">{escape(label[2:])}</text>')
    parts.append(f'<text x="14" y="{TOP + plot_h / 2:.0f}" transform="rotate(-90 14 {TOP + plot_h / 2:.0f})" text-anchor="middle" class="axis">{escape(y_label)}</text>')
    parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" stroke="#777"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def births_and_deaths(months: list[str], births: list[int], deaths: list[int]) -> str:
    """Grouped bars: registered births and deaths per statistical month."""
    ymax = _nice_max(max([*births, *deaths, 0]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(months))
    bar = step * 0.36
    body: list[str] = []
    for i, month in enumerate(months):
        for j, (series, value, colour) in enumerate((("births", births[i], BIRTHS_COLOUR), ("deaths", deaths[i], DEATHS_COLOUR))):
            height = plot_h * value / ymax
            x = LEFT + step * i + step * 0.12 + j * bar
            y = TOP + plot_h - height
            body.append(
                f'<rect class="bar {series}" data-month="{month}" data-value="{value}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{bar:.1f}" height="{height:.1f}" fill="{colour}"><title>{month} {"出生" if series == "births" else "死亡"} {value}</title></rect>'
            )
            if value:
                body.append(f'<text x="{x + bar / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" class="value">{value}</text>')
    legend = (
        f'<rect x="{WIDTH - 200}" y="6" width="12" height="12" fill="{BIRTHS_COLOUR}"/><text x="{WIDTH - 184}" y="16" class="tick">出生 births</text>'
        f'<rect x="{WIDTH - 104}" y="6" width="12" height="12" fill="{DEATHS_COLOUR}"/><text x="{WIDTH - 88}" y="16" class="tick">死亡 deaths</text>'
    )
    return _frame("出生与死亡（按月）births and deaths by month", ymax, 5, "人 persons", months, body, legend)


def sex_ratio(months: list[str], ratios: list[float | None], counts: list[int], low: float, high: float) -> str:
    """The sex ratio at birth per month (boys per 100 girls), with the normal band shaded;
    each point is labelled with the month's births, so a wild ratio on few births is read as such."""
    known = [r for r in ratios if r is not None]
    top = max([high + 10, *known]) if known else high + 10
    bottom = min([low - 10, *known]) if known else low - 10
    bottom = max(0.0, 10 * (bottom // 10))
    top = 10 * (top // 10 + 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(months))

    def y_of(value: float) -> float:
        return TOP + plot_h - plot_h * (value - bottom) / (top - bottom)

    band = (
        f'<rect class="band" x="{LEFT}" y="{y_of(high):.1f}" width="{plot_w}" height="{y_of(low) - y_of(high):.1f}" fill="{BAND_COLOUR}"/>'
        f'<text x="{WIDTH - RIGHT - 4}" y="{y_of(high) - 4:.1f}" text-anchor="end" class="tick">正常范围 {low:g}–{high:g}</text>'
    )
    body: list[str] = []
    points = [(LEFT + step * (i + 0.5), y_of(r), r, months[i], counts[i]) for i, r in enumerate(ratios) if r is not None]
    if len(points) > 1:
        body.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (RATIO_COLOUR, " ".join(f"{x:.1f},{y:.1f}" for x, y, *_ in points)))
    for x, y, ratio, month, births in points:
        outside = not low <= ratio <= high
        body.append(
            f'<circle class="point{" outside" if outside else ""}" data-month="{month}" data-ratio="{ratio:.1f}" data-births="{births}" '
            f'cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{"#d62728" if outside else RATIO_COLOUR}"><title>{month} 性别比 {ratio:.1f}（出生 {births}）</title></circle>'
        )
        body.append(f'<text x="{x:.1f}" y="{y - 9:.1f}" text-anchor="middle" class="value">{ratio:.0f} (n={births})</text>')
    return _frame("出生人口性别比（按月）sex ratio at birth by month", top - bottom, 4, "男/女×100", months, body, band, bottom)
