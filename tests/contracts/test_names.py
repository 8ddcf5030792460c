"""The shared names: every key lies under the prefix the stacks grant for it; importing them costs nothing."""
import subprocess
import sys
from datetime import UTC, datetime

from contracts import names


def test_keys_lie_under_their_granted_prefixes():
    model, run = "churn", "run-7"
    assert names.training_data_key(model).startswith(names.DATASETS)
    for part in names.SPLIT_PARTS:
        assert names.split_prefix(model, run, part).startswith(names.splits_prefix(model))
    assert names.promotions_key(model).startswith(names.models_prefix(model))
    assert names.validation_report_key(model, run).startswith(names.validation_prefix(model))
    assert names.evaluation_report_key(model, run).startswith(names.evaluation_prefix(model))
    assert names.run_record_key(model, run) == "runs/churn/run-7.json"
    assert names.run_record_key(model, run).startswith(names.runs_prefix(model))
    assert names.drift_checkpoint_key(model).startswith(names.drift_prefix(model))
    assert names.drift_report_stem(model, datetime(2025, 1, 15, 6, tzinfo=UTC)).startswith(
        names.drift_prefix(model) + "dt=2025-01-15/")


def test_capture_errors_are_outside_the_capture_the_drift_check_reads():
    assert not names.capture_errors_prefix("m").startswith(names.capture_prefix("m"))
    assert not names.capture_errors_prefix("m").startswith(names.CAPTURE)


def test_prefixes_of_two_models_never_overlap():
    """A model named like another's prefix must not read or be granted the other's keys."""
    for prefix in (names.capture_prefix, names.models_prefix, names.drift_prefix, names.splits_prefix, names.runs_prefix):
        assert not prefix("churn-2").startswith(prefix("churn"))


def test_the_contracts_that_serving_imports_before_its_download_are_standard_library_only():
    code = ("import sys\nimport contracts.names, contracts.env, contracts.s3_uri, contracts.artifact_fetch\n"
            "print(sorted(m for m in ('pydantic', 'numpy', 'boto3', 'msgspec') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
