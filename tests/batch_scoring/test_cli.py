"""`mlops batch`: local scoring's exit codes and progress, and `mlops batch start` against stubbed AWS."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from batch_scoring import cli, start
from contracts.names import Output
from mlops.cli import main as mlops
from tests.batch_scoring.batch_helpers import csv_text, feature_names


@pytest.fixture
def inputs(breast_cancer_dir: Path, tmp_path: Path) -> Path:
    from sklearn.datasets import load_breast_cancer

    names = feature_names(breast_cancer_dir)
    good = csv_text(names, [list(r) for r in load_breast_cancer().data[:30]])
    (tmp_path / "good.csv").write_bytes(good)
    return tmp_path


def test_exit_0_when_every_row_is_scored(breast_cancer_dir: Path, inputs: Path, capsys: pytest.CaptureFixture) -> None:
    code = mlops(["batch", "--model-dir", str(breast_cancer_dir), "--input", str(inputs / "good.csv"),
                  "--output", str(inputs / "out"), "--workers", "1"])
    captured = capsys.readouterr()
    assert code == 0
    assert json.loads(captured.out)["scored"] == 30
    assert "rows/s" in captured.err and "100.0%" in captured.err  # the progress bar


def test_exit_1_when_rows_go_to_the_errors_file(breast_cancer_dir: Path, inputs: Path, capsys: pytest.CaptureFixture) -> None:
    names = feature_names(breast_cancer_dir)
    (inputs / "bad.csv").write_bytes(csv_text(names, [["x"] * len(names), [1.0] * len(names)]))
    code = cli.main(["--model-dir", str(breast_cancer_dir), "--input", str(inputs / "bad.csv"),
                     "--output", str(inputs / "out"), "--quiet"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1 and (summary["rows"], summary["scored"], summary["errors"]) == (2, 1, 1)
    assert (inputs / "out" / "bad.csv" / "errors-00000.jsonl").exists()


@pytest.mark.parametrize("problem", ["model", "input", "type", "header", "workers"])
def test_exit_2_on_bad_input(breast_cancer_dir: Path, inputs: Path, capsys: pytest.CaptureFixture, problem: str) -> None:
    args = {"model": str(inputs), "input": str(inputs / "good.csv"), "output": str(inputs / "out")}
    extra: list[str] = []
    if problem == "model":
        expected = "not a model artifact"
    else:
        args["model"] = str(breast_cancer_dir)
    if problem == "input":
        args["input"], expected = str(inputs / "missing.csv"), "no such file or folder"
    if problem == "type":
        (inputs / "t.xlsx").write_bytes(b"PK")
        args["input"], expected = str(inputs / "t.xlsx"), "t.xlsx: unknown file type"
    if problem == "header":
        (inputs / "h.csv").write_bytes(b"a,b\n1,2\n")
        args["input"], expected = str(inputs / "h.csv"), "h.csv: the header has no column 'mean_radius'"
    if problem == "workers":
        extra, expected = ["--workers", "0"], "--workers must be >= 1"
    code = cli.main(["--model-dir", args["model"], "--input", args["input"], "--output", args["output"], "--quiet", *extra])
    assert code == 2
    assert expected in capsys.readouterr().err


class StubAws:
    """CloudFormation's outputs and Step Functions' executions, as `start` uses them."""

    def __init__(self, outputs: dict[str, str] | None, statuses: list[dict[str, Any]]) -> None:
        self.outputs, self.statuses = outputs, statuses
        self.started: list[dict] = []

    def describe_stacks(self, StackName: str) -> dict:
        if self.outputs is None:
            raise ClientError({"Error": {"Code": "ValidationError", "Message": f"Stack {StackName} does not exist"}},
                              "DescribeStacks")
        return {"Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]}]}

    def start_execution(self, **kwargs: Any) -> dict:
        self.started.append(kwargs)
        return {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:batch:e1"}

    def describe_execution(self, executionArn: str) -> dict:
        return self.statuses.pop(0)


ARN = {Output.BATCH_STATE_MACHINE_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:serverless-mlops-batch"}


def test_start_sends_the_job_request_and_waits_for_the_summary(capsys: pytest.CaptureFixture,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(start.time, "sleep", lambda s: None)
    done = {"status": "SUCCEEDED", "output": json.dumps({"status": "completed_with_errors", "rows": 10})}
    aws = StubAws(ARN, [{"status": "RUNNING"}, done])
    code = start.main(["--job-id", "backfill", "--objects", "s3://b/datasets/m/2025.csv.gz", "--model-version", "3",
                       "--format", "csv", "--wait"], sfn=aws, cloudformation=aws)
    assert code == 1
    (call,) = aws.started
    assert call["stateMachineArn"] == ARN[Output.BATCH_STATE_MACHINE_ARN]
    assert json.loads(call["input"]) == {"job_id": "backfill", "objects": ["s3://b/datasets/m/2025.csv.gz"],
                                         "model_version": 3, "format": "csv"}
    assert '"rows": 10' in capsys.readouterr().out


def test_start_without_the_stack_or_with_a_failed_execution(capsys: pytest.CaptureFixture) -> None:
    assert start.main(["--job-id", "j"], sfn=StubAws(None, []), cloudformation=StubAws(None, [])) == 2
    assert "is not deployed" in capsys.readouterr().err
    aws = StubAws(ARN, [{"status": "FAILED", "error": "PlanError", "cause": "no input files under s3://…"}])
    assert start.main(["--job-id", "j", "--wait"], sfn=aws, cloudformation=aws) == 2
    assert "PlanError" in capsys.readouterr().err


def test_mlops_batch_start_dispatches(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}
    monkeypatch.setattr(start, "main", lambda argv, prog=None: seen.update(argv=argv, prog=prog) or 0)
    assert mlops(["batch", "start", "--job-id", "j"]) == 0
    assert seen == {"argv": ["--job-id", "j"], "prog": "mlops batch start"}
