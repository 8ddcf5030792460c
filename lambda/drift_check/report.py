"""Drift reports: compare()'s verdict with what was checked against what, and when; a summary for a person."""
from __future__ import annotations

import importlib
from pathlib import Path

from msgspec.structs import replace

from contracts.artifact import utc_now
from contracts.baseline import Baseline
from contracts.drift_report import DriftReport, ModelRef, Status, StoredReport, Window
from drift_check.stats import Accumulator
from drift_check.stats_compare import Thresholds, compare


def make_report(
    baseline: Baseline,
    acc: Accumulator,
    thresholds: Thresholds | None = None,
    *,
    model: ModelRef | None = None,
    window: Window | None = None,
) -> DriftReport:
    """The drift report: compare()'s verdict plus what was checked against what, and when."""
    return replace(compare(baseline, acc, thresholds), generated_at=utc_now(), model=model, window=window)


def empty_report(status: Status, reason: str, *, model: ModelRef | None = None, window: Window | None = None) -> DriftReport:
    """A report with nothing compared (no_model): the fields every report has, no features."""
    return DriftReport(
        generated_at=utc_now(), model=model, window=window, status=status, reason=reason,
        dataset_drift=False, drifted_features=[], drift_share=0.0,
        rows_checked=0, rows_rejected=0, features={}, prediction=None,
    )


def summary(report: DriftReport) -> str:
    """A few lines for a person: the verdict, the drifted features, the data-quality problems."""
    head = (f"status: {report.status}  dataset drift: {'yes' if report.dataset_drift else 'no'}  "
            f"rows checked: {report.rows_checked}  rejected: {report.rows_rejected}")
    lines = [head]
    if report.reason:
        lines.append(f"  {report.reason}")
    for name in report.drifted_features:
        f = report.features[name]
        effect = f"PSI {f.psi:.3f}" if f.type == "numeric" else f"share change {f.max_share_change:.3f}"
        lines.append(f"  drift {f.severity:8s} {name}: {effect}, p(adj) {f.p_adjusted:.2g}")
    for issue in report.quality.issues if report.quality else []:
        value = issue.value if isinstance(issue.value, list) else f"{issue.value:.3f}"
        lines.append(f"  quality {issue.severity:5s} {issue.feature or '(dataset)'}: {issue.check} {value}")
    if report.prediction_drift:
        lines.append("  the prediction's distribution drifted")
    return "\n".join(lines)


def write_files(report: StoredReport, output: str, html: str | None, html_module: str) -> str | None:
    """Write the JSON report and, when asked, its page (html_module's render, imported only then); the
    error when a file cannot be written."""
    try:
        Path(output).write_text(report.to_json(indent=2))
        if html:
            Path(html).write_text(importlib.import_module(html_module).render(report))
    except OSError as exc:
        return f"cannot write the report: {exc}"
    return None
