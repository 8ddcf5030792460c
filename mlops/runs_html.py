"""Run records as one self-contained HTML page: the primary metric across runs (inline SVG), the runs table,
and for `compare` the runs side by side. No scripts; every value from a record is HTML-escaped.
"""
from __future__ import annotations

from collections.abc import Sequence
from html import escape

from contracts.run_record import RunRecord
from drift_check.report_html import STYLE as REPORT_STYLE
from mlops.runs_view import LIST_HEADERS, compare_rows, list_rows, production_value, text

STATUS_COLORS = {"registered": "#2e7d32", "passed": "#66bb6a", "rejected": "#c62828", "failed": "#757575"}
PRODUCTION_COLOR = "#90a4ae"
STYLE = REPORT_STYLE + "".join(f".{name}{{background:{color}}}" for name, color in STATUS_COLORS.items()) + \
    "td.diff{background:#fff3e0}"
DIFF = ' class="diff"'
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 760, 300, 60, 20, 16, 90


def _badge(status: str) -> str:
    return f'<span class="badge {escape(status)}">{escape(status)}</span>'


def _scale(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or max(abs(high) * 0.05, 0.01)
    return low - pad, high + pad


def metric_chart(metric: str, records: Sequence[RunRecord]) -> str:
    """The metric of each run, oldest left: a point coloured by the gate, the production value it was compared with."""
    points = [(r, r.metrics[metric], production_value(r)) for r in records if metric in r.metrics]
    low, high = _scale([v for _, value, prod in points for v in (value, prod) if v is not None])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    inset = 40  # room for the first run's slanted label
    step = (plot_w - inset - 10) / max(len(points) - 1, 1)

    def x(i: int) -> float:
        return LEFT + (inset + i * step if len(points) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + (high - v) / (high - low) * plot_h

    parts = [f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="#999"/>']
    for k in range(5):
        v = low + (high - low) * k / 4
        parts.append(f'<line x1="{LEFT}" y1="{y(v):.1f}" x2="{LEFT + plot_w}" y2="{y(v):.1f}" stroke="#eee"/>'
                     f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v:.4g}</text>')
    line = " ".join(f"{x(i):.1f},{y(value):.1f}" for i, (_, value, _) in enumerate(points))
    parts.append(f'<polyline points="{line}" fill="none" stroke="#1e88e5" stroke-width="1.5"/>')
    for i, (record, value, prod) in enumerate(points):
        if prod is not None:
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(prod):.1f}" r="5" fill="none" stroke="{PRODUCTION_COLOR}" '
                         f'stroke-width="2"><title>production {prod:.4g}</title></circle>')
        label = f"{record.run_id}: {metric} {value:.4g}, {record.status}"
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="5" fill="{STATUS_COLORS[record.status]}">'
                     f"<title>{escape(label)}</title></circle>")
        ty = TOP + plot_h + 12
        parts.append(f'<text x="{x(i):.1f}" y="{ty}" font-size="10" text-anchor="end" '
                     f'transform="rotate(-35 {x(i):.1f} {ty})">{escape(record.run_id[:24])}</text>')
    return (f'<h2>{escape(metric)}</h2><svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'role="img" aria-label="{escape(metric)} across runs">{"".join(parts)}</svg>')


def _legend() -> str:
    items = "".join(f'<span style="background:{c}"></span>{escape(s)}' for s, c in STATUS_COLORS.items())
    return (f'<div class="legend">{items}<span style="border:2px solid {PRODUCTION_COLOR};border-radius:50%"></span>'
            "production compared with</div>")


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[object]], status_column: int | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{_badge(str(c)) if i == status_column else escape(text(c))}</td>" for i, c in enumerate(row))
        + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _compare_table(records: Sequence[RunRecord]) -> str:
    head = "<th>field</th>" + "".join(f"<th>{escape(r.run_id)}</th>" for r in records)
    body = "".join(
        f"<tr><td>{escape(key)}</td>" + "".join(f"<td{DIFF if marker.strip() else ''}>{escape(text(v))}</td>" for v in values)
        + "</tr>" for marker, key, *values in compare_rows(records))
    return f"<h2>Side by side</h2><p>Highlighted rows differ between the runs.</p><table><tr>{head}</tr>{body}</table>"


def render(records: Sequence[RunRecord], *, title: str, side_by_side: bool = False) -> str:
    """The whole page: a chart per primary metric, the runs table, the comparison when asked."""
    metrics = list(dict.fromkeys(r.primary_metric for r in records if r.primary_metric))
    charts = "".join(metric_chart(m, [r for r in records if r.primary_metric == m]) for m in metrics)
    reasons = [[r.run_id, r.gate.reason if r.gate else r.error] for r in records]
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"<p>{len(records)} runs, oldest first.</p>"
        + (_legend() + charts if charts else "<p>No run has a primary metric yet (every run failed before evaluation).</p>")
        + "<h2>Runs</h2>" + _html_table(LIST_HEADERS, list_rows(records), status_column=LIST_HEADERS.index("status"))
        + "<h2>Gate decisions</h2>" + _html_table(("run", "reason"), reasons)
        + (_compare_table(records) if side_by_side else "")
        + "</body></html>"
    )
