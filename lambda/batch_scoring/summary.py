"""The job summary: every part's stats added up, stale outputs of earlier runs removed, written last."""
from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from batch_scoring.store import Store
from contracts import names
from contracts.batch_job import JobSpec, JobSummary, Part, PartResult, encode, job_status

OUTPUT_FILES = ("part-", "errors-")


def utc_stamp() -> str:
    """Now, ISO-8601 UTC to the millisecond (a job's duration can be well under a second)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def part_results(store: Store, spec: JobSpec, parts: list[Part]) -> dict[tuple[str, int], PartResult | None]:
    """Each part's stats, None for a part that has none (its child failed for good).

    The stats folders are listed and only what is there is read: the summary function may list its
    prefix, and without ListBucket on the whole bucket S3 answers a missing key with 403, not 404.
    """
    present = {key for name in sorted({p.name for p in parts})
               for key, _ in store.list(f"{names.batch_scope_prefix(spec.output_prefix, name)}{names.BATCH_PART_STATS}")}
    found: dict[tuple[str, int], PartResult | None] = {}
    for part in parts:
        key = names.batch_part_stats_key(spec.output_prefix, part.name, part.index)
        data = store.get(key) if key in present else None
        result = msgspec.json.decode(data, type=PartResult) if data is not None else None
        if result is not None and (result.run_id != spec.run_id or result.model_sha256 != spec.model.sha256):
            result = None  # left by an earlier run: this run did not score the part
        found[(part.name, part.index)] = result
    return found


def summarize(store: Store, spec: JobSpec, parts: list[Part], *, failure: str = "") -> JobSummary:
    """Add the parts up, drop outputs no part of this run wrote, write <scope>/_summary.json; failure: the map's error."""
    results = part_results(store, spec, parts)
    reasons: dict[tuple[str, str], list[int]] = {}
    for (name, index), result in results.items():
        why = "not scored" + (f" ({failure})" if failure else "") if result is None else result.error
        if why:
            reasons.setdefault((name, why), []).append(index)
    failed = [f"{name} part{'s' if len(indexes) > 1 else ''} {', '.join(map(str, indexes))}: {why}"
              for (name, why), indexes in reasons.items()]
    done = [r for r in results.values() if r is not None and not r.error]
    if not failed:
        _remove_stale(store, spec, parts, done)
    finished = utc_stamp()
    seconds = max(0.0, (_parse(finished) - _parse(spec.started_at)).total_seconds())
    rows = sum(r.rows for r in done)
    summary = JobSummary(
        job_id=spec.job_id, model_name=spec.model_name, status=job_status(len(failed), sum(r.errors for r in done)),
        files=len({p.name for p in parts}), parts=len(parts), parts_failed=failed, rows=rows,
        scored=sum(r.scored for r in done), errors=sum(r.errors for r in done), output_prefix=spec.output_prefix,
        output_format=spec.output_format, model=spec.model, started_at=spec.started_at, finished_at=finished,
        seconds=round(seconds, 3), rows_per_second=round(rows / seconds, 1) if seconds > 0 else 0.0,
        errors_files=sorted(r.errors_key for r in done if r.errors_key),
    )
    store.put(f"{spec.scope}{names.BATCH_SUMMARY}", encode(summary))
    return summary


def _remove_stale(store: Store, spec: JobSpec, parts: list[Part], done: list[PartResult]) -> None:
    """Outputs this run did not write: parts of an earlier split, and, when the run covers the whole job,
    the outputs of files no longer in its input folder."""
    keep = {r.output_key for r in done} | {r.errors_key for r in done if r.errors_key}
    files = {p.name for p in parts}
    indexes = {(p.name, p.index) for p in parts}
    whole_job = spec.scope == spec.output_prefix
    stale = []
    for key, _ in store.list(spec.scope):
        name, kind, index = _output_of(key[len(spec.output_prefix):])
        if name is None:
            continue  # the job's own summary and manifest
        if name not in files:
            if whole_job:  # a file no longer in the job's folder: its outputs go with it
                stale.append(key)
            continue
        if (kind == "output" and key not in keep) or (kind == "stats" and (name, index) not in indexes):
            stale.append(key)
    store.delete(stale)


def _output_of(rest: str) -> tuple[str | None, str, int | None]:
    """(input file, kind, part index) of a key under a job's output prefix; (None, …) for the job's own files."""
    folder, _, base = rest.rpartition("/")
    if folder.endswith("/" + names.BATCH_PART_STATS.rstrip("/")) or folder == names.BATCH_PART_STATS.rstrip("/"):
        return folder.rpartition("/")[0] or None, "stats", _stats_index(base)
    if not folder:
        return None, "job", None
    if base.startswith(OUTPUT_FILES):
        return folder, "output", None
    return folder, "summary", None  # a landed file's _summary.json or _manifest.json


def _stats_index(key: str) -> int | None:
    try:
        return int(key.rsplit("/", 1)[-1].removesuffix(".json"))
    except ValueError:
        return None


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
