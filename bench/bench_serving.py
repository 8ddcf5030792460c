"""Serving benchmark: the prediction API against the bare model and an app written the obvious way.

On the demo model (breast cancer, trained by training.train with its defaults), for the ONNX path
and the joblib fallback side by side: warm latency of one prediction through the Lambda handler
(an API Gateway event in, a response out), a 1,000-row batch, and the cold start of a fresh process
that loads the model from S3 (moto server on 127.0.0.1) and answers one request (capture off, and for
the ONNX path also with capture on: the first request's capture is sent before the answer returns).
Then per model family (linear, random forest, HistGradientBoosting): the runtime that serves it, warm
p50 via the handler beside bare scikit-learn, and cold starts with capture off and on.

    .venv/bin/python bench/bench_serving.py [--requests N] [--batches N] [--cold-runs N]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from pydantic import BaseModel

from contracts import artifact
from demo.data import TARGET, write_breast_cancer_csv
from training.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]

RUNTIMES = ("onnxruntime", "scikit-learn")
BATCH_ROWS = 1000
CONTEXT = SimpleNamespace(function_name="inference", function_version="1", memory_limit_in_mb=2048,
                          invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:inference:live",
                          aws_request_id="bench")
ENV_KEYS = ("MODEL_DIR", "MODEL_DATA_URL", "MODEL_SHA256", "SERVING_RUNTIME", "CAPTURE_STREAM", "MODEL_VERSION")  # set per child


# ------------------------------------------------------------------ inputs


def http_event(path: str, body: dict) -> dict:
    """An HTTP API (payload v2) event, as API Gateway sends it."""
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "abc123.execute-api.us-east-1.amazonaws.com",
                    "user-agent": "bench", "x-forwarded-proto": "https"},
        "requestContext": {"accountId": "123456789012", "apiId": "abc123", "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
                           "domainPrefix": "abc123", "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
                                                              "sourceIp": "192.0.2.1", "userAgent": "bench"},
                           "requestId": "bench-request", "routeKey": "$default", "stage": "$default",
                           "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 1767225600000},
        "body": json.dumps(body), "isBase64Encoded": False,
    }


def demo_rows(names: list[str], n: int) -> list[dict[str, float]]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer().data
    return [dict(zip(names, map(float, data[i % len(data)]))) for i in range(n)]


# ------------------------------------------------------------------ the reference: an app written the obvious way


class PredictRequest(BaseModel):
    features: dict[str, float]


class BatchRequest(BaseModel):
    instances: list[dict[str, float]]


class Prediction(BaseModel):
    prediction: str
    probabilities: dict[str, float]



def obvious_app(model_dir: Path) -> Callable[[dict, Any], dict]:
    """FastAPI + Mangum as most tutorials write it: pydantic models of feature dicts, numpy, sklearn."""
    import joblib
    from fastapi import FastAPI
    from mangum import Mangum

    meta = artifact.read_metadata(model_dir)
    names, classes = meta.feature_schema.names, meta.classes
    model = joblib.load(model_dir / artifact.MODEL_JOBLIB)
    app = FastAPI()

    @app.post("/predict", response_model=Prediction)
    def predict(request: PredictRequest) -> Prediction:
        X = np.array([[request.features[n] for n in names]])
        p = model.predict_proba(X)[0]
        return Prediction(prediction=classes[int(p.argmax())], probabilities=dict(zip(classes, p.tolist())))

    @app.post("/predict/batch", response_model=list[Prediction])
    def predict_batch(request: BatchRequest) -> list[Prediction]:
        X = np.array([[row[n] for n in names] for row in request.instances])
        P = model.predict_proba(X)
        return [Prediction(prediction=classes[int(p.argmax())], probabilities=dict(zip(classes, p.tolist()))) for p in P]

    return Mangum(app, lifespan="off")


# ------------------------------------------------------------------ measuring


def interleaved(variants: dict[str, Callable[[], Any]], n: int, warmup: int, rounds: int = 10) -> dict[str, np.ndarray]:
    """Time the variants in blocks, taking turns round after round: each block runs with warm caches (as a
    Lambda environment serving one app does) and load on the machine weighs on every variant alike."""
    out: dict[str, list[float]] = {name: [] for name in variants}
    block = max(1, n // rounds)
    for _ in range(rounds):
        for name, fn in variants.items():
            for _ in range(warmup):
                fn()
            times = out[name]
            for _ in range(block):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
    return {name: np.array(times) for name, times in out.items()}


def p(times: np.ndarray, q: float) -> float:
    return float(np.percentile(times, q))


def our_handler(model_dir: Path, runtime: str) -> Callable[[dict, Any], dict]:
    """The Lambda handler over the model, as inference.app builds it at import, for one runtime."""
    from inference.app import build_app, load_state, make_handler

    state = load_state({"MODEL_DIR": str(model_dir), "SERVING_RUNTIME": runtime})
    assert state.predictor is not None, state.reason
    return make_handler(build_app(state))


def check(response: dict) -> dict:
    if response["statusCode"] != 200:
        raise SystemExit(f"bench_serving: unexpected response {response['statusCode']}: {response['body'][:300]}")
    return response


# ------------------------------------------------------------------ cold start


COLD_CHILD = """
import json, sys, time
from types import SimpleNamespace
start = time.perf_counter()
from inference.app import handler
loaded = time.perf_counter()
event = json.loads(open(sys.argv[1]).read())
context = SimpleNamespace(function_name="inference", function_version="1", memory_limit_in_mb=2048,
                          invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:inference:live",
                          aws_request_id="cold")
