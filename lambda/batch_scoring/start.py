"""`mlops batch start`: start a batch job on the deployed state machine, optionally wait for its summary.

The state machine is found through the batch stack's output; its execution input is the job
request (batch_scoring.job_input). Exit 0/1/2 as the summary's status when waiting, else 0 once started.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from contracts import names
from contracts.names import Output

EXAMPLES = """examples:
  mlops batch start --job-id nightly-2026-12-01 --wait
  mlops batch start --job-id backfill --objects s3://DATA_BUCKET/datasets/my-model/2025.csv.gz --model-version 3"""
EXIT = {"succeeded": 0, "completed_with_errors": 1, "failed": 2}


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job-id", required=True, help="the job: its input folder batch/<model>/input/<job-id>/")
    parser.add_argument("--objects", nargs="+", help="score these s3:// objects (data bucket) instead of the folder")
    parser.add_argument("--model-version", type=int, help="a registry version instead of the live model")
    parser.add_argument("--format", choices=("jsonl", "csv"), help="output format (default: the stack's)")
    parser.add_argument("--part-mb", type=int, help="split plain files into parts of this many MB")
    parser.add_argument("--project", help="project_name of the deployment (default: cdk.json's)")
    parser.add_argument("--wait", action="store_true", help="wait for the job and print its summary")
    return parser


def execution_input(args: argparse.Namespace) -> dict[str, Any]:
    doc: dict[str, Any] = {"job_id": args.job_id}
    for field, value in (("objects", args.objects), ("model_version", args.model_version),
                         ("format", args.format), ("part_mb", args.part_mb)):
        if value is not None:
            doc[field] = value
    return doc


def main(argv: list[str] | None = None, prog: str | None = None, *, sfn: Any = None, cloudformation: Any = None) -> int:
    import boto3

    from stacks.rollout import PromotionError, project_name, stack_outputs

    args = build_parser(prog).parse_args(argv)
    stack = names.stack_name(args.project or project_name(), names.BATCH_SCORING)
    try:
        outputs = stack_outputs(cloudformation or boto3.client("cloudformation"), stack)
    except PromotionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if Output.BATCH_STATE_MACHINE_ARN not in outputs:
        print(f"error: stack {stack} has no output {Output.BATCH_STATE_MACHINE_ARN}: deploy it", file=sys.stderr)
        return 2
    sfn = sfn or boto3.client("stepfunctions")
    doc = execution_input(args)
    started = sfn.start_execution(stateMachineArn=outputs[Output.BATCH_STATE_MACHINE_ARN], input=json.dumps(doc))
    print(json.dumps({"execution_arn": started["executionArn"], "input": doc}, indent=2), flush=True)
    if not args.wait:
        return 0
    while (described := sfn.describe_execution(executionArn=started["executionArn"]))["status"] == "RUNNING":
        time.sleep(5)
    if described["status"] != "SUCCEEDED":
        print(f"error: the job {described['status']}: {described.get('error', '')} {described.get('cause', '')}",
              file=sys.stderr)
        return 2
    summary = json.loads(described.get("output") or "{}")
    print(json.dumps(summary, indent=2))
    return EXIT.get(summary.get("status"), 2)
