"""Scoring one part end to end: read its rows, score them chunk by chunk, write its outputs and its stats.

Outputs are spooled to local files and uploaded whole under names fixed by the part, so a retried
or re-run part replaces its own outputs and never adds duplicates. The stats file is written last:
a part with stats is a part whose outputs are complete.
"""
from __future__ import annotations

import gzip
import hashlib
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from batch_scoring.chunk_parse import Chunk, CsvParser, FileError, JsonlParser
from batch_scoring.model_pin import LoadedModel
from batch_scoring.part_reader import part_chunks
from batch_scoring.scorer import ChunkScorer, Scored
from batch_scoring.store import Store
from contracts import names
from contracts.batch_job import JobSpec, Part, PartResult, encode
from contracts.capture_record import record_line


def score_part(source: Store, sink: Store, part: Part, spec: JobSpec, model: LoadedModel, *,
               workdir: Path, capture: Store | None = None, capture_prefix: str = "") -> PartResult:
    """Score the part and write its outputs, errors file and stats; a file the model cannot read is recorded, not raised."""
    started = time.perf_counter()
    output_key = names.batch_part_key(spec.output_prefix, part.name, part.index, spec.output_format)  # the format is the extension
    errors_key = names.batch_errors_key(spec.output_prefix, part.name, part.index)
    scorer = ChunkScorer(model.artifact, model.runtime, model_version=spec.model.version,
                         output_format=spec.output_format)
    result = PartResult(name=part.name, index=part.index, rows=0, scored=0, errors=0, output_key=output_key,
                        errors_key=None, seconds=0.0, model_sha256=spec.model.sha256, run_id=spec.run_id)
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir, prefix="part-") as tmp:
        out_path, err_path = Path(tmp) / "out", Path(tmp) / "errors"
        captured: list[bytes] = []
        try:
            parser: CsvParser | JsonlParser | None = None  # made at the first rows: an empty file has no header
            with out_path.open("wb") as out, err_path.open("wb") as err:
                out.write(scorer.writer.header())
                for first_row, block, lines in part_chunks(source, part):
                    if parser is None:
                        parser = (CsvParser(scorer.rules, part.header or [], part.name) if part.format == "csv"
                                  else JsonlParser(scorer.rules))
                    chunk = parser.parse(first_row, block, lines)
                    scored = scorer.score(chunk, part.name)
                    out.write(scored.output)
                    err.writelines(scored.errors)
                    result.rows += scored.rows
                    result.scored += scored.scored
                    result.errors += len(scored.errors)
                    if capture is not None and spec.capture_sample_rate > 0:
                        captured += _capture_sample(scorer, chunk, scored, spec, part)
        except FileError as exc:
            result.error = str(exc)
        if result.error is None:
            sink.put_file(output_key, out_path)
            if result.errors:
                sink.put_file(errors_key, err_path)
                result.errors_key = errors_key
            else:
                sink.delete([errors_key])  # a previous run's errors no longer apply
            if captured:
                result.captured = len(captured)
                capture.put(_capture_key(capture_prefix, spec, part), gzip.compress(b"".join(captured)))
    result.seconds = round(time.perf_counter() - started, 3)
    sink.put(names.batch_part_stats_key(spec.output_prefix, part.name, part.index), encode(result))
    return result


def _capture_sample(scorer: ChunkScorer, chunk: Chunk, scored: Scored, spec: JobSpec, part: Part) -> list[bytes]:
    """A deterministic sample (by row number), so a re-run captures the same rows."""
    if not len(scored.accepted):
        return []
    numbers = np.asarray(chunk.numbers)[scored.accepted]
    keys = (numbers * 2654435761 + part.index) % 1_000_003  # a cheap hash spreading rows evenly
    chosen = np.flatnonzero(keys < spec.capture_sample_rate * 1_000_003)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    request_id = f"batch:{spec.job_id}"
    lines = []
    for k in chosen.tolist():
        prediction, probability = scorer.prediction(scored.out, k)
        pos = int(scored.accepted[k])
        lines.append(record_line(time=now, request_id=request_id, model_name=spec.model_name,
                                 model_version=spec.model.version, features=scored.checked.get(pos) or scorer.features(chunk, pos),
                                 prediction=prediction, probability=probability,
                                 id=scorer.row_id(chunk, part.name, pos)))  # the output row's id: what a label quotes
    return lines


def _capture_key(capture_prefix: str, spec: JobSpec, part: Part) -> str:
    """Beside what Firehose writes (<prefix>YYYY/MM/DD/HH/), so the drift check reads it like live traffic."""
    at = datetime.now(UTC)
    digest = hashlib.sha256(f"{spec.job_id}/{part.name}/{part.index}".encode()).hexdigest()[:16]
    return f"{capture_prefix}{at:%Y/%m/%d/%H}/batch-{digest}.gz"