response = handler(event, context)
answered = time.perf_counter()
print("COLD " + json.dumps({"import_and_load": loaded - start, "first_request": answered - loaded,
                            "status": response["statusCode"]}),
      flush=True)
"""


def cold_start(runtime: str, event_file: Path, env: dict[str, str], code: str = COLD_CHILD) -> dict[str, Any]:
    """One fresh interpreter: seconds from spawn until it printed its first answer, the parts it measured,
    and how its "model loaded" log line says the model was downloaded."""
    download = None
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", code, str(event_file)], cwd=ROOT,
                                 env=env | {"SERVING_RUNTIME": runtime, "MODEL_WORK_DIR": work},
                                 stdout=subprocess.PIPE, text=True)
        line = ""
        for line in child.stdout:  # type: ignore[union-attr]
            if line.startswith("COLD "):
                break
            if '"model loaded"' in line:
                download = json.loads(line).get("download")
        total = time.perf_counter() - started
        child.wait(timeout=60)
    if not line.startswith("COLD "):
        raise SystemExit(f"bench_serving: the cold-start child ({runtime}) printed no answer")
    result = json.loads(line[5:])
    if result["status"] != 200:
        raise SystemExit(f"bench_serving: the cold-start child ({runtime}) answered {result['status']}")
    return {"total": total, "import_and_load": result["import_and_load"], "first_request": result["first_request"],
            "download": download}


FLOOR_CHILD = """
import os
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as inference.app sets it
import aws_lambda_powertools.logging, aws_lambda_powertools.metrics, fastapi, mangum, numpy, onnxruntime
print("COLD " + '{"status": 200, "import_and_load": 0, "first_request": 0}', flush=True)
"""


def import_floor(env: dict[str, str]) -> float:
    """A process that only imports what the API cannot do without (numpy, onnxruntime, fastapi, mangum, Powertools)."""
    return cold_start("floor", Path(os.devnull), env, code=FLOOR_CHILD)["total"]


CAPTURE_STREAM = "bench-capture"


@contextlib.contextmanager
def on_emulator(models: dict[str, Path], single_body: dict) -> Any:
    """The models packed into a moto server's bucket beside a capture stream: yields (each model's function
    environment, capture off; the event file). Capture on adds CAPTURE_STREAM."""
    import boto3

    from demo.emulator import embedded_aws

    with tempfile.TemporaryDirectory() as tmp, embedded_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="bench-artifacts")
        s3.create_bucket(Bucket="bench-capture")
        boto3.client("firehose").create_delivery_stream(
            DeliveryStreamName=CAPTURE_STREAM, DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/firehose",
                                                "BucketARN": "arn:aws:s3:::bench-capture"})
        event_file = Path(tmp) / "event.json"
        event_file.write_text(json.dumps(http_event("/predict", single_body)))
        # As in the image: .pyc compiled ahead (the Dockerfile runs compileall), here into a cache of our own.
        base = {k: v for k, v in os.environ.items() if k not in ENV_KEYS and k != "PYTHONDONTWRITEBYTECODE"} | {
            "MODEL_VERSION": "1", "POWERTOOLS_TRACE_DISABLED": "true", "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache")}
        envs = {}
        for name, model_dir in models.items():
            tarball = Path(tmp) / name / artifact.TARBALL
            sha = artifact.pack(model_dir, tarball)
            key = f"models/breast-cancer/{name}/output/model.tar.gz"
            s3.upload_file(str(tarball), "bench-artifacts", key)
            envs[name] = base | {"MODEL_DATA_URL": f"s3://bench-artifacts/{key}", "MODEL_SHA256": sha}
        yield envs, event_file


def with_capture(env: dict[str, str]) -> dict[str, str]:
    return env | {"CAPTURE_STREAM": CAPTURE_STREAM}


def cold_start_table(model_dir: Path, single_body: dict, runs: int) -> dict[str, Any]:
    """Cold-start each runtime against the model on the emulator (and ONNX with capture on)."""
    with on_emulator({"linear": model_dir}, single_body) as (envs, event_file):
        env = envs["linear"]
        for runtime in RUNTIMES:  # untimed: compiles the .pyc cache
            cold_start(runtime, event_file, env)
        cold_start("onnxruntime", event_file, with_capture(env))
        import_floor(env)
        table: dict[str, Any] = {runtime: [] for runtime in RUNTIMES} | {"capture": [], "floor": []}
        for _ in range(runs):  # round after round, so load on the machine weighs on each alike
            for runtime in RUNTIMES:
                table[runtime].append(cold_start(runtime, event_file, env))
            table["capture"].append(cold_start("onnxruntime", event_file, with_capture(env)))
            table["floor"].append(import_floor(env))
        return table


# ------------------------------------------------------------------ model families

FAMILIES = ("linear", "random_forest", "hist_gradient_boosting")
# The targets (0.6 s; 0.5 s for linear with capture on) were set where the import floor was 0.40 s. A slower
# or busier machine slows every import alike, so they are checked as ratios to the floor measured in the same
# rounds: 0.6 / 0.4 and 0.5 / 0.4.
COLD_RATIO = 1.5
CAPTURE_RATIO = 1.25


def family_warm(model_dir: Path, requests: int) -> dict[str, Any]:
    """The runtime that serves the model by default, and one row's p50 via the handler beside bare scikit-learn."""
    import joblib

    from inference.app import build_app, load_state, make_handler

    names = artifact.read_metadata(model_dir).feature_schema.names
    row = demo_rows(names, 1)[0]
    event = http_event("/predict", {"features": row})
    estimator = joblib.load(model_dir / artifact.MODEL_JOBLIB)
    x_one = np.array([list(row.values())])
    from inference.observability import logger

    logger.setLevel("WARNING")  # its handler writes to the stdout it started with: no "model loaded" lines here
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        state = load_state({"MODEL_DIR": str(model_dir)})
        assert state.predictor is not None, state.reason
        handler = make_handler(build_app(state))
        check(handler(event, CONTEXT))
        times = interleaved({"bare": lambda: estimator.predict_proba(x_one), "handler": lambda: handler(event, CONTEXT)},
                            requests, warmup=20)
    onnx = artifact.read_metadata(model_dir).onnx
    return {"runtime": state.predictor.model.name, "onnx": onnx, "bare": p(times["bare"], 50),
            "handler": p(times["handler"], 50), "size_kb": sum(f.stat().st_size for f in model_dir.iterdir()) / 1024}


