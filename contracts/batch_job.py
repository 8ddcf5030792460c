"""Batch scoring's contracts: a job's parts (the Distributed Map's items), what scoring a part yields, the job summary.

The planner writes the parts, each child scores some of them and writes one PartResult per part,
the summary step adds them up. Rows in = rows scored + rows refused, per part and per job.
"""
from __future__ import annotations

from typing import Literal

import msgspec

InputFormat = Literal["csv", "jsonl"]
OutputFormat = Literal["jsonl", "csv"]
OUTPUT_FORMATS: tuple[str, ...] = ("jsonl", "csv")
JobStatus = Literal["succeeded", "completed_with_errors", "failed"]
# What a file's name says about it: format by extension, gzip by a trailing .gz.
EXTENSIONS: dict[str, InputFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
GZIP_SUFFIX = ".gz"
ID_COLUMN = "id"  # a column (CSV) or field (JSON Lines) of this name is the row's id


class ModelPin(msgspec.Struct, kw_only=True, frozen=True):
    """The one model a job scores with, fixed when it is planned and verified by sha256 where it is opened."""

    model_data_url: str  # s3://…/model.tar.gz, or a local directory (mlops batch)
    sha256: str  # of the tarball; "" for a local directory
    version: str
    package_arn: str = ""
    source: str = ""  # "live", "registry version N", "directory"


class Part(msgspec.Struct, kw_only=True, frozen=True):
    """One work item: the rows of one input file that start in [start, end) (the whole file when compressed)."""

    key: str  # the object key (or local path) to read
    name: str  # the file's path inside the job: names its outputs
    index: int  # the part's number within the file
    start: int
    end: int
    size: int  # the whole file's size, in bytes
    first_row: int  # number of the part's first data row in the file (1 = the first row after any header)
    format: InputFormat
    compressed: bool = False
    header: list[str] | None = None  # CSV columns, read once by the planner


class JobSpec(msgspec.Struct, kw_only=True, frozen=True):
    """What every part of a job shares (the Distributed Map's BatchInput)."""

    job_id: str
    model_name: str
    output_prefix: str  # the job's output root: batch/<model>/output/<job>/ (or a local folder)
    scope: str  # where the summary and manifest go: the output root, or a file's folder under it
    output_format: OutputFormat
    model: ModelPin
    started_at: str
    capture_sample_rate: float = 0.0
    run_id: str = ""  # one per execution: a part's stats count only for the run that wrote them


class PartResult(msgspec.Struct, kw_only=True):
    """One scored part; written beside its outputs so a summary (or a re-run) can add them up."""

    name: str
    index: int
    rows: int  # rows read
    scored: int  # rows written to the output
    errors: int  # rows written to the errors file
    output_key: str
    errors_key: str | None
    seconds: float
    captured: int = 0
    model_sha256: str = ""
    error: str | None = None  # the file cannot be scored (e.g. its header lacks a feature): the part failed
    run_id: str = ""


class OutputRow(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One scored row of a JSON Lines output (CSV: the same columns, probability_<class> per class)."""

    id: str  # the row's `id` column, else "<file>:<row number>"
    prediction: str | float  # a class label, or a regression value
    model_version: str
    probabilities: dict[str, float] | None = None  # classifiers
    warnings: list[str] | None = None  # e.g. a category not seen in training (accepted, as the API does)


class ErrorRow(msgspec.Struct, kw_only=True):
    """One refused row in a part's errors file: where it is and every reason, as the API names them."""

    file: str
    row: int
    id: str
    errors: list[str]


class JobSummary(msgspec.Struct, kw_only=True):
    """The job's outcome, written last (<scope>/_summary.json) and returned by the state machine / printed by the CLI."""

    job_id: str
    model_name: str
    status: JobStatus
    files: int
    parts: int
    parts_failed: list[str]
    rows: int
    scored: int
    errors: int
    output_prefix: str
    output_format: OutputFormat
    model: ModelPin
    started_at: str
    finished_at: str
    seconds: float
    rows_per_second: float
    errors_files: list[str] = msgspec.field(default_factory=list)


def input_format(name: str) -> tuple[InputFormat, bool] | None:
    """(format, gzip) from a file name such as day.csv.gz; None when the name says neither."""
    lower = name.lower()
    compressed = lower.endswith(GZIP_SUFFIX)
    stem = lower.removesuffix(GZIP_SUFFIX)
    for extension, fmt in EXTENSIONS.items():
        if stem.endswith(extension):
            return fmt, compressed
    return None


def job_status(parts_failed: int, errors: int) -> JobStatus:
    """failed: a part was not scored; completed_with_errors: some rows were refused; else succeeded."""
    if parts_failed:
        return "failed"
    return "completed_with_errors" if errors else "succeeded"


encode = msgspec.json.Encoder().encode
