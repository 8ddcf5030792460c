"""Model-quality reports as self-contained HTML pages: one window's realized, interval, estimated and training
metrics (render), and a scheduled run's table of windows (render_run)."""
from __future__ import annotations

from html import escape

from contracts import names
from contracts.quality_report import QualityReport, QualityRun, WindowSummary
from drift_check.report_html import STYLE, _badge, _num

# The drift page's style, plus the quality verdicts' colours.
QUALITY_STYLE = STYLE + ".degraded{background:#c62828}.insufficient_labels,.unchanged{background:#757575}\n"


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
            ("invalid labels", report.invalid_labels), ("label coverage", report.label_coverage),
            ("label delay, median hours", report.label_delay_median_hours),
            ("label delay, 90th percentile hours", report.label_delay_p90_hours)]
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
    version = f", version {report.model.version}" if report.model.version else ""
    title = escape(f"Model quality {report.model.name}{version}")
    window = report.window
    period = (f"<p>window {escape(window.period_start)} to {escape(window.period_end or '–')} (UTC)</p>"
              if window.period_start else "")
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
        f"{escape(window.end or '–')}; {escape(report.task)}, primary metric {escape(report.primary_metric)}</p>{period}"
        f"<p>{escape(report.reason)}</p>"
        f"<h2>Metrics</h2>{_metrics_table(report)}{basis}"
        f"<h2>Labels and predictions</h2>{_counts(report)}"
        f"<h2>By model version</h2>{_versions(report)}"
        f"<p>thresholds: {escape(', '.join(f'{k} {v}' for k, v in report.thresholds.items()))}</p>"
        "</body></html>"
    )


def window_page_link(model_name: str, report_key: str) -> str:
    """The window's HTML page relative to a run page (quality/<m>/dt=…/ and quality/<m>/windows/… share a root),
    so the pages link up in the bucket's console download or an `aws s3 sync` of quality/<m>/."""
    root = names.quality_prefix(model_name)
    return "../" + report_key.removeprefix(root).removesuffix(".json") + ".html"


def _window_row(w: WindowSummary, model_name: str) -> str:
    interval = f"[{_num(w.interval[0])}, {_num(w.interval[1])}]" if w.interval else "–"
    delay = f"{_num(w.label_delay_median_hours)} / {_num(w.label_delay_p90_hours)}"
    note = f"<br><small>{escape(w.baseline_note)}</small>" if w.baseline_note else ""
    below = f"<br><small>below: {escape(', '.join(w.degraded_metrics))}</small>" if w.degraded_metrics else ""
    return (f"<tr><td>{escape(w.model_version)}</td><td>{escape(w.period_start)}</td><td>{w.predictions}</td>"
            f"<td>{w.matched}</td><td>{_num(w.label_coverage)}</td><td>{delay}</td>"
            f"<td>{_num(w.realized)} {interval}</td><td>{_num(w.estimated)}</td><td>{_num(w.baseline)}{note}</td>"
            f"<td>{_badge(w.status)}{' (rewritten)' if w.changed else ''}{below}</td>"
            f'<td><a href="{escape(window_page_link(model_name, w.report_key))}">page</a> · '
            f"<small>{escape(w.report_key)}</small></td></tr>")


def render_run(run: QualityRun) -> str:
    """A scheduled run: every window of the horizon (newest first) and the totals of what was read."""
    title = escape(f"Model quality {run.model.name}: scheduled check")
    primary = escape(run.windows[0].primary_metric) if run.windows else "primary metric"
    head = ("<tr><th>version</th><th>window start</th><th>predictions</th><th>matched</th><th>coverage</th>"
            "<th>label delay h (median / p90)</th><th>realized " + primary + " [interval]</th>"
            "<th>estimated</th><th>training</th><th>status</th><th>report</th></tr>")
    totals = [("predictions", run.predictions), ("label records read", run.labels),
              ("labels replaced by a later one", run.replaced_labels), ("unmatched labels", run.unmatched_labels),
              ("invalid labels", run.invalid_labels), ("capture objects read", run.capture_objects),
              ("label objects read", run.label_objects), ("unreadable objects", len(run.unreadable_objects))]
    totals += [(f"invalid: {k}", v) for k, v in run.invalid_reasons.items()]
    totals += [(f"capture lines not used: {k}", v) for k, v in run.rejected_captures.items()]
    unreadable = "".join(f"<li>{escape(u.key)}: {escape(u.error)}</li>" for u in run.unreadable_objects)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{QUALITY_STYLE}</style></head><body>"
        f"<h1>{title} {_badge(run.status)}</h1>"
        f"<p>generated {escape(run.generated_at)}; live version {escape(run.model.version or '–')}; windows of "
        f"{run.window_hours} h since {escape(run.horizon_start)} (older windows are final); "
        f"{run.windows_changed} window(s) rewritten by this run</p>"
        f"<h2>Windows</h2><table>{head}{''.join(_window_row(w, run.model.name) for w in run.windows)}</table>"
        "<h2>Totals</h2><table>"
        + "".join(f"<tr><td>{escape(k)}</td><td>{_num(v)}</td></tr>" for k, v in totals) + "</table>"
        + (f"<h2>Unreadable objects</h2><ul>{unreadable}</ul>" if unreadable else "")
        + f"<p>thresholds: {escape(', '.join(f'{k} {v}' for k, v in run.thresholds.items()))}</p>"
        "</body></html>"
    )
