"""A drift report as one self-contained HTML page: verdicts, statistics, inline SVG histograms."""
from __future__ import annotations

from html import escape
from typing import Any

import msgspec
from msgspec import UNSET

from contracts.drift_report import DriftReport, FeatureReport, Histogram

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin:0 0 6px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}
.badge{display:inline-block;padding:2px 8px;border-radius:4px;color:#fff;font-weight:600}
.ok{background:#2e7d32}.drift,.critical,.fail{background:#c62828}.warn{background:#ef6c00}
.none,.insufficient_data,.no_data,.no_model,.tested,.no_reference{background:#757575}
.card{border:1px solid #ddd;border-radius:6px;padding:12px;margin:12px 0}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
"""
REF_COLOR, CUR_COLOR = "#90a4ae", "#1e88e5"


def _badge(text: str) -> str:
    return f'<span class="badge {escape(text)}">{escape(text)}</span>'


def _num(value: Any, digits: int = 4) -> str:
    if value is None or value is UNSET:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return escape(str(value))


def histogram_svg(hist: Histogram, width: int = 640, bar_h: int = 14) -> str:
    """Horizontal paired bars (reference grey, current blue) of each bin's share."""
    labels, ref, cur = hist.labels, hist.reference, hist.current
    ref_total, cur_total = sum(ref) or 1, sum(cur) or 1
    rows = [(lab, r / ref_total, c / cur_total) for lab, r, c in zip(labels, ref, cur) if r or c]
    label_w, plot_w = 170, width - 230
    top = max([max(r, c) for _, r, c in rows] + [1e-9])
    parts = []
    for i, (label, r, c) in enumerate(rows):
        y = i * (2 * bar_h + 6)
        parts.append(f'<text x="{label_w - 6}" y="{y + bar_h + 3}" text-anchor="end" font-size="11">{escape(label[:28])}</text>')
        for j, (share, color) in enumerate(((r, REF_COLOR), (c, CUR_COLOR))):
            w = share / top * plot_w
            yy = y + j * bar_h
            parts.append(f'<rect x="{label_w}" y="{yy}" width="{w:.1f}" height="{bar_h - 2}" fill="{color}"/>')
            parts.append(f'<text x="{label_w + w + 4:.1f}" y="{yy + bar_h - 3}" font-size="10">{share:.1%}</text>')
    height = max(len(rows), 1) * (2 * bar_h + 6)
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">{"".join(parts)}</svg>'


def _stats_table(entry: FeatureReport) -> str:
    # The rows are whichever summary fields the feature's type has.
    ref, cur = msgspec.to_builtins(entry.reference), msgspec.to_builtins(entry.current)
    keys = [k for k in ref if k in cur and k != "unseen_examples"] + [k for k in cur if k not in ref and k != "unseen_examples"]
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{_num(ref.get(k))}</td><td>{_num(cur.get(k))}</td></tr>" for k in keys)
    return f"<table><tr><th></th><th>reference</th><th>current</th></tr>{rows}</table>"


def _verdict_line(entry: FeatureReport) -> str:
    if entry.status != "tested":
        return f"not tested: {escape(entry.status)}"
    effect = (f"PSI {_num(entry.psi, 3)}" if entry.type == "numeric"
              else f"largest share change {_num(entry.max_share_change, 3)} ({escape(entry.max_share_change_category)}), PSI {_num(entry.psi, 3)}")
    extra = f", Wasserstein {_num(entry.wasserstein, 3)}" if entry.wasserstein is not UNSET else ""
    return (f"{escape(entry.test.upper())} statistic {_num(entry.statistic, 3)}, p {_num(entry.p_value, 3)}, "
            f"p adjusted {_num(entry.p_adjusted, 3)}; {effect}{extra}")


def feature_card(name: str, entry: FeatureReport) -> str:
    verdict = "drift" if entry.drift else "ok"
    quality = ", ".join(f"{escape(k)} {_num(v, 3)}" for k, v in entry.quality.shares().items() if v)
    unseen = entry.current.unseen_examples
    return (
        f'<div class="card" id="f-{escape(name)}"><h2>{escape(name)} {_badge(verdict)} {_badge(entry.severity)}</h2>'
        f"<div>{escape(entry.type)}; {_verdict_line(entry)}</div>"
        f"<div>data quality: {quality or 'no issues'}</div>"
        + (f"<div>unseen categories: {escape(', '.join(unseen))}</div>" if unseen else "")
        + f'<div class="legend"><span style="background:{REF_COLOR}"></span>reference'
        f'<span style="background:{CUR_COLOR}"></span>current</div>'
        f"{histogram_svg(entry.histogram)}{_stats_table(entry)}</div>"
    )


def _overview(report: DriftReport) -> str:
    rows = []
    for name, e in report.features.items():
        effect = e.psi if e.type == "numeric" else e.max_share_change
        rows.append(
            f'<tr><td><a href="#f-{escape(name)}">{escape(name)}</a></td><td>{escape(e.type)}</td>'
            f"<td>{_badge('drift' if e.drift else 'ok')}</td><td>{_badge(e.severity)}</td>"
            f"<td>{_num(effect, 3)}</td><td>{_num(e.p_adjusted, 3)}</td>"
            f"<td>{_num(e.reference.missing_rate, 3)} → {_num(e.current.missing_rate, 3)}</td></tr>"
        )
    head = "<tr><th>feature</th><th>type</th><th>verdict</th><th>severity</th><th>PSI / share change</th><th>p adjusted</th><th>missing rate</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _title(report: DriftReport) -> str:
    model = report.model
    name, version = (model.name, model.version or "") if model else ("", "")
    return f"Drift report {escape(name)} {escape(version)}".strip()


def render(report: DriftReport) -> str:
    """The whole page; every value from the report is HTML-escaped."""
    title = _title(report)
    issues = report.quality.issues if report.quality else []
    issue_rows = "".join(
        f"<tr><td>{escape(str(i.feature or '(dataset)'))}</td><td>{escape(i.check)}</td>"
        f"<td>{_num(i.value, 3) if not isinstance(i.value, list) else escape(', '.join(i.value))}</td><td>{_badge(i.severity)}</td></tr>"
        for i in issues
    )
    cards = "".join(feature_card(n, e) for n, e in report.features.items())
    if report.prediction:
        cards += feature_card("prediction", report.prediction)
    window = msgspec.to_builtins(report.window) if report.window else {}  # whichever fields the window has
    return (
        f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>{STYLE}</style></head><body>"
        f"<h1>{title} {_badge(report.status)}</h1>"
        f"<p>generated {escape(report.generated_at or '')}; window {escape(', '.join(f'{k}: {v}' for k, v in window.items()))}</p>"
        f"<p>dataset drift: <b>{'yes' if report.dataset_drift else 'no'}</b>; drifted features: "
        f"{escape(', '.join(report.drifted_features) or 'none')} ({report.drift_share:.0%}); "
        f"rows checked {report.rows_checked}, rejected {report.rows_rejected}</p>"
        + (f"<h2>Data quality</h2><table><tr><th>feature</th><th>check</th><th>value</th><th></th></tr>{issue_rows}</table>" if issues else "")
        + (f"<p>{escape(report.reason)}</p>" if report.reason else "")
        + (_overview(report) if report.features else "")
        + cards + "</body></html>"
    )
