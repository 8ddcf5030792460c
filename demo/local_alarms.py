"""CloudWatch and EventBridge for the local loop: EMF → metrics, the drift and model-quality alarms, the retraining
rule.

In AWS, CloudWatch extracts metrics from the EMF lines a function prints, evaluates the alarm,
and EventBridge matches the alarm's state change against the retraining rule. moto stores
metrics and alarms but evaluates neither, so this does those two steps with the same metric
names, threshold and event pattern the stacks use (contracts.metric_names, contracts.events).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import boto3

from contracts import metric_names as mn
from contracts.events import ALARM_STATE_CHANGE, alarm_pattern

PERIOD_SECONDS = 3600


def publish_emf(output: str) -> int:
    """Put every metric of every EMF line in `output` into CloudWatch, as its log ingestion does; returns how many."""
    cloudwatch = boto3.client("cloudwatch")
    count = 0
    for line in output.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        timestamp = datetime.fromtimestamp(blob["_aws"]["Timestamp"] / 1000, UTC)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = [{"Name": d, "Value": str(blob[d])} for d in dimension_set]
                data = [{"MetricName": m["Name"], "Dimensions": dimensions, "Timestamp": timestamp,
                         "Unit": m.get("Unit", "None"), "Value": float(value)}
                        for m in directive["Metrics"] for value in _values(blob[m["Name"]])]
                cloudwatch.put_metric_data(Namespace=directive["Namespace"], MetricData=data)
                count += len(data)
    return count


def _values(value) -> list[float]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class VerdictAlarm:
    """An alarm on a check's 1/0 verdict metric per model (ModelName only), Maximum ≥ threshold, as the monitoring
    stack defines the DatasetDrift and ModelQuality alarms."""

    model_name: str
    metric: str = mn.DRIFT_DATASET
    threshold: float = mn.DRIFT_ALARM_THRESHOLD
    kind: str = "DatasetDrift"

    @property
    def name(self) -> str:
        return f"{self.model_name}-{self.kind}"

    def create(self) -> str:
        """The alarm as the monitoring stack defines it; returns its ARN."""
        cloudwatch = boto3.client("cloudwatch")
        cloudwatch.put_metric_alarm(
            AlarmName=self.name, Namespace=mn.NAMESPACE, MetricName=self.metric,
            Dimensions=[{"Name": mn.DIM_MODEL_NAME, "Value": self.model_name}],
            Statistic=mn.DRIFT_ALARM_STATISTIC, Period=PERIOD_SECONDS, EvaluationPeriods=1,
            Threshold=self.threshold, ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="ignore")
        return self.arn()

    def arn(self) -> str:
        return boto3.client("cloudwatch").describe_alarms(AlarmNames=[self.name])["MetricAlarms"][0]["AlarmArn"]

    def evaluate(self, now: datetime) -> str:
        """Evaluate the last period's datapoint against the threshold, set and return the state."""
        cloudwatch = boto3.client("cloudwatch")
        points = cloudwatch.get_metric_statistics(
            Namespace=mn.NAMESPACE, MetricName=self.metric,
            Dimensions=[{"Name": mn.DIM_MODEL_NAME, "Value": self.model_name}],
            StartTime=now - timedelta(seconds=PERIOD_SECONDS), EndTime=now + timedelta(seconds=60),
            Period=PERIOD_SECONDS, Statistics=[mn.DRIFT_ALARM_STATISTIC])["Datapoints"]
        if not points:  # missing data is ignored: the alarm keeps its state
            return cloudwatch.describe_alarms(AlarmNames=[self.name])["MetricAlarms"][0]["StateValue"]
        breaching = any(p[mn.DRIFT_ALARM_STATISTIC] >= self.threshold for p in points)
        state = "ALARM" if breaching else "OK"
        cloudwatch.set_alarm_state(AlarmName=self.name, StateValue=state,
                                   StateReason=f"{len(points)} datapoint(s) in the last hour, breaching: {breaching}")
        return state

    def state_change_event(self, state: str, now: datetime) -> dict:
        return {"version": "0", "id": "local", "detail-type": ALARM_STATE_CHANGE, "source": "aws.cloudwatch",
                "account": "123456789012", "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": "us-east-1",
                "resources": [self.arn()],
                "detail": {"alarmName": self.name, "state": {"value": state}, "previousState": {"value": "OK"}}}


@dataclass(frozen=True)
class QueuedRule:
    """An EventBridge rule on moto's bus, delivering to a queue the local runner reads.

    In AWS the rules' targets are state machines; moto cannot start Step Functions, so a rule
    delivers the matched event to SQS and the runner plays the state machine with the same input.
    """

    name: str

    def create(self, pattern: dict) -> None:
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName=self.name)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = boto3.client("events")
        events.put_rule(Name=self.name, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=self.name, Targets=[{"Id": "state-machine", "Arn": queue_arn}])

    def deliver(self, event: dict) -> list[dict]:
        """Put the event on the bus; return the events the rule matched and delivered."""
        boto3.client("events").put_events(Entries=[{
            "Source": event["source"], "DetailType": event["detail-type"], "Resources": event["resources"],
            "Detail": json.dumps(event["detail"])}])
        sqs = boto3.client("sqs")
        queue_url = sqs.get_queue_url(QueueName=self.name)["QueueUrl"]
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(m["Body"]) for m in messages]


def quality_alarm(model_name: str) -> VerdictAlarm:
    return VerdictAlarm(model_name, mn.QUALITY_DEGRADED, mn.QUALITY_ALARM_THRESHOLD, "ModelQuality")


@dataclass(frozen=True)
class RetrainingRule(QueuedRule):
    """An alarm → retraining rule; the runner starts the local pipeline with contracts.events.retraining_input."""

    name: str = "local-retrain-on-quality"

    def create(self, alarm_arn: str) -> None:  # type: ignore[override]
        super().create(alarm_pattern(alarm_arn))
