"""A model-quality report as one self-contained HTML page: realized, interval, estimated and training metrics."""
from __future__ import annotations

from html import escape

from contracts.quality_report import QualityReport
from drift_check.report_html import STYLE, _badge, _num

# The drift page's style, plus the quality verdicts' colours.
QUALITY_STYLE = STYLE + ".degraded{background:#c62828}.insufficient_labels{background:#757575}\n"


def _metrics_table(report: QualityReport) -> str:
    estimated = report.estimated or {}
    names = [*report.realized, *(n for n in report.baseline if n not in report.realized),
             *(n for n in estimated if n not in report.realized and n not in report.baseline)]
    rows = []
    for name in names:
        low, high = report.intervals.get(name, (None, None))
        interval = f"[{_num(low)}, {_num(high)}]" if low is not None else "–"
        flag = " ⚠" if name in report.degraded_metrics else ""
        rows.append(f"<tr><td>{escape(name)}{flag}</td><td>{_num(report.realized.get(name))}</td><td>{interval}</td>"
                    f"<td>{_num(estimated.get(name))}</td><td>{_num(report.baseline.get(name))}</td></tr>")
    head = "<tr><th>metric</th><th>realized</th><th>interval</th><th>estimated</th><th>training hold-out</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _counts(report: QualityReport) -> str:
    rows = [("predictions considered", report.predictions), ("without an id (cannot be joined)", report.predictions_without_id),
            ("labels read", report.labels), ("labels replaced by a later one", report.replaced_labels),
            ("matched", report.matched), ("unmatched labels", report.unmatched_labels),
            ("invalid labels", report.invalid_labels), ("label coverage", report.label_coverage)]
    rows += [(f"invalid: {k}", v) for k, v in report.invalid_reasons.items()]
    rows += [(f"capture lines not used: {k}", v) for k, v in report.rejected_captures.items()]
    return "<table>" + "".join(f"<tr><td>{escape(k)}</td><td>{_num(v)}</td></tr>" for k, v in rows) + "</table>"


def _versions(report: QualityReport) -> str:
    rows = "".join(
        f"<tr><td>{escape(v)}</td><td>{q.predictions}</td><td>{q.matched}</td>"
        f"<td>{escape(', '.join(f'{k} {_num(x)}' for k, x in q.realized.items()) or '–')}</td></tr>"
        for v, q in report.model_versions.items())
    return f"<table><tr><th>version</th><th>predictions</th><th>matched</th><th>realized</th></tr>{rows}</table>"


def render(report: QualityReport) -> str:
    """The whole page; every value from the report is HTML-escaped."""
    title = escape(f"Model quality {report.model.name} {report.model.version or ''}".strip())
    window = report.window
    basis = ""
    if report.estimated:
        basis = (f"<p>estimated from the probabilities of {report.estimated_rows} predictions, "
                 + ("calibrated on the training hold-out" if report.estimated_calibrated else
                    "uncalibrated (the artifact records no calibration)") + "</p>")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{QUALITY_STYLE}</style></head><body>"
        f"<h1>{title} {_badge(report.status)}</h1>"
        f"<p>generated {escape(report.generated_at)}; predictions from {escape(window.start or '–')} to "
        f"{escape(window.end or '–')}; {escape(report.task)}, primary metric {escape(report.primary_metric)}</p>"
        f"<p>{escape(report.reason)}</p>"
        f"<h2>Metrics</h2>{_metrics_table(report)}{basis}"
        f"<h2>Labels and predictions</h2>{_counts(report)}"
        f"<h2>By model version</h2>{_versions(report)}"
        f"<p>thresholds: {escape(', '.join(f'{k} {v}' for k, v in report.thresholds.items()))}</p>"
        "</body></html>"
    )
