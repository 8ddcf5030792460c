"""A job's work, cut into parts: each input file, split into byte ranges of about `part_bytes` unless compressed.

A part holds the rows whose first byte lies in its range, so a child reads its range plus the end
of its last line and skips the start of its first one (a row is never split or read twice). Row
numbers stay exact across parts: the planner counts the newlines before each boundary, reading the
file once in parallel ranged reads. A gzip file cannot be read from the middle: it is one part.
Every line is a row, so a quoted CSV field may not span lines (chunk_parse refuses the unclosed quote).
"""
from __future__ import annotations

import csv
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from batch_scoring.store import Store, StoreError
from contracts.batch_job import EXTENSIONS, GZIP_SUFFIX, Part, input_format

HEADER_PROBE = 1 << 20  # a CSV header longer than 1 MiB is not a header
COUNT_BLOCK = 8 << 20  # newline counting reads this much at a time
COUNT_THREADS = 8


class PlanError(Exception):
    """The input cannot be scored as given; the message names the file and the problem."""


@dataclass(frozen=True)
class InputFile:
    key: str  # what the store reads
    name: str  # its path inside the job (names the outputs)
    size: int


def skipped(name: str) -> bool:
    """Markers, hidden files and writers' scratch folders (_SUCCESS, .keep, _temporary/…) are not input."""
    return not name.rsplit("/", 1)[-1] or any(part.startswith(("_", ".")) for part in name.split("/"))


def plan_parts(store: Store, files: Iterable[InputFile], part_bytes: int) -> list[Part]:
    """Every file's parts, in file order; PlanError names the first file that cannot be read or has no known format."""
    parts: list[Part] = []
    for f in files:
        kind = input_format(f.name)
        if kind is None:
            known = ", ".join(f"{e}[{GZIP_SUFFIX}]" for e in EXTENSIONS)
            raise PlanError(f"{f.name}: unknown file type; name input files {known}")
        fmt, compressed = kind
        try:
            header = _csv_header(store, f, compressed) if fmt == "csv" and f.size else None  # empty: no rows
            if compressed or f.size <= part_bytes:
                parts.append(Part(key=f.key, name=f.name, index=0, start=0, end=f.size, size=f.size, first_row=1,
                                  format=fmt, compressed=compressed, header=header))
                continue
            bounds = list(range(0, f.size, part_bytes)) + [f.size]
            firsts = _first_rows(store, f, bounds, header_lines=1 if header is not None else 0)
        except StoreError as exc:
            raise PlanError(str(exc)) from exc
        parts.extend(Part(key=f.key, name=f.name, index=i, start=bounds[i], end=bounds[i + 1], size=f.size,
                          first_row=firsts[i], format=fmt, header=header)
                     for i in range(len(bounds) - 1))
    return parts


def _csv_header(store: Store, f: InputFile, compressed: bool) -> list[str] | None:
    """The CSV's columns; None for a file with nothing in it (no rows to score)."""
    if compressed:
        from isal import igzip
        from isal.isal_zlib import error as ZlibError

        with store.open_stream(f.key) as raw, igzip.IGzipFile(fileobj=raw) as stream:
            try:
                head = stream.readline(HEADER_PROBE)
            except (OSError, EOFError, ZlibError) as exc:
                raise PlanError(f"{f.name}: not a readable gzip file ({exc})") from exc
        if not head:
            return None
    else:
        head = store.read_range(f.key, 0, min(f.size, HEADER_PROBE)).split(b"\n", 1)[0]
    try:
        text = head.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise PlanError(f"{f.name}: the header is not UTF-8 text") from None
    columns = next(csv.reader([text]), [])
    if not columns or not any(c.strip() for c in columns):
        raise PlanError(f"{f.name}: a CSV file needs a header line naming its columns")
    return [c.strip() for c in columns]


def _first_rows(store: Store, f: InputFile, bounds: list[int], header_lines: int) -> list[int]:
    """Row number (1 = first data row) of each part's first row, from the newlines before each boundary."""
    def count(i: int) -> tuple[int, bool]:
        """Newlines in [bounds[i], bounds[i+1]) and whether the range ends with one."""
        n, last = 0, b""
        for start in range(bounds[i], bounds[i + 1], COUNT_BLOCK):
            block = store.read_range(f.key, start, min(start + COUNT_BLOCK, bounds[i + 1]))
            n += block.count(b"\n")
            last = block[-1:] or last
        return n, last == b"\n"

    with ThreadPoolExecutor(COUNT_THREADS) as pool:
        counts = list(pool.map(count, range(len(bounds) - 2)))  # the last part's count is never needed
    firsts, newlines = [1], 0
    for n, ends_line in counts:
        newlines += n
        # The part's first line: at the boundary if the byte before it ends a line, else the next one.
        line_index = newlines + (0 if ends_line else 1)
        firsts.append(line_index - header_lines + 1)
    return firsts
