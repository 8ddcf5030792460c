"""`make demo`: the whole loop on one machine, against an embedded AWS (moto server on 127.0.0.1).

upload data → validate → train (SageMaker's container contract, in a subprocess) → evaluate →
register → approve → promote → serve with uvicorn → real HTTP traffic, captured through Firehose →
drift check on an EventBridge scheduled event → labels for part of the traffic, later (POST /feedback and a
bulk file) → model-quality check → hours of low traffic pooled into one verdict → a drifted segment whose labels
changed too → drift found → its labels → quality degraded → retraining on the labelled production rows → the
candidate judged against the live model on the hold-out and on the most recent labelled rows → a file scored by
a batch job (S3 trigger, plan, Distributed Map children, summary). Same handlers and modules as the cloud.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from contracts.env import Var
from contracts.metric_names import NAMESPACE
from training.evaluate import DEFAULT_FLOOR
from training.model_space import ALGORITHMS, DEFAULT_ALGORITHM
from training.validate import TASKS

os.environ.setdefault(Var.TRACE_DISABLED, "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the demo prints its own progress
os.environ.setdefault(Var.METRICS_NAMESPACE, NAMESPACE)

from demo.data import DemoData, DemoDataError, bundled, user_data
from demo.emulator import embedded_aws
from demo.loop import CandidateRejected, LoopResult, run_loop, side_by_side

WORKDIR = Path(".demo")  # in the folder it is run from


@contextmanager
def step(title: str):
    print(f"→ {title} …", flush=True)
    started = time.perf_counter()
    yield
    print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)


def summary(result: LoopResult) -> None:
    print("\n" + "=" * 78)
    print("summary")
    print("=" * 78)
    print("model versions in the registry:")
    for v in result.versions:
        metrics = ", ".join(f"{k} {val:.4f}" for k, val in sorted(v.metrics.items()))
        print(f"  v{v.version}  {v.approval_status:<22} {metrics}")
    print(f"data: {result.data.csv_path}, target {result.data.target}, model {result.data.model_name}, task "
          f"{result.first_run.validation['task']}")
    print(f"live model: v{result.live.version} ({result.live.model_data_url})")
    for name, t in (("normal traffic", result.normal_traffic), ("drifted traffic", result.drifted_traffic)):
        p = t.percentiles()
        print(f"{name}: {sum(t.statuses.values())} requests, {t.rows_predicted} rows predicted, "
              f"{t.client_errors} rejected with 4xx (sent malformed on purpose), {t.server_errors} 5xx; "
              f"latency p50 {p['p50']:.1f} ms, p95 {p['p95']:.1f} ms, p99 {p['p99']:.1f} ms "
              f"(8 clients at once on loopback, capture put to the emulator included)")
    for label, check in (("drift check after normal traffic", result.first_check),
                         ("drift check after drifted traffic", result.second_check)):
        print(f"{label}: status {check['status']}, dataset drift {check.get('dataset_drift')}, "
              f"{check.get('rows_checked', 0)} rows checked, drifted: {', '.join(check.get('drifted_features', [])) or '-'}")
    pooled = result.low_traffic_checks[-1] if result.low_traffic_checks else {}
    print(f"low traffic: {len(result.low_traffic_checks)} hourly drift checks; "
          f"{sum(c.get('pool') == 'carried_over' for c in result.low_traffic_checks)} carried their rows over, then a "
          f"pooled verdict: status {pooled.get('status')}, {pooled.get('rows_checked')} rows over "
          f"{pooled.get('pooled_runs')} runs")
    print(f"captured records: {result.captured_lines} lines in {result.captured_objects} objects under "
          f"s3://{result.deployment.capture_bucket}/{result.deployment.capture_prefix}")
    print(f"drift reports: {result.first_check.get('report_uri')}\n               {result.second_check.get('report_uri')}")
    print(f"HTML drift page (copied from the reports bucket): {result.html_report}")
    print(f"labels: {result.first_labels.feedback + result.second_labels.feedback} through POST /feedback, "
          f"{result.first_labels.bulk + result.second_labels.bulk} in bulk files; concept drift in the drifted segment: "
          f"{result.concept}")
    for label, check in (("model quality after the normal traffic's labels", result.first_quality),
                         ("model quality after the drifted segment's labels", result.second_quality)):
        print(f"{label}: {check['status']}")
        for report in check.get("windows_reports", []):
            print(f"  {side_by_side(report)}")
    print(f"model quality once more with nothing new: {result.quality_rerun['status']}; model-quality alarm "
          f"{' → '.join(result.quality_states)}; HTML quality page: {result.quality_html}")
    if result.retraining:
        ev, lineage = result.retraining.evaluation, result.retraining.dataset["lineage"]
        primary = ev["primary_metric"]
        print(f"retraining {result.retraining.run_id} ({result.retraining_input['trigger']}): data set of "
              f"{lineage.get('rows')} rows with {lineage.get('production_rows')} labelled production rows, "
              f"{lineage.get('recent_rows')} recent rows kept out")
        print(f"  hold-out: candidate {primary} {number(ev['candidate'].get(primary))} vs live v"
              f"{ev['production_model_package_version']} {number((ev['production'] or {}).get(primary))}")
        if ev.get("recent"):
            r = ev["recent"]
            print(f"  {r['rows']} recent labelled rows: candidate {r['metric']} {number(r['candidate'])} vs live "
                  f"{number(r['production'])}: {'passed' if r['passed'] else 'failed'}")
        print(f"  {'passed → registered v' + str(result.retraining.registration['model_package_version']) if ev['passed'] else 'rejected'}"
              f" ({ev['reason']})")
    if result.batch and result.batch.summary:
        b = result.batch.summary
        print(f"batch job {b['job_id']}: {b['status']}, {b['rows']} rows in {b['parts']} parts → {b['scored']} scored, "
              f"{b['errors']} in {', '.join(b['errors_files']) or 'no errors file'}; model v{b['model']['version']} "
              f"(sha256 {b['model']['sha256'][:12]}…); outputs under s3://{result.deployment.data_bucket}/{b['output_prefix']}")
    print(f"\nwhole loop: {result.seconds:.1f} s")


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


EXAMPLES = """examples:
  mlops demo --workdir .demo --json .demo/loop.json
  mlops demo --data diamonds.csv --target price --categorical cut,color,clarity
  mlops demo --data churn.csv --target churned --model-name churn --task binary

