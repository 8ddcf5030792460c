"""Compare training pipeline runs, rejected ones included, from their run records; export them to MLflow.

    mlops runs list    [--model-name M] [--limit N] [--html runs.html]
    mlops runs show    RUN_ID [--json]
    mlops runs compare RUN_ID RUN_ID... [--html compare.html]
    mlops runs export  --mlflow URI [--experiment NAME]

Records are read from the deployed reports bucket (found through the storage stack's outputs),
from --bucket NAME, or from a folder (--dir DIR, e.g. a copy of the bucket). Exit 0 on success,
1 when the records cannot be read or the run is unknown, 2 for bad usage.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contracts.run_record import RunRecord
from mlops import runs_view
from mlops.run_store import Location, RunStoreError, find_run, load_records, reports_bucket

USAGE = {
    "list": "mlops runs list --model-name breast-cancer --limit 20 --html runs.html\n"
            "  mlops runs list --dir ./reports-copy       # records copied from s3://<reports bucket>/runs/",
    "show": "mlops runs show run-20261201-0912",
    "compare": "mlops runs compare run-20261130-2200 run-20261201-0912 --html compare.html",
    "export": "mlops runs export --mlflow http://127.0.0.1:5000 --experiment breast-cancer\n"
              "  mlops runs export --mlflow arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/team",
}
EXAMPLES = "examples:\n" + "\n".join(f"  {line}" for line in USAGE.values())


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog or "mlops runs", description=__doc__.splitlines()[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = argparse.ArgumentParser(add_help=False)
    where = source.add_mutually_exclusive_group()
    where.add_argument("--bucket", help="read runs/ of this bucket (default: the deployed reports bucket)")
    where.add_argument("--dir", type=Path, help="read the records from this folder instead of S3")
    source.add_argument("--project-name", help="stack name prefix (default: cdk.json project_name)")
    source.add_argument("--model-name", help="only this model's runs")
    sub = parser.add_subparsers(dest="action", required=True)
    for name, text in (("list", "the runs, newest first: status, primary metric, registry version"),
                       ("show", "every field of one run"),
                       ("compare", "runs side by side: parameters, data, metrics, gate"),
                       ("export", "copy the records into an MLflow tracking server (skips those already there)")):
        p = sub.add_parser(name, parents=[source], help=text, description=text, epilog=f"example:\n  {USAGE[name]}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == "list":
            p.add_argument("--limit", type=int, default=50, help="the newest N runs (default 50)")
        if name == "show":
            p.add_argument("run_id")
            p.add_argument("--json", action="store_true", help="print the record as JSON")
        if name == "compare":
            p.add_argument("run_ids", nargs="+", metavar="RUN_ID")
        if name in ("list", "compare"):
            p.add_argument("--html", type=Path, help="also write an HTML page charting the primary metric")
        if name == "export":
            p.add_argument("--mlflow", default=os.environ.get("MLFLOW_TRACKING_URI"),
                           help="tracking server URL or SageMaker tracking server ARN (default: $MLFLOW_TRACKING_URI)")
            p.add_argument("--experiment", help="MLflow experiment (default: the model name); created when missing")
    return parser


def location(args: argparse.Namespace, clients: Callable[[str], Any]) -> Location:
    if args.dir is not None:
        return Location(path=args.dir)
    if args.bucket:
        return Location(bucket=args.bucket, s3=clients("s3"))
    from stacks.rollout import project_name

    return Location(bucket=reports_bucket(args.project_name or project_name(), clients("cloudformation")),
                    s3=clients("s3"))


def _write_html(path: Path, records: list[RunRecord], title: str, side_by_side: bool = False) -> None:
    from mlops.runs_html import render

    try:
        path.write_text(render(records, title=title, side_by_side=side_by_side))
    except OSError as exc:
        raise RunStoreError(f"cannot write {path}: {exc.strerror}") from exc
    print(f"wrote {path}", file=sys.stderr)


def _title(args: argparse.Namespace, what: str) -> str:
    return f"{what}{f' of {args.model_name}' if args.model_name else ''}"


def run_action(args: argparse.Namespace, records: list[RunRecord]) -> str:
    """The action's output; writes the HTML page when asked."""
    if args.action == "list":
        shown = records[-args.limit:]
        if args.html:
            _write_html(args.html, shown, _title(args, "Runs"))
        return runs_view.table(runs_view.LIST_HEADERS, runs_view.list_rows(shown[::-1]))
    if args.action == "show":
        record = find_run(records, args.run_id)
        return record.to_json() if args.json else runs_view.show(record)
    if args.action == "compare":
        chosen = [find_run(records, run_id) for run_id in dict.fromkeys(args.run_ids)]
        if args.html:
            _write_html(args.html, chosen, _title(args, "Compared runs"), side_by_side=True)
        return runs_view.compare(chosen)
    from mlops.mlflow_export import Client, export

    if not args.mlflow:
        raise RunStoreError("export needs --mlflow URI (or MLFLOW_TRACKING_URI)")
    return json.dumps(export(Client.from_uri(args.mlflow), records, args.experiment), indent=2)


def main(argv: list[str] | None = None, prog: str | None = None,
         *, clients: Callable[[str], Any] | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.action == "list" and args.limit < 1:
        parser.error("--limit must be at least 1")
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    from mlops.mlflow_export import MlflowError

    if clients is None:
        import boto3

        clients = boto3.client
    try:
        records = load_records(location(args, clients), args.model_name)
        print(run_action(args, records))
    except NoCredentialsError:
        print("runs: no AWS credentials to read the records with: configure them (aws configure), "
              "or read a folder with --dir DIR", file=sys.stderr)
        return 1
    except (RunStoreError, MlflowError, ClientError, BotoCoreError) as exc:
        print(f"runs {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