def family_table(csv: Path, work: Path, requests: int, runs: int) -> dict[str, Any]:
    """Each family trained on the demo data, then its warm latency and cold starts with capture off and on."""
    models = {name: train(csv, work / name, TrainConfig(target=TARGET, model_name="breast-cancer",
                                                        algorithm=name)).model_dir for name in FAMILIES}
    table = {name: family_warm(model_dir, requests) for name, model_dir in models.items()}
    body = {"features": demo_rows(artifact.read_metadata(models["linear"]).feature_schema.names, 1)[0]}
    with on_emulator(models, body) as (envs, event_file):
        for name in FAMILIES:  # untimed: compiles the .pyc cache
            cold_start("auto", event_file, with_capture(envs[name]))
        for name in FAMILIES:
            table[name] |= {"cold": [], "cold_capture": []}
        table["floor"] = []
        for _ in range(runs):
            table["floor"].append(import_floor(envs["linear"]))
            for name in FAMILIES:
                table[name]["cold"].append(cold_start("auto", event_file, envs[name])["total"])
                table[name]["cold_capture"].append(cold_start("auto", event_file, with_capture(envs[name]))["total"])
    return table


def family_report(table: dict[str, Any]) -> str:
    lines = ["model families (breast cancer, training defaults), served from S3 on the emulator:",
             f"{'':26}{'runtime':>13}{'model KB':>10}{'p50 handler':>13}{'p50 bare':>10}{'ratio':>7}"
             f"{'cold med/max':>15}{'+capture med/max':>19}"]
    for name in FAMILIES:
        f = table[name]
        lines.append(f"{name:26}{f['runtime']:>13}{f['size_kb']:>10.0f}{f['handler'] * 1000:>11.3f}ms"
                     f"{f['bare'] * 1000:>8.3f}ms{f['handler'] / f['bare']:>6.2f}x"
                     f"{statistics.median(f['cold']):>8.3f}/{max(f['cold']):.3f}"
                     f"{statistics.median(f['cold_capture']):>12.3f}/{max(f['cold_capture']):.3f}")
    floor = statistics.median(table["floor"])
    lines.append(f"  import floor in the same rounds: {floor:.3f} s; cold start / floor, capture off and on: "
                 + "; ".join(f"{n} {statistics.median(table[n]['cold']) / floor:.2f}x / "
                             f"{statistics.median(table[n]['cold_capture']) / floor:.2f}x" for n in FAMILIES))
    lines.append("  targets: every family on onnxruntime; cold start <= 0.6 s for each, and <= 0.5 s median for linear with "
                 f"capture on, where the import floor is 0.40 s: here {COLD_RATIO}x and {CAPTURE_RATIO}x the floor")
    for name in FAMILIES:
        onnx = table[name]["onnx"]
        lines.append(f"  {name}: ONNX {'included' if onnx.included else 'refused'} ({onnx.reason}); "
                     f"max diff {onnx.max_abs_diff:.2g}" + (f", relative {onnx.max_rel_diff:.2g}" if onnx.max_rel_diff else "")
                     + (f", trees in {onnx.tree_precision}" if onnx.tree_precision else ""))
    return "\n".join(lines)


