"""Shared helpers for the drift tests: the test schema, synthetic columns, baselines, capture lines, a Lambda
context, and the handler on moto (capture files in, stored reports and EMF out)."""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass

import numpy as np

from contracts import names
from contracts.baseline import Baseline, baseline_json
from contracts.capture_record import record_line
from contracts.schema import MISSING_CATEGORY, Feature, FeatureSchema, FeatureType
from drift_check.stats import build_baseline

COLORS = np.array(["red", "green", "blue"], dtype=object)


SCHEMA = FeatureSchema(target="label", features=[
    Feature(name="x", type=FeatureType.NUMERIC),
    Feature(name="n", type=FeatureType.NUMERIC, integer=True),
    Feature(name="color", type=FeatureType.CATEGORICAL, categories=sorted(COLORS.tolist())),
])


def make_columns(rng: np.random.Generator, n: int, *, shift: float = 0.0, blue: float = 0.2) -> dict[str, np.ndarray]:
    """x ~ N(shift, 1), n ~ Poisson(3) (discrete), color with P(blue) = `blue`."""
    rest = (1 - blue) / 2
    return {
        "x": rng.normal(shift, 1.0, n),
        "n": rng.poisson(3, n).astype(np.float64),
        "color": rng.choice(COLORS, n, p=[rest, rest, blue]),
    }


def one_feature_baseline(kind: FeatureType, values: np.ndarray, name: str = "v") -> Baseline:
    """The baseline of one feature (no predictions), read back from its JSON."""
    schema = FeatureSchema(target="y", features=[Feature(name=name, type=kind)])
    return Baseline.from_json(baseline_json(build_baseline(schema, {name: values}, task="regression", classes=None,
                                                           predictions=None)))


def capture_lines(columns: dict[str, np.ndarray], *, version: str = "1") -> list[bytes]:
    """Capture records as serving writes them (contracts.capture_record.record_line)."""
    n = len(columns["x"])
    return [
        record_line(
            time="2025-01-15T05:00:00Z", request_id=f"r{i}", model_name="churn", model_version=version,
            features={
                "x": float(columns["x"][i]),
                "n": int(columns["n"][i]),
                "color": None if columns["color"][i] == MISSING_CATEGORY else str(columns["color"][i]),
            },
            prediction="yes" if columns["x"][i] > 0 else "no",
            probability={"no": 0.5, "yes": 0.5},
        )
        for i in range(n)
    ]


@dataclass
class FakeContext:
    """The parts of the Lambda context the handler and Powertools read."""

    remaining_ms: int = 600_000
    function_name: str = "drift-check"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:drift-check"
    aws_request_id: str = "00000000-0000-0000-0000-000000000001"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


PREFIX = names.capture_prefix("churn") + "2025/01/15/05/"


def put_capture(s3, name: str, lines: list[bytes], *, compress: bool = True) -> None:
    body = b"".join(lines)
    s3.put_object(Bucket="capture", Key=PREFIX + name, Body=gzip.compress(body) if compress else body)


def emf_blobs(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]


def stored_report(s3, uri: str) -> dict:
    key = uri.removeprefix("s3://reports/")
    return json.loads(s3.get_object(Bucket="reports", Key=key)["Body"].read())


def run(aws, event, context=None) -> dict:
    return aws.app.handler(event, context or FakeContext())
