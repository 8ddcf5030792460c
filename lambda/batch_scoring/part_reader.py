"""The data lines of one part, in chunks with the row number of each chunk's first line.

A plain file's part is its byte range, widened to whole lines (see planner); a gzip file is
streamed, so memory stays bounded by the chunk, not the file.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from batch_scoring.chunk_parse import FileError
from batch_scoring.store import Store
from contracts.batch_job import Part

CHUNK_BYTES = 8 << 20  # text scored at once (~30,000 rows of 30 numbers): vectorised calls, bounded memory
EXTEND_BLOCK = 1 << 16
BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark some exporters put first  # read this much more at a time to finish the range's last line


def part_chunks(store: Store, part: Part, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, bytes, int]]:
    """(row number of the block's first line, block of whole lines without the final newline, its line count).

    The header is skipped.

    Blank lines stay in the blocks so row numbers stay exact; the parsers skip them.
    """
    blocks = _stream_blocks(store, part, chunk_bytes) if part.compressed else iter([_range_text(store, part)])
    row, header, first = part.first_row, part.start == 0 and part.format == "csv", part.start == 0
    for data in blocks:
        pos = len(BOM) if first and data.startswith(BOM) else 0
        first = False
        if header:
            pos, header = data.find(b"\n") + 1 if b"\n" in data else len(data), False
        while pos < len(data):
            end = data.find(b"\n", pos + chunk_bytes)
            if end < 0:
                end = len(data) - 1 if data.endswith(b"\n") else len(data)
            block = data[pos:end]
            lines = block.count(b"\n") + 1
            if block.strip():
                yield row, block, lines
            row += lines
            pos = end + 1


def _range_text(store: Store, part: Part) -> bytes:
    """The lines that start in [start, end): read from the byte before start to the newline ending the range."""
    begin = max(0, part.start - 1)
    data = store.read_range(part.key, begin, part.end)
    stop = part.end
    while stop < part.size and not data.endswith(b"\n"):
        more = store.read_range(part.key, stop, min(stop + EXTEND_BLOCK, part.size))
        cut = more.find(b"\n")
        data += more if cut < 0 else more[:cut + 1]
        stop += len(more)
        if cut >= 0:
            break
    if part.start > 0:  # drop the end of the previous part's last line (just the newline when the range starts a line)
        data = data[data.find(b"\n") + 1:] if b"\n" in data else b""
    return data


def _stream_blocks(store: Store, part: Part, chunk_bytes: int) -> Iterator[bytes]:
    """Decompressed text in blocks of whole lines (each ending with its newline, but maybe the last)."""
    from isal import igzip

    with store.open_stream(part.key) as raw, igzip.IGzipFile(fileobj=raw) as stream:
        rest = b""
        while block := _read(stream, chunk_bytes, part.name):
            data = rest + block
            cut = data.rfind(b"\n") + 1
            if cut:
                yield data[:cut]
            rest = data[cut:]
        if rest:
            yield rest


def _read(stream: BinaryIO, size: int, name: str) -> bytes:
    from isal.isal_zlib import error as ZlibError

    try:
        return stream.read(size)
    except (OSError, EOFError, ZlibError) as exc:  # truncated or corrupt: the file, not a passing fault
        raise FileError(f"{name}: not a readable gzip file ({exc})") from exc
