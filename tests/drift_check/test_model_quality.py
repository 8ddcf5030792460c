"""The model-quality check on captured predictions and labels: the join, the verdicts, the estimate beside the
realized metrics, regression, and the report's JSON and HTML."""
from __future__ import annotations

import numpy as np
import pytest
from msgspec import UNSET

from contracts.ground_truth import GroundTruth, Labels
from contracts.quality_report import QualityReport
from drift_check.model_quality import Captured, Settings, check
from drift_check.quality_html import render
from tests.drift_check.quality_helpers import binary_lines, calibrated_scores, capture, metadata

YES, NO = {"no": 0.2, "yes": 0.8}, {"no": 0.8, "yes": 0.2}


def captured(lines: list[bytes], classes: list[str] | None = ("no", "yes")) -> Captured:
    found = Captured(classes=list(classes) if classes else None)
    found.add_block(b"".join(lines))
    return found


def labels(*pairs: tuple[str, object], malformed: int = 0) -> Labels:
    return Labels(records=[GroundTruth(id=i, label=v) for i, v in pairs], malformed=malformed)


def test_the_join_counts_every_label_and_prediction_it_cannot_use():
    lines = [capture(i, "yes", YES) for i in range(6)]
    lines += [capture(6, "no", NO, pid=None), capture(7, "yes", YES, pid="p5"),  # no id; p5 repeated
              b"not json\n", capture(8, "maybe", YES)]
    report = check(captured(lines), labels(("p1", "no"), ("p1", "yes"), ("p2", "maybe"), ("p99", "yes"), ("p5", "yes"),
                                           ("p3", 1), malformed=2), metadata(), settings=Settings(min_labels=1))
    assert report.predictions == 7 and report.predictions_without_id == 1  # p0-p4, p5 once, the one without id
    assert report.rejected_captures == {"bad_record": 1, "prediction_not_a_class": 1, "repeated_id": 1}
    assert report.labels == 6 and report.replaced_labels == 1
    assert report.matched == 2 and report.unmatched_labels == 1  # p1 (its later label, yes) and p5
    assert report.invalid_labels == 4 and report.invalid_reasons == {"not_a_class": 2, "malformed": 2}  # maybe, 1
    assert report.realized["accuracy"] == 1.0 and report.label_coverage == pytest.approx(2 / 6)
    assert report.model_versions["v1"].predictions == 7 and report.model_versions["v1"].matched == 2


def calibrated_window(n: int = 2000, seed: int = 11, drifted: bool = False) -> tuple[Captured, Labels]:
    score, y = calibrated_scores(n, seed)
    if drifted:  # concept drift: the labels stop following the features the probabilities come from
        y = (np.random.default_rng(seed + 1).random(n) < 0.5).astype(int)
    return captured(binary_lines(score)), labels(*((f"p{i}", "yes" if v else "no") for i, v in enumerate(y)))


TRAINED = {"accuracy": 0.8, "f1": 0.8, "roc_auc": 0.88}  # about what calibrated_scores' model scores on any sample


def test_a_model_as_good_as_in_training_is_ok_and_the_estimate_agrees():
    report = check(*calibrated_window(), metadata(metrics=TRAINED))
    assert report.status == "ok" and report.degraded_metrics == [] and report.matched == 2000
    assert report.reason.startswith("roc_auc ")
    for name in ("accuracy", "roc_auc"):
        assert report.estimated[name] == pytest.approx(report.realized[name], abs=0.02)
        low, high = report.intervals[name]
        assert low <= report.realized[name] <= high
    assert report.realized.keys() == {"accuracy", "f1", "roc_auc", "brier", "log_loss"}
    assert report.estimated_rows == 2000 and report.estimated_calibrated is False


def test_concept_drift_is_degraded_while_the_estimate_stays_up():
    report = check(*calibrated_window(drifted=True), metadata(metrics=TRAINED))
    assert report.status == "degraded"
    assert {"accuracy", "roc_auc", "f1"} <= set(report.degraded_metrics)
    assert "below training 0.8800 - tolerance 0.05" in report.reason
    assert report.realized["accuracy"] < 0.55 and report.estimated["accuracy"] > 0.75


