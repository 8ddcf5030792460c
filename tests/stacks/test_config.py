"""Configuration: defaults that deploy, -c strings converted, bad values named, the docs table in sync."""
from __future__ import annotations

import json

import pytest

from stacks.config import BATCH_OUTPUT_FORMATS, Config, ConfigError, markdown_table
from tests.stacks.stack_helpers import REPO


def from_context(values: dict) -> Config:
    return Config.from_context(values.get)


def test_defaults_deploy_as_they_are():
    config = Config()
    assert config.auth_mode == "api_key"
    assert config.training_data_key == "datasets/breast-cancer/train.csv"
    assert not config.model_promoted
    assert config.canary == "LambdaCanary10Percent5Minutes"


def test_repository_cdk_json_is_a_valid_configuration():
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    config = from_context(context)
    assert config.project_name == context["project_name"]
    assert config.model_name == context["model_name"]


def test_command_line_strings_take_the_field_types():
    config = from_context({
        "drift_min_rows": "1000", "auto_approve": "TRUE", "eval_floor": "0.75",
        "categorical": "colour, size", "throttle_rate_limit": "12.5", "model_version": 7,
    })
    assert config.drift_min_rows == 1000 and config.auto_approve is True and config.eval_floor == 0.75
    assert config.categorical == ("colour", "size")
    assert config.throttle_rate_limit == 12.5
    assert config.model_version == "7"
    assert from_context({"categorical": '["a", "b"]'}).categorical == ("a", "b")
    assert from_context({"categorical": ["a"]}).categorical == ("a",)


def test_training_data_key_follows_the_model_name_unless_set():
    assert from_context({"model_name": "churn"}).training_data_key == "datasets/churn/train.csv"
    assert from_context({"training_data_key": "datasets/x.csv"}).training_data_key == "datasets/x.csv"


@pytest.mark.parametrize(("key", "value", "message"), [
    ("drift_min_rows", "many", "expected an integer"),
    ("drift_min_rows", 2.5, "expected an integer"),
    ("auto_approve", "yes please", "expected true or false"),
    ("eval_floor", "nan", "expected a number"),
    ("categorical", 3, "expected a list of column names"),
    ("project_name", "My Project", "lower-case"),
    ("model_name", "Breast_Cancer", "lower-case"),
    ("auth_mode", "cognito", "api_key, iam, none"),
    ("drift_schedule", "hourly", "EventBridge expression"),
    ("drift_schedule", "rate(1 hours)", "EventBridge expression"),
    ("drift_schedule", "rate(5 minute)", "EventBridge expression"),
    ("task", "ranking", "binary, multiclass, regression"),
    ("training_instance_type", "m5.large", "ml.m5.large"),
    ("inference_timeout_seconds", "60", "29"),
    ("inference_memory_mb", "64", "128"),
    ("canary", "Canary50Percent", "LambdaCanary10Percent5Minutes"),
    ("capture_sample_rate", "1.5", "between 0 and 1"),
    ("log_retention_days", "10", "must be one of"),
    ("alarm_email", "ops", "e-mail"),
    ("model_data_url", "https://example.com/model.tar.gz", "s3://"),
    ("model_package_arn", "model-3", "model package ARN"),
    ("error_rate_alarm_percent", "0", "(0, 100]"),
    ("model_retry_seconds", "0", "between 1 and 3600"),
    ("serving_runtime", "tensorflow", "auto, onnxruntime, scikit-learn"),
    ("strict_categories", "maybe", "expected true or false"),
    ("public_docs", "sometimes", "expected true or false"),
    ("batch_max_concurrency", "0", "between 1 and 10000"),
    ("batch_max_concurrency", "10001", "between 1 and 10000"),
    ("batch_items_per_child", "0", "between 1 and 100"),
    ("batch_items_per_child", "101", "between 1 and 100"),
    ("batch_part_mb", "0", "between 1 and 1024"),
    ("batch_part_mb", "2048", "between 1 and 1024"),
    ("batch_part_mb", "1.5", "expected an integer"),
    ("batch_tolerated_failure_percent", "-1", "between 0 and 100"),
    ("batch_tolerated_failure_percent", "100.5", "between 0 and 100"),
    ("batch_output_format", "parquet", "jsonl, csv"),
    ("batch_capture_sample_rate", "1.5", "between 0 and 1"),
    ("batch_capture_sample_rate", "-0.1", "between 0 and 1"),
    ("batch_memory_mb", "64", "between 128 and 10240"),
    ("batch_memory_mb", "20000", "between 128 and 10240"),
    ("batch_trigger_on_upload", "sometimes", "expected true or false"),
    ("quality_missing_increase", "0", "above 0 and at most 1"),
    ("quality_out_of_range_share", "-0.05", "above 0 and at most 1"),
    ("quality_malformed_share", "1.5", "above 0 and at most 1"),
    ("quality_fail_share", "a third", "expected a number"),
    ("quality_alarm_issues", "0", "must be >= 1"),
    ("client_error_alarm_percent", "0", "(0, 100]"),
    ("client_error_alarm_percent", "101", "(0, 100]"),
    ("capture_dropped_alarm_records", "0", "must be >= 1"),
    ("capture_silence_minutes", "4", "between 5 and 1440"),
    ("capture_silence_minutes", "1441", "between 5 and 1440"),
    ("algorithm", "xgboost", "must be one of linear, random_forest"),
    ("hyperparameters", "max_iter=3", "expected a JSON object"),
    ("hyperparameters", '{"max_iter": 0}', "hyperparameter 'max_iter' of linear: must be >= 1"),
    ("hyperparameters", '{"n_estimators": 10}', "unknown hyperparameter 'n_estimators' for linear"),
    ("search_candidates", "-1", "between 0 (no search) and 200"),
    ("search_candidates", "201", "between 0 (no search) and 200"),
    ("search_seconds", "3600", "below training_max_runtime_minutes"),
])
def test_bad_values_are_rejected_naming_the_key(key, value, message):
    with pytest.raises(ConfigError, match=rf"'{key}'.*{_escape(message)}"):
        from_context({key: value})


