"""Check a current CSV against a reference CSV: a JSON drift report, and an HTML page if asked.

    mlops drift --reference REF.csv --current CUR.csv --output report.json \
        [--target COLUMN] [--categorical a,b] [--html report.html]

Exit status: 0 no drift (or too little data to tell), 1 drift, 2 bad input.
"""
from __future__ import annotations

import argparse
import sys

from contracts.drift_report import Window
from drift_check.csv_input import current_accumulator, reference_baseline
from drift_check.report import make_report, summary, write_files
from drift_check.stats_compare import Thresholds
from training.dataset import DataError, read_csv

EXIT_OK, EXIT_DRIFT, EXIT_BAD_INPUT = 0, 1, 2


EXAMPLES = """example:
  mlops drift --reference train.csv --current last_week.csv --target label --output drift.json --html drift.html"""


def parse_args(argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, help="CSV the model was trained on")
    parser.add_argument("--current", required=True, help="CSV to check")
    parser.add_argument("--output", required=True, help="where to write the JSON report")
    parser.add_argument("--target", help="label column: compared like the prediction, not as a feature")
    parser.add_argument("--categorical", default="", help="comma-separated columns to treat as categorical")
    parser.add_argument("--html", help="also write a self-contained HTML report here")
    parser.add_argument("--min-rows", type=int, default=Thresholds.min_rows, help="fewer current rows: insufficient_data")
    parser.add_argument("--alpha", type=float, default=Thresholds.alpha, help="false discovery rate across features")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    try:
        thresholds = Thresholds(alpha=args.alpha, min_rows=args.min_rows)
        categorical = {c.strip() for c in args.categorical.split(",") if c.strip()}
        reference = read_csv(args.reference)
        schema, baseline = reference_baseline(reference, args.target, categorical)
        current = read_csv(args.current)
    except (DataError, ValueError) as exc:
        print(f"drift: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    report = make_report(baseline, current_accumulator(baseline, schema, current), thresholds,
                         window=Window(reference=str(args.reference), current=str(args.current)))
    error = write_files(report, args.output, args.html, "drift_check.report_html")
    if error:
        print(f"drift: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(summary(report))
    return EXIT_DRIFT if report.dataset_drift else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
