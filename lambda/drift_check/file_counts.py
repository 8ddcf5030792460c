"""Count capture files into per-file accumulators, on this process and forked workers, in plan order.

Decoding JSON is CPU-bound and holds the GIL, so extra cores are used through processes. Each file
is counted on its own and handed back in plan order, so the caller can merge and checkpoint file by
file exactly as if one process had read them all. Plain pipes only: Lambda has no /dev/shm, which
multiprocessing's pools and queues need.
"""
from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

from contracts.baseline import Baseline
from drift_check.capture_reader import BatchBuffer, CaptureDecoder
from drift_check.capture_source import CORRUPT, CaptureObject, Prefetcher
from drift_check.stats import Accumulator

FileResult = tuple[CaptureObject, Accumulator, str | None]  # the file, its counts, why it was unreadable


class WorkerFailed(RuntimeError):
    """A worker process could not read its files (S3 or network trouble, or a crash)."""


def available_cpus() -> int:
    """The CPUs this process may run on (a Lambda function gets more with more memory)."""
    return max(1, len(os.sched_getaffinity(0)))


def count_files(s3: Any, bucket: str, objects: list[CaptureObject], baseline: Baseline) -> Iterator[FileResult]:
    """Read and count files one by one on this process, downloading ahead on a thread."""
    decoder = CaptureDecoder(baseline)
    for obj, blocks, errors in Prefetcher(s3, bucket, objects).files():
        acc = Accumulator(baseline)
        buffer = BatchBuffer(acc)
        for block in blocks:
            buffer.add(decoder.decode(block))
        buffer.flush()
        if errors and not isinstance(errors[0], CORRUPT):
            raise errors[0]  # S3 or network trouble: fail the run; the next one resumes from the checkpoint
        # A corrupt gzip file: what could be read is counted and the file is reported.
        yield obj, acc, (f"corrupt gzip: {errors[0]}" if errors else None)


def _worker(conn: Connection, bucket: str, objects: list[CaptureObject], baseline: Baseline) -> None:
    import boto3  # a fresh client: boto3 clients must not cross a fork

    try:
        for obj, acc, problem in count_files(boto3.client("s3"), bucket, objects, baseline):
            conn.send(("file", obj.key, acc.to_dict(), problem))
        conn.send(("done",))
    except BaseException:
        conn.send(("failed", traceback.format_exc(limit=5)))
    finally:
        conn.close()


class _Workers:
    """Forked workers, each counting a fixed share of the files and sending back per-file state."""

    def __init__(self, bucket: str, shares: list[list[CaptureObject]], baseline: Baseline):
        ctx = multiprocessing.get_context("fork")  # inherits the imported modules and the baseline
        self.baseline = baseline
        self.conns: list[Connection] = []
        self.procs = []
        for share in shares:
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker, args=(child, bucket, share, baseline), daemon=True)
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)

    def collect(self, results: dict[str, tuple[Accumulator, str | None]], block: bool) -> None:
        """Move finished files into `results`; with block, wait for at least one message."""
        while self.conns:
            ready = wait(self.conns, timeout=None if block else 0)
            if not ready:
                return
            for conn in ready:
                self._receive(conn, results)
            block = False

    def _receive(self, conn: Any, results: dict[str, tuple[Accumulator, str | None]]) -> None:
        try:
            message = conn.recv()
        except EOFError:
            raise WorkerFailed("a drift-check worker process died without reporting") from None
        if message[0] == "file":
            _, key, state, problem = message
            results[key] = (Accumulator.from_dict(self.baseline, state), problem)
        elif message[0] == "done":
            self.conns.remove(conn)
        else:
            raise WorkerFailed(f"a drift-check worker failed:\n{message[1]}")

    def close(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
            proc.join(timeout=5)


def count_files_parallel(
    s3: Any, bucket: str, objects: list[CaptureObject], baseline: Baseline, workers: int
) -> Iterator[FileResult]:
    """Like count_files, with `workers` processes in all (this one included); results in plan order."""
    if workers <= 1 or len(objects) < 2:
        yield from count_files(s3, bucket, objects, baseline)
        return
    workers = min(workers, len(objects))
    shares = [objects[i::workers] for i in range(workers)]  # round robin keeps every share near the front
    pool = _Workers(bucket, shares[1:], baseline)
    results: dict[str, tuple[Accumulator, str | None]] = {}
    position = 0
    try:
        for obj, acc, problem in count_files(s3, bucket, shares[0], baseline):
            results[obj.key] = (acc, problem)
            pool.collect(results, block=False)
            while position < len(objects) and objects[position].key in results:
                yield objects[position], *results.pop(objects[position].key)
                position += 1
        while position < len(objects):
            if objects[position].key not in results:
                pool.collect(results, block=True)
                if objects[position].key not in results and not pool.conns:
                    raise WorkerFailed(f"no worker counted {objects[position].key}")
                continue
            yield objects[position], *results.pop(objects[position].key)
            position += 1
    finally:
        pool.close()
