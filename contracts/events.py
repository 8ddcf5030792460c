"""Drift → retraining: the EventBridge pattern and the pipeline input, shared by the monitoring stack and the local loop."""
from __future__ import annotations

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"


def drift_alarm_pattern(alarm_arn: str) -> dict:
    """Matches the dataset-drift alarm entering ALARM (EventBridge pattern syntax)."""
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": [ALARM_STATE_CHANGE],
        "resources": [alarm_arn],
        "detail": {"state": {"value": ["ALARM"]}},
    }


def retraining_input(*, model_name: str, data_uri: str, target: str) -> dict:
    """What the rule passes to the training state machine."""
    return {"model_name": model_name, "data_uri": data_uri, "target": target, "trigger": "drift-alarm"}
