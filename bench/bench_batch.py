"""Batch scoring benchmark: one worker scoring 1,000,000 rows x 30 features from CSV to JSON Lines.

For each model the table gives the worker's rows/s (read, parse, check, score, write, as a Lambda
child does it, parts of the default size one after another) beside the bare vectorised model call on
the same rows (the runtime the worker uses, one thread), their ratio, and the worker's peak memory
(VmHWM of a fresh process, against the same process right after loading the model). The goal is a
ratio of at least 0.5 for the tree ensembles: parsing and writing cost no more than the model.
A linear model's call is almost free, so its ratio only shows what parsing a number costs.

    .venv/bin/python bench/bench_batch.py [--rows N] [--algorithms hist_gradient_boosting,random_forest,linear]

Exit status 1 when a tree ensemble misses the goal. Wall-clock figures on a shared 2-core machine:
the load average is printed beside them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FEATURES = 30
TRAIN_ROWS = 20_000
BLOCK_ROWS = 10_000  # distinct rows, repeated to the size asked for (the model's cost does not depend on repeats)
GOAL = 0.5
CHECKED = ("hist_gradient_boosting", "random_forest")
PART_MB = 64  # the stacks' default batch_part_mb

CHILD = r"""
import json, sys, time
from pathlib import Path
model_dir, input_dir, output_dir, part_mb = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])

def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

from batch_scoring import model_pin
from batch_scoring.part_run import score_part
from batch_scoring.planner import InputFile, plan_parts
from batch_scoring.store import LocalStore
from contracts.batch_job import JobSpec

pin = model_pin.directory_pin(Path(model_dir))
model = model_pin.load(pin, output_dir)
loaded = peak_mb()
source, sink = LocalStore(input_dir), LocalStore(output_dir)
started = time.perf_counter()
parts = plan_parts(source, [InputFile("x.csv", "x.csv", (input_dir / "x.csv").stat().st_size)], part_mb << 20)
spec = JobSpec(job_id="bench", model_name="bench", output_prefix="", scope="", output_format="jsonl", model=pin,
               started_at="2026-01-01T00:00:00.000Z")
rows = scored = 0
for part in parts:
    result = score_part(source, sink, part, spec, model, workdir=output_dir / ".work")
    rows += result.rows
    scored += result.scored
seconds = time.perf_counter() - started
print(json.dumps({"rows": rows, "scored": scored, "seconds": seconds, "parts": len(parts),
                  "peak_mb": peak_mb(), "loaded_mb": loaded}))
"""


def synthetic(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(size=(n, FEATURES)) * rng.uniform(0.5, 20, size=FEATURES) + rng.uniform(-50, 50, size=FEATURES)
    signal = X[:, 0] / 10 - X[:, 1] / 20 + np.sin(X[:, 2]) + (X[:, 3] > X[:, 3].mean())
    return X, (signal + rng.normal(scale=0.5, size=n) > np.median(signal)).astype(int)


def write_csv(path: Path, X: np.ndarray, y: np.ndarray | None, names: list[str]) -> None:
    with path.open("w") as f:
        f.write(",".join(names + (["label"] if y is not None else [])) + "\n")
        for k, row in enumerate(X):
            f.write(",".join(f"{v:.6g}" for v in row) + (f",{y[k]}" if y is not None else "") + "\n")


def train_model(algorithm: str, work: Path, names: list[str]) -> Path:
    from training.train import TrainConfig, train

    rng = np.random.default_rng(11)
    X, y = synthetic(rng, TRAIN_ROWS)
    write_csv(work / "train.csv", X, y, names)
    return train(work / "train.csv", work / algorithm,
                 TrainConfig(target="label", model_name="bench", model_version="1", algorithm=algorithm)).model_dir


def size_of(model_dir: Path) -> str:
    """How big the fitted model is: boosting rounds (HistGradientBoosting stops early on > 10,000 rows) or trees."""
    from contracts.artifact import open_artifact

    estimator = open_artifact(model_dir).load_estimator()
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if hasattr(final, "n_iter_") and not hasattr(final, "coef_"):
        return f"{final.n_iter_} rounds"
    if hasattr(final, "estimators_"):
        return f"{len(final.estimators_)} trees"
    return "linear"


def bare_rate(model_dir: Path, X: np.ndarray) -> float:
    """The runtime's vectorised call on all rows at once, as the worker's runtime is configured (one thread)."""
    from contracts.artifact import open_artifact
    from inference.runtime import open_model

    model = open_model(open_artifact(model_dir))
    model.run(X[:1000])
    started = time.perf_counter()
    model.run(X)
    return len(X) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--algorithms", default="hist_gradient_boosting,random_forest,linear")
    args = parser.parse_args()
    names = [f"f{j:02d}" for j in range(FEATURES)]
    missed = []
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(tmp)
        rng = np.random.default_rng(5)
        block, _ = synthetic(rng, BLOCK_ROWS)
        text = "\n".join(",".join(f"{v:.6g}" for v in row) for row in block) + "\n"
        (work / "in").mkdir()
        with (work / "in" / "x.csv").open("w") as f:
            f.write(",".join(names) + "\n")
            for _ in range(args.rows // BLOCK_ROWS):
                f.write(text)
        size_mb = (work / "in" / "x.csv").stat().st_size / 1e6
        X = np.loadtxt(work / "in" / "x.csv", delimiter=",", skiprows=1, max_rows=BLOCK_ROWS)
        X = np.tile(X, (args.rows // BLOCK_ROWS, 1))
        print(f"input: {args.rows:,} rows x {FEATURES} features, {size_mb:.0f} MB of CSV; parts of {PART_MB} MB; "
              f"one worker process, onnxruntime on one thread")
        print(f"{'model':<24} {'size':>10} {'worker rows/s':>14} {'bare call rows/s':>17} {'ratio':>6} {'peak MB':>8} "
              f"{'after load MB':>14} {'load avg':>8}")
        for algorithm in args.algorithms.split(","):
            model_dir = train_model(algorithm, work, names)
            bare = bare_rate(model_dir, X)
            out = work / f"out-{algorithm}"
            proc = subprocess.run([sys.executable, "-c", CHILD, str(model_dir), str(work / "in"), str(out), str(PART_MB)],
                                  capture_output=True, text=True, cwd=ROOT, check=False)
            if proc.returncode:
                print(proc.stderr[-2000:])
                return 1
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            assert result["rows"] == result["scored"] == args.rows, result
            rate = result["rows"] / result["seconds"]
            ratio = rate / bare
            print(f"{algorithm:<24} {size_of(model_dir):>10} {rate:>14,.0f} {bare:>17,.0f} {ratio:>6.2f} {result['peak_mb']:>8.0f} "
                  f"{result['loaded_mb']:>14.0f} {os.getloadavg()[0]:>8.2f}")
            if algorithm in CHECKED and ratio < GOAL:
                missed.append(algorithm)
    print(f"goal: ratio >= {GOAL} for {', '.join(CHECKED)}: " + ("met" if not missed else f"missed by {', '.join(missed)}"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
