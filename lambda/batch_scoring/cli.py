"""`mlops batch`: score files locally with the batch handler code, or start a batch job in AWS.

    mlops batch --model-dir DIR --input FILE_OR_DIR --output DIR [--format jsonl|csv] [--workers N]
    mlops batch start --job-id ID [--objects s3://… …] [--model-version N] [--wait]

Locally the files are planned into parts as in AWS and the parts scored on every core; the summary
is printed and written to DIR/_summary.json. Exit 0 when every row was scored, 1 when some rows went
to an errors file, 2 on bad input (unreadable file, unknown model).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgspec

from batch_scoring import model_pin
from batch_scoring.planner import InputFile, PlanError, plan_parts, skipped
from batch_scoring.store import LocalStore, StoreError
from batch_scoring.summary import utc_stamp
from contracts.artifact import read_metadata
from contracts.batch_job import OUTPUT_FORMATS, JobSpec, JobSummary, Part, PartResult

EXIT = {"succeeded": 0, "completed_with_errors": 1, "failed": 2}
LOCAL_PART_MB = 16  # smaller than in AWS: finer progress, and parts for every core
EXAMPLES = """examples:
  mlops batch --model-dir model/ --input customers.csv --output scored/ --format csv
  mlops batch --model-dir model/ --input exports/ --output scored/ --workers 2
  mlops batch start --job-id nightly-2026-12-01 --wait
  mlops batch start --job-id backfill --objects s3://DATA_BUCKET/datasets/my-model/2025.csv.gz --model-version 3"""


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True, help="an unpacked model artifact (train's output)")
    parser.add_argument("--input", type=Path, required=True,
                        help="a CSV / JSON Lines file (optionally .gz) or a folder of them")
    parser.add_argument("--output", type=Path, required=True, help="folder for the outputs, errors and summary")
    parser.add_argument("--format", choices=OUTPUT_FORMATS, default="jsonl", help="output format (default jsonl)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: every core)")
    parser.add_argument("--part-mb", type=int, default=LOCAL_PART_MB, help="split plain files into parts of this size")
    parser.add_argument("--job-id", default="local", help="the job's name in its summary")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["start"]:
        from batch_scoring.start import main as start_main

        return start_main(argv[1:], f"{prog or 'mlops batch'} start")
    args = build_parser(prog).parse_args(argv)
    if args.workers < 1 or not 1 <= args.part_mb <= 1024:
        print("error: --workers must be >= 1 and --part-mb from 1 to 1024", file=sys.stderr)
        return 2
    try:
        summary = run_local(args.model_dir.resolve(), args.input.resolve(), args.output.resolve(),
                            output_format=args.format, workers=args.workers, part_bytes=args.part_mb << 20,
                            job_id=args.job_id, progress=not args.quiet)
    except (PlanError, StoreError, model_pin.ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(msgspec.to_builtins(summary), indent=2))
    for failure in summary.parts_failed:
        print(f"error: {failure}", file=sys.stderr)
    return EXIT[summary.status]


def local_files(input_path: Path, output: Path) -> tuple[LocalStore, list[InputFile]]:
    """The input files; an output folder inside the input folder is not input (a re-run would score its outputs)."""
    if input_path.is_file():
        return LocalStore(input_path.parent), [InputFile(input_path.name, input_path.name, input_path.stat().st_size)]
    if not input_path.is_dir():
        raise PlanError(f"{input_path}: no such file or folder")
    store = LocalStore(input_path)
    files = [InputFile(key, key, size) for key, size in store.list("")
             if not skipped(key) and not (input_path / key).is_relative_to(output)]
    if not files:
        raise PlanError(f"{input_path}: no input files")
    return store, files


def run_local(model_dir: Path, input_path: Path, output: Path, *, output_format: str, workers: int, part_bytes: int,
              job_id: str, progress: bool) -> JobSummary:
    from batch_scoring.summary import summarize

    if output.exists() and not output.is_dir():
        raise PlanError(f"--output {output}: exists and is not a folder")
    pin = model_pin.directory_pin(model_dir)
    source, files = local_files(input_path, output)
    parts = plan_parts(source, files, part_bytes)
    output.mkdir(parents=True, exist_ok=True)
    # The model is opened by the workers (or by _score inline), not here: the parent needs only its name.
    spec = JobSpec(job_id=job_id, model_name=read_metadata(model_dir).model_name,
                   output_prefix="", scope="", output_format=output_format, model=pin, started_at=utc_stamp(),
                   run_id=uuid.uuid4().hex)
    bar = Progress(sum(p.end - p.start for p in parts), enabled=progress)
    jobs = [(str(input_path if input_path.is_dir() else input_path.parent), str(output), part, spec) for part in parts]
    if workers == 1 or len(parts) == 1:
        for job in jobs:
            bar.advance(_score(job))
    else:
        with multiprocessing.get_context("spawn").Pool(min(workers, len(parts))) as pool:
            for result in pool.imap_unordered(_score, jobs):
                bar.advance(result)
    bar.close()
    return summarize(LocalStore(output), spec, parts)


def _score(job: tuple[str, str, Part, JobSpec]) -> tuple[Part, PartResult]:
    from batch_scoring.part_run import score_part

    source_root, output_root, part, spec = job
    output = Path(output_root)
    model = model_pin.load(spec.model, output)
    result = score_part(LocalStore(Path(source_root)), LocalStore(output), part, spec, model,
                        workdir=Path(tempfile.gettempdir()) / "mlops-batch")
    return part, result


class Progress:
    """A one-line progress bar on stderr: bytes of input scored, rows, rows per second."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total, self.done, self.rows, self.errors = max(total, 1), 0, 0, 0
        self.enabled = enabled and sys.stderr is not None
        self.started = time.perf_counter()

    def advance(self, scored: tuple[Part, PartResult]) -> None:
        part, result = scored
        self.done += part.end - part.start
        self.rows += result.rows
        self.errors += result.errors
        if self.enabled:
            share = min(1.0, self.done / self.total)
            rate = self.rows / max(time.perf_counter() - self.started, 1e-9)
            bar = "#" * int(share * 30)
            print(f"\r[{bar:<30}] {share:6.1%}  {self.rows:,} rows  {self.errors:,} refused  {rate:,.0f} rows/s",
                  end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr)