# ------------------------------------------------------------------ the run


def measure(model_dir: Path, requests: int, batches: int) -> dict[str, Any]:
    import joblib

    names = artifact.read_metadata(model_dir).feature_schema.names
    rows = demo_rows(names, BATCH_ROWS)
    single = http_event("/predict", {"features": rows[0]})
    batch = http_event("/predict/batch", {"instances": rows})
    estimator = joblib.load(model_dir / artifact.MODEL_JOBLIB)
    x_one = np.array([list(rows[0].values())])
    x_batch = np.array([list(r.values()) for r in rows])
    obvious = obvious_app(model_dir)
    check(obvious(single, CONTEXT)), check(obvious(batch, CONTEXT))

    import inference.app  # noqa: F401  (before stdout is redirected: its logger keeps the stream it starts with)

    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # EMF goes to stdout, as on Lambda
        handlers = {runtime: our_handler(model_dir, runtime) for runtime in RUNTIMES}
        for handler in handlers.values():
            check(handler(single, CONTEXT)), check(handler(batch, CONTEXT))
        one = interleaved({"bare": lambda: estimator.predict_proba(x_one), "obvious": lambda: obvious(single, CONTEXT)}
                          | {k: (lambda h=h: h(single, CONTEXT)) for k, h in handlers.items()}, requests, warmup=20)
        many = interleaved({"bare": lambda: estimator.predict_proba(x_batch), "obvious": lambda: obvious(batch, CONTEXT)}
                           | {k: (lambda h=h: h(batch, CONTEXT)) for k, h in handlers.items()}, batches, warmup=1)
    results: dict[str, Any] = {f"{k}_one": v for k, v in one.items()} | {f"{k}_batch": v for k, v in many.items()}
    results["single_body"] = {"features": rows[0]}
    return results


