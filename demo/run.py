"""`make demo`: the whole loop on one machine, against an embedded AWS (moto server on 127.0.0.1).

upload data → validate → train (SageMaker's container contract, in a subprocess) → evaluate →
register → approve → promote → serve with uvicorn → real HTTP traffic, captured through Firehose →
drift check on an EventBridge scheduled event → hours of low traffic pooled into one verdict → a drifted
segment → drift found → retraining →
the new candidate evaluated against production → a file scored by a batch job (S3 trigger,
plan, Distributed Map children, summary). Same handlers and modules as the cloud.
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

os.environ.setdefault(Var.TRACE_DISABLED, "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the demo prints its own progress
os.environ.setdefault(Var.METRICS_NAMESPACE, NAMESPACE)

from demo.data import TARGET, write_breast_cancer_csv
from demo.emulator import embedded_aws
from demo.loop import LoopResult, run_loop

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
    if result.retraining:
        ev = result.retraining.evaluation
        print(f"retraining {result.retraining.run_id}: candidate {ev['primary_metric']} "
              f"{ev['candidate'].get(ev['primary_metric'], float('nan')):.4f} vs production "
              f"{(ev['production'] or {}).get(ev['primary_metric'], float('nan')):.4f}: "
              f"{'passed → registered v' + str(result.retraining.registration['model_package_version']) if ev['passed'] else 'rejected'}"
              f" ({ev['reason']})")
    if result.batch and result.batch.summary:
        b = result.batch.summary
        print(f"batch job {b['job_id']}: {b['status']}, {b['rows']} rows in {b['parts']} parts → {b['scored']} scored, "
              f"{b['errors']} in {', '.join(b['errors_files']) or 'no errors file'}; model v{b['model']['version']} "
              f"(sha256 {b['model']['sha256'][:12]}…); outputs under s3://{result.deployment.data_bucket}/{b['output_prefix']}")
    print(f"\nwhole loop: {result.seconds:.1f} s")


EXAMPLES = """example:
  mlops demo --workdir .demo --json .demo/loop.json"""


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=WORKDIR, help="where the run's files go (emptied first)")
    parser.add_argument("--json", type=Path, help="also write every hand-over as JSON here")
    args = parser.parse_args(argv)
    args.workdir = args.workdir.resolve()
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    started = time.perf_counter()
    with embedded_aws() as endpoint:
        print(f"embedded AWS (moto server) on {endpoint}; boto3 reaches it through AWS_ENDPOINT_URL\n")
        csv_path = write_breast_cancer_csv(args.workdir / "breast_cancer.csv")
        result = run_loop(csv_path=csv_path, target=TARGET, workdir=args.workdir, step=step, rng=random.Random(7))
    result.seconds = time.perf_counter() - started
    summary(result)
    print(f"files in {args.workdir}")
    if args.json:
        args.json.write_text(result.to_json())
    print(f"\nfinished at {datetime.now(UTC):%H:%M:%S} UTC")
    return 0


if __name__ == "__main__":
    sys.exit(main())
