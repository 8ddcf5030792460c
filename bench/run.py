"""`make bench`: every benchmark in one run, each printing its own table of numbers and ratios.

Each runs in its own process so one's imports and memory do not colour another's figures.
Exit status is non-zero when any benchmark misses a target it checks.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
BENCHMARKS = ("bench_serving.py", "bench_drift.py", "bench_quality.py", "bench_batch.py", "image_size.py")


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        print(f"\n=== {name} " + "=" * (70 - len(name)), flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(BENCH / name)])
        print(f"--- {name}: exit {code}, {time.perf_counter() - started:.1f} s", flush=True)
        if code:
            failed.append(name)
    print("\nall benchmarks met their targets" if not failed else f"\ntargets missed in: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