def _escape(text: str) -> str:
    return "".join("\\" + c if c in "()[]." else c for c in text)


def test_model_choice_defaults_and_command_line_values():
    config = Config()
    assert (config.algorithm, dict(config.hyperparameters), config.search_candidates) == ("linear", {}, 0)
    assert config.search_budget_seconds == 30 * config.training_max_runtime_minutes  # half the job's time
    config = from_context({"algorithm": "gradient_boosting", "hyperparameters": '{"n_estimators": "50"}',
                           "search_candidates": "8", "search_seconds": "600", "training_max_runtime_minutes": "20"})
    assert config.algorithm == "gradient_boosting" and config.hyperparameters == {"n_estimators": 50}  # typed
    assert (config.search_candidates, config.search_budget_seconds) == (8, 600)
    assert from_context({"hyperparameters": {"l2": 2}}).hyperparameters == {"l2": 2}  # cdk.json's JSON object


def test_hyperparameters_belong_to_the_algorithm():
    with pytest.raises(ConfigError, match="'hyperparameters'.*unknown hyperparameter 'l2' for random_forest"):
        from_context({"algorithm": "random_forest", "hyperparameters": {"l2": 2}})


def test_categorical_columns_must_be_usable_as_a_hyperparameter():
    with pytest.raises(ConfigError, match="'categorical'.*twice"):
        from_context({"categorical": ["a", "a"]})
    with pytest.raises(ConfigError, match="'categorical'.*target"):
        from_context({"categorical": ["target"]})
    with pytest.raises(ConfigError, match="'categorical'.*comma"):
        from_context({"categorical": ["a,b"]})


def test_a_promoted_model_needs_its_checksum():
    with pytest.raises(ConfigError, match="'model_sha256'"):
        from_context({"model_data_url": "s3://bucket/models/m/model.tar.gz"})
    config = from_context({"model_data_url": "s3://bucket/models/m/model.tar.gz", "model_sha256": "0" * 64})
    assert config.model_promoted


def test_reserved_concurrency_leaves_room_for_provisioned():
    with pytest.raises(ConfigError, match="'reserved_concurrency'"):
        from_context({"reserved_concurrency": 2, "provisioned_concurrency": 3})


@pytest.mark.parametrize(("schedule", "minutes"), [
    ("rate(1 hour)", 60), ("rate(15 minutes)", 15), ("rate(2 days)", 1440), ("cron(0 6 * * ? *)", 60),
])
def test_the_drift_alarm_period_follows_the_schedule(schedule, minutes):
    assert from_context({"drift_schedule": schedule}).drift_period_minutes == minutes


def test_batch_defaults_and_command_line_values():
    config = Config()
    assert (config.batch_max_concurrency, config.batch_items_per_child, config.batch_part_mb) == (100, 1, 64)
    assert (config.batch_tolerated_failure_percent, config.batch_capture_sample_rate) == (0.0, 0.0)
    assert (config.batch_output_format, config.batch_memory_mb, config.batch_trigger_on_upload) == ("jsonl", 4096, True)
    config = from_context({"batch_tolerated_failure_percent": "2.5", "batch_trigger_on_upload": "false",
                           "batch_output_format": "csv", "batch_max_concurrency": "10000"})
    assert config.batch_tolerated_failure_percent == 2.5 and config.batch_trigger_on_upload is False
    assert config.batch_output_format == "csv" and config.batch_max_concurrency == 10000


def test_serving_defaults_and_command_line_values():
    config = Config()
    assert (config.strict_categories, config.serving_runtime, config.public_docs) == (False, "auto", False)
    config = from_context({"strict_categories": "true", "serving_runtime": "scikit-learn", "public_docs": True})
    assert (config.strict_categories, config.serving_runtime, config.public_docs) == (True, "scikit-learn", True)


def test_batch_output_formats_are_the_contracts():
    from contracts.batch_job import OUTPUT_FORMATS

    assert BATCH_OUTPUT_FORMATS == OUTPUT_FORMATS


def test_configuration_reference_is_in_sync_with_the_fields():
    assert markdown_table() in (REPO / "docs" / "configuration.md").read_text()


def test_input_alarm_and_quality_defaults_and_command_line_values():
    config = Config()
    assert (config.quality_missing_increase, config.quality_out_of_range_share, config.quality_malformed_share,
            config.quality_fail_share) == (0.1, 0.05, 0.01, 1 / 3)
    assert (config.quality_alarm_issues, config.client_error_alarm_percent, config.capture_dropped_alarm_records,
            config.capture_silence_minutes) == (1, 10.0, 10, 60)
    config = from_context({"quality_fail_share": "0.5", "client_error_alarm_percent": "2.5",
                           "capture_silence_minutes": "1440", "quality_out_of_range_share": 1})
    assert config.quality_fail_share == 0.5 and config.client_error_alarm_percent == 2.5
    assert config.capture_silence_minutes == 1440 and config.quality_out_of_range_share == 1.0
