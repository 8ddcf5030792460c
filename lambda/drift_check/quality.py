"""Check a model's quality on files: captured predictions joined to labels, a JSON report and an HTML page.

    mlops quality --model-dir DIR --captures FILE_OR_DIR [FILE_OR_DIR ...] --labels FILE \
        --output report.json [--html report.html] [--min-labels N] [--tolerance T] [--floor accuracy=0.7]

Captures are capture record files (JSON Lines, gzip or plain; a directory: every file under it); labels a
CSV or JSON Lines file with id, label and optionally time. Exit status: 0 ok, 1 degraded, 2 bad input,
3 too few labels for a verdict.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from contracts.artifact import TARBALL, ArtifactError, Metadata
from contracts.ground_truth import read_labels
from contracts.quality_report import QualityReport, QualityWindow
from drift_check.capture_source import CORRUPT, iter_blocks
from drift_check.model_quality import DEFAULT_MIN_LABELS, DEFAULT_TOLERANCE, Captured, Settings, check, task_classes
from drift_check.report import write_files
from training.evaluate import load_artifact

EXIT_OK, EXIT_DEGRADED, EXIT_BAD_INPUT, EXIT_INSUFFICIENT = 0, 1, 2, 3
EXIT_OF_STATUS = {"ok": EXIT_OK, "degraded": EXIT_DEGRADED, "insufficient_labels": EXIT_INSUFFICIENT}
CHUNK = 1 << 20


class InputError(ValueError):
    """An input the check cannot use; the message names it."""


EXAMPLES = """example:
  mlops quality --model-dir out/ --captures captures/ --labels labels.csv --output quality.json --html quality.html"""


def parse_args(argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help=f"the model's artifact directory (or its {TARBALL})")
    parser.add_argument("--captures", required=True, nargs="+", metavar="FILE_OR_DIR",
                        help="capture record files (JSON Lines, gzip or plain), or directories of them")
    parser.add_argument("--labels", required=True, help="CSV or JSON Lines with id, label and optionally time")
    parser.add_argument("--output", required=True, help="where to write the JSON report")
    parser.add_argument("--html", help="also write a self-contained HTML report here")
    parser.add_argument("--min-labels", type=int, default=DEFAULT_MIN_LABELS,
                        help="fewer labelled predictions: insufficient_labels (default %(default)s)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="degraded when a metric's interval is below training minus this (default %(default)s)")
    parser.add_argument("--floor", action="append", default=[], metavar="METRIC=VALUE",
                        help="degraded when the metric's interval is below VALUE, e.g. accuracy=0.7 (repeatable)")
    return parser.parse_args(argv)


def parse_floors(given: list[str]) -> dict[str, float]:
    floors = {}
    for item in given:
        name, sep, value = item.partition("=")
        try:
            floors[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise InputError(f"--floor {item!r} is not METRIC=NUMBER, e.g. accuracy=0.7")
    return floors


def capture_files(paths: list[str]) -> list[Path]:
    """The files named, and every file under the directories named (hidden ones skipped), in name order."""
    found = []
    for name in paths:
        path = Path(name)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        else:
            raise InputError(f"captures {path}: no such file or directory")
    if not found:
        raise InputError(f"no capture files in {', '.join(paths)}")
    return found


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        yield from iter(lambda: fh.read(CHUNK), b"")


def read_captures(files: list[Path], classes: list[str] | None) -> Captured:
    captured = Captured(classes=classes)
    for path in files:
        try:
            for block in iter_blocks(_chunks(path)):
                captured.add_block(block)
        except (OSError, *CORRUPT) as exc:
            raise InputError(f"cannot read the capture file {path}: {exc}") from exc
    return captured


def run(args: argparse.Namespace) -> QualityReport:
    settings = Settings(min_labels=args.min_labels, tolerance=args.tolerance, floors=parse_floors(args.floor))
    labels = read_labels(args.labels)
    files = capture_files(args.captures)
    with tempfile.TemporaryDirectory(prefix="quality-") as work:
        try:
            meta: Metadata = load_artifact(args.model_dir, work).metadata
        except ArtifactError as exc:
            raise InputError(f"--model-dir {args.model_dir} is not a usable model artifact: {exc}") from exc
    captured = read_captures(files, task_classes(meta))
    window = QualityWindow(captures=[str(c) for c in args.captures], labels=str(args.labels))
    return check(captured, labels, meta, settings=settings, window=window)


def summary(report: QualityReport) -> str:
    estimate = f"; estimated {report.estimated}" if report.estimated else ""
    return (f"quality: {report.status}: {report.reason} (matched {report.matched} of {report.predictions} predictions, "
            f"unmatched labels {report.unmatched_labels}, invalid labels {report.invalid_labels}{estimate})")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    try:
        report = run(args)
    except ValueError as exc:  # InputError, LabelFileError, bad settings: each names the input
        print(f"quality: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    error = write_files(report, args.output, args.html, "drift_check.quality_html")
    if error:
        print(f"quality: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(summary(report))
    return EXIT_OF_STATUS[report.status]


if __name__ == "__main__":
    sys.exit(main())