def test_a_floor_degrades_a_model_that_kept_its_training_level():
    report = check(*calibrated_window(), metadata(metrics=TRAINED), settings=Settings(floors={"accuracy": 0.95}))
    assert report.status == "degraded" and report.degraded_metrics == ["accuracy"] and "floor 0.95" in report.reason


def test_too_few_labels_give_no_verdict_but_the_figures():
    found, all_labels = calibrated_window()
    report = check(found, Labels(records=all_labels.records[:99]), metadata(metrics={"roc_auc": 0.99}))
    assert report.status == "insufficient_labels" and report.matched == 99
    assert "99 labelled predictions, fewer than the 100" in report.reason
    assert "accuracy" in report.realized and report.degraded_metrics == []
    assert report.estimated["accuracy"] > 0.7  # every prediction counts for the estimate


def test_regression_has_no_estimate_and_needs_numbers():
    lines = [capture(i, 10.0 + i, None) for i in range(5)] + [capture(5, "ten", None)]
    report = check(captured(lines, classes=None),
                   labels(("p0", 10), ("p1", "11.5"), ("p2", 12.0), ("p3", "abc"), ("p4", True)),
                   metadata("regression", metrics={"rmse": 1.0, "r2": 0.9}), settings=Settings(min_labels=1))
    assert report.matched == 3 and report.invalid_reasons == {"not_a_number": 2}
    assert report.rejected_captures == {"prediction_not_a_number": 1}
    assert report.realized["mae"] == pytest.approx(0.5 / 3) and report.primary_metric == "r2"
    assert report.estimated is UNSET and "estimated" not in report.to_dict()


def test_a_calibrated_artifact_is_used_for_the_estimate():
    from contracts.calibration import Calibration

    always_half = Calibration(kind="positive_class", rows=10, scores=[0.0, 1.0], outcomes=[0.5, 0.5])
    report = check(*calibrated_window(n=300), metadata(metrics=TRAINED, calibration=always_half))
    assert report.estimated_calibrated is True and report.estimated["accuracy"] == pytest.approx(0.5)


def test_the_report_round_trips_and_renders_without_scripts():
    report = check(*calibrated_window(n=300), metadata(metrics=TRAINED))
    again = QualityReport.from_json(report.to_json(indent=2))
    assert again == report
    page = render(report)
    assert "<script" not in page and "realized" in page and "training hold-out" in page
    assert f"{report.realized['accuracy']:.4g}" in page and "calibrated" in page


@pytest.mark.parametrize("kwargs, message", [({"min_labels": 0}, "min-labels"), ({"tolerance": 2}, "tolerance"),
                                             ({"floors": {"rmse": 3}}, "no floor for rmse")])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Settings(**kwargs)


def test_multiclass_reports_macro_metrics_and_estimates_accuracy_and_roc_auc():
    rng = np.random.default_rng(8)
    classes = ["a", "b", "c"]
    proba = rng.dirichlet([2, 2, 2], size=600)
    lines = [capture(i, classes[int(p.argmax())], dict(zip(classes, map(float, p)))) for i, p in enumerate(proba)]
    truth = [classes[rng.choice(3, p=p)] for p in proba]
    report = check(captured(lines, classes), labels(*((f"p{i}", t) for i, t in enumerate(truth))),
                   metadata("multiclass", metrics={"accuracy": 0.6, "f1_macro": 0.6, "roc_auc_ovr": 0.75}))
    assert report.primary_metric == "f1_macro" and report.status == "ok"
    assert report.realized.keys() == {"accuracy", "f1_macro", "roc_auc_ovr", "brier", "log_loss"}
    assert report.estimated.keys() == {"accuracy", "roc_auc_ovr"}
    assert report.estimated["accuracy"] == pytest.approx(report.realized["accuracy"], abs=0.05)
    assert report.estimated["roc_auc_ovr"] == pytest.approx(report.realized["roc_auc_ovr"], abs=0.05)