Without --data it runs on scikit-learn's breast-cancer data. With it: the model name defaults to one made
from the file name; the drifted segment moves the first three numeric features by one standard deviation."""


def demo_data(args: argparse.Namespace) -> DemoData | None:
    """The user's data checked before anything starts (DemoDataError names the problem); None: the bundled data."""
    if args.data is None:
        if args.target or args.categorical or args.model_name or args.task:
            raise DemoDataError("--target, --categorical, --model-name and --task describe --data: pass --data too")
        return None
    if not args.target:
        raise DemoDataError(f"--data {args.data}: name its label column with --target")
    categorical = tuple(name.strip() for name in args.categorical.split(",") if name.strip())
    return user_data(args.data.resolve(), args.target, categorical, args.model_name, args.task or None)


def model_choice(args: argparse.Namespace) -> dict:
    """The training runs' model fields, only those given (the pipeline's defaults otherwise)."""
    choice: dict = {}
    if args.algorithm:
        choice["algorithm"] = args.algorithm
    if args.search_candidates:
        choice["search_candidates"] = args.search_candidates
    return choice


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=WORKDIR, help="where the run's files go (emptied first)")
    parser.add_argument("--json", type=Path, help="also write every hand-over as JSON here")
    parser.add_argument("--data", type=Path, help="your own labelled CSV (default: the bundled breast-cancer data)")
    parser.add_argument("--target", default="", help="the label column of --data")
    parser.add_argument("--categorical", default="", help="comma-separated categorical columns of --data")
    parser.add_argument("--model-name", default="", help="default: from the file name (diamonds.csv → diamonds)")
    parser.add_argument("--task", choices=(*TASKS, ""), default="",
                        help="inferred from the target when omitted")
    parser.add_argument("--floor", type=float, help="the evaluation gate's lowest primary metric "
                        f"(default {DEFAULT_FLOOR}: ROC AUC, macro F1 or R²)")
    parser.add_argument("--algorithm", choices=ALGORITHMS, help=f"the model (default {DEFAULT_ALGORITHM}), as a "
                        "training run's execution input would choose it")
    parser.add_argument("--search-candidates", type=int, default=0,
                        help="cross-validated hyperparameter candidates the training job tries (0: none)")
    args = parser.parse_args(argv)
    if args.search_candidates < 0:
        print(f"demo: --search-candidates must be >= 0, got {args.search_candidates}", file=sys.stderr)
        return 2
    args.workdir = args.workdir.resolve()
    try:
        data = demo_data(args)
    except DemoDataError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    if data is not None and data.csv_path.is_relative_to(args.workdir):
        print(f"demo: --data {data.csv_path} is inside --workdir {args.workdir}, which is emptied first: "
              "move the file or pick another --workdir", file=sys.stderr)
        return 2
    if args.floor is not None:
        os.environ[Var.EVAL_FLOOR] = str(args.floor)  # the evaluate step's setting (cdk.json eval_floor)
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    started = time.perf_counter()
    with embedded_aws() as endpoint:
        print(f"embedded AWS (moto server) on {endpoint}; boto3 reaches it through AWS_ENDPOINT_URL\n")
        try:
            result = run_loop(data=data or bundled(args.workdir), workdir=args.workdir, step=step, rng=random.Random(7),
                              choice=model_choice(args))
        except CandidateRejected as exc:
            print(f"demo: {exc}; a model this weak is not served. Add features or rows, or lower the gate with "
                  "--floor (make demo … FLOOR=0.3)", file=sys.stderr)
            return 1
    result.seconds = time.perf_counter() - started
    summary(result)
    print(f"files in {args.workdir}")
    if args.json:
        args.json.write_text(result.to_json())
    print(f"\nfinished at {datetime.now(UTC):%H:%M:%S} UTC")
    return 0


if __name__ == "__main__":
    sys.exit(main())