def report(r: dict[str, Any], cold: dict[str, Any], requests: int, batches: int) -> str:
    ms = 1000.0

    def rate(times: np.ndarray) -> float:
        return BATCH_ROWS / p(times, 50)

    bare_p50, obvious_p50 = p(r["bare_one"], 50), p(r["obvious_one"], 50)
    lines = [
        f"serving benchmark: breast cancer, training defaults; {requests} single requests, {batches} batches of {BATCH_ROWS} rows",
        f"{'':44}{'onnxruntime':>16}{'scikit-learn':>16}   target",
    ]

    def row(label: str, values: list[str], target: str = "") -> None:
        lines.append(f"{label:44}{values[0]:>16}{values[1]:>16}   {target}")

    row("one row via handler, p50 / p99 (ms)", [f"{p(r[f'{k}_one'], 50) * ms:.3f} / {p(r[f'{k}_one'], 99) * ms:.3f}" for k in RUNTIMES])
    row("  ratio to bare predict_proba, p50", [f"{p(r[f'{k}_one'], 50) / bare_p50:.2f}x" for k in RUNTIMES], "<= 0.5x (ONNX)")
    row("  speed-up over the obvious app, p50", [f"{obvious_p50 / p(r[f'{k}_one'], 50):.1f}x" for k in RUNTIMES], ">= 5x (ONNX)")
    row("batch of 1,000 via handler, rows/s (p50)", [f"{rate(r[f'{k}_batch']):,.0f}" for k in RUNTIMES])
    row("  ratio to the obvious app's batch", [f"{rate(r[f'{k}_batch']) / rate(r['obvious_batch']):.1f}x" for k in RUNTIMES], ">= 3x (ONNX)")
    row("  ratio to bare vectorised predict_proba", [f"{rate(r[f'{k}_batch']) / rate(r['bare_batch']):.2f}x" for k in RUNTIMES])
    for key, label in (("total", "cold start: spawn to first answer, median (s)"),
                       ("import_and_load", "  of which import + S3 load, median (s)"),
                       ("first_request", "  of which the first request, median (s)")):
        row(label, [f"{statistics.median(c[key] for c in cold[k]):.3f}" for k in RUNTIMES],
            "<= 0.6 s (ONNX)" if key == "total" else "")
    row("cold start: spawn to first answer, max (s)", [f"{max(c['total'] for c in cold[k]):.3f}" for k in RUNTIMES])
    row("  model download (the child's log)", [" / ".join(sorted({str(c["download"]) for c in cold[k]}))[:15] for k in RUNTIMES])
    capture = [c["total"] for c in cold["capture"]]
    lines.append(f"  with capture on (the first capture sent too), ONNX: median {statistics.median(capture):.3f} s, "
                 f"max {max(capture):.3f} s; of which import + S3 load "
                 f"{statistics.median(c['import_and_load'] for c in cold['capture']):.3f} s, first request with its "
                 f"PutRecordBatch to the emulator {statistics.median(c['first_request'] for c in cold['capture']):.3f} s")
    floor = statistics.median(cold["floor"])
    lines.append(f"  (floor here: a process importing only numpy, onnxruntime, fastapi, mangum and Powertools: "
                 f"{floor:.3f} s; ONNX cold start / floor: {statistics.median(c['total'] for c in cold['onnxruntime']) / floor:.2f}x, "
                 f"with capture {statistics.median(capture) / floor:.2f}x)")
    lines += [
        "references:",
        f"  bare sklearn predict_proba, one numpy row, p50 / p99 (ms)   {bare_p50 * ms:.3f} / {p(r['bare_one'], 99) * ms:.3f}",
        f"  obvious FastAPI+Mangum app, one row, p50 / p99 (ms)        {obvious_p50 * ms:.3f} / {p(r['obvious_one'], 99) * ms:.3f}",
        f"  obvious app batch, rows/s (p50)                           {rate(r['obvious_batch']):,.0f}",
        f"  bare vectorised predict_proba, rows/s (p50)               {rate(r['bare_batch']):,.0f}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="single-row requests timed per variant")
    parser.add_argument("--batches", type=int, default=30, help="1,000-row batches timed per variant")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh processes per runtime")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        csv = write_breast_cancer_csv(Path(tmp) / "data.csv")
        model_dir = train(csv, Path(tmp) / "model", TrainConfig(target=TARGET, model_name="breast-cancer")).model_dir
        results = measure(model_dir, args.requests, args.batches)
        cold = cold_start_table(model_dir, results["single_body"], args.cold_runs)
        print(report(results, cold, args.requests, args.batches), flush=True)
        families = family_table(csv, Path(tmp), max(200, args.requests // 4), args.cold_runs)
    print("\n" + family_report(families))
    floor = statistics.median(families["floor"])
    missed = [n for n in FAMILIES if families[n]["runtime"] != "onnxruntime"
              or statistics.median(families[n]["cold"]) > floor * COLD_RATIO]
    if statistics.median(families["linear"]["cold_capture"]) > floor * CAPTURE_RATIO:
        missed.append("linear with capture on")
    if missed:
        print(f"targets missed by: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
