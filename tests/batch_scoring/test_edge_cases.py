"""Inputs that once broke a job or told a different story than the API (found in review), each held here."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from batch_scoring import cli
from batch_scoring.cli import run_local
from contracts.artifact import open_artifact
from inference.validation import FeatureReader, RequestError
from tests.batch_scoring.batch_helpers import errors, outputs, row_number


def score(model_dir: Path, tmp_path: Path, files: dict[str, bytes], *, part_bytes: int = 1 << 20):
    src = tmp_path / "in"
    for name, data in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    return run_local(model_dir, src, tmp_path / "out", output_format="jsonl", workers=1, part_bytes=part_bytes,
                     job_id="t", progress=False), tmp_path / "out"


def api_messages(model_dir: Path, doc: dict) -> list[str]:
    from inference.decoding import parse_json

    reader = FeatureReader(open_artifact(model_dir).metadata.feature_schema)
    with pytest.raises(RequestError) as caught:
        reader.read([parse_json(json.dumps(doc).encode()) if not isinstance(doc, bytes) else parse_json(doc)],
                    (), indexed=False)
    return [f"{'.'.join(map(str, i.loc))}: {i.msg}" for i in caught.value.issues]


@pytest.mark.parametrize("part_bytes", [3, 7, 1 << 20])
def test_crlf_blank_and_whitespace_lines_are_not_rows_at_any_part_size(regression_dir: Path, tmp_path: Path,
                                                                       part_bytes: int) -> None:
    data = b"a,b\r\n1,2\r\n\r\n3,4\r\n   \r\n5,6\r\n"
    summary, out = score(regression_dir, tmp_path, {"c.csv": data}, part_bytes=part_bytes)
    assert (summary.status, summary.rows, summary.scored) == ("succeeded", 3, 3)
    assert [row_number(r.id) for r in outputs(out / "c.csv")] == [1, 3, 5]


@pytest.mark.parametrize("data", [b"a,b\n1,2,\n3,4,\n", b"a,b\n1,2,3\n", b"a,b\n1\n2\n"])
def test_rows_with_the_wrong_number_of_fields_are_refused_even_when_all_are(regression_dir: Path, tmp_path: Path,
                                                                            data: bytes) -> None:
    summary, out = score(regression_dir, tmp_path, {"f.csv": data})
    assert summary.scored == 0 and summary.errors == summary.rows > 0
    assert all(e.errors[0].startswith("expected 2 fields as in the header") for e in errors(out / "f.csv"))


def test_a_json_value_never_spans_or_shares_lines(regression_dir: Path, tmp_path: Path) -> None:
    data = b'{"a":1,"b":2},{"a":3,"b":4}\n[0\n0]\n{"a":5,"b":6}\n'
    summary, out = score(regression_dir, tmp_path, {"j.jsonl": data})
    assert (summary.rows, summary.scored) == (4, 1)
    assert [row_number(r.id) for r in outputs(out / "j.jsonl")] == [4]
    assert [e.row for e in errors(out / "j.jsonl")] == [1, 2, 3]
    assert all(e.errors[0].startswith("the line is not valid JSON") for e in errors(out / "j.jsonl"))


@pytest.mark.parametrize("line", [b'{"a": 1' + b"0" * 400 + b', "b": 1}', b'{"a": NaN, "b": 1}',
                                  b'{"a": Infinity, "b": 1}', b'{"a": 1e999, "b": 1}'])
def test_json_numbers_out_of_range_get_the_api_s_message(regression_dir: Path, tmp_path: Path, line: bytes) -> None:
    summary, out = score(regression_dir, tmp_path, {"n.jsonl": line + b"\n" + b'{"a": 1, "b": 2}\n'})
    assert (summary.rows, summary.scored, summary.errors) == (2, 1, 1)
    assert errors(out / "n.jsonl")[0].errors == api_messages(regression_dir, line)


def test_a_truncated_gzip_fails_its_file_with_a_reason(regression_dir: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    whole = gzip.compress(b"a,b\n" + b"1,2\n" * 50_000)
    summary, _ = score(regression_dir, tmp_path, {"cut.csv.gz": whole[: len(whole) // 2], "ok.csv": b"a,b\n1,2\n"})
    assert summary.status == "failed" and summary.rows == 1
    (failure,) = summary.parts_failed
    assert failure.startswith("cut.csv.gz part 0: cut.csv.gz: not a readable gzip file")
    code = cli.main(["--model-dir", str(regression_dir), "--input", str(tmp_path / "in"), "--output",
                     str(tmp_path / "out2"), "--quiet"])
    assert code == 2 and "not a readable gzip file" in capsys.readouterr().err


def test_empty_files_are_zero_rows_and_a_bom_is_not_data(regression_dir: Path, tmp_path: Path) -> None:
    bom = b"\xef\xbb\xbf"
    summary, out = score(regression_dir, tmp_path, {"e.csv": b"", "e.jsonl": b"", "b.jsonl": bom + b'{"a":1,"b":2}\n',
                                                    "b.csv": bom + b"a,b\n1,2\n"})
    assert (summary.status, summary.files, summary.rows, summary.scored) == ("succeeded", 4, 2, 2)
    assert (out / "e.csv" / "part-00000.jsonl").read_bytes() == b""


def test_a_header_naming_a_column_twice_fails_the_file(regression_dir: Path, tmp_path: Path) -> None:
    summary, _ = score(regression_dir, tmp_path, {"d.csv": b"a,a,b\n1,2,3\n"})
    assert summary.status == "failed"
    assert summary.parts_failed == ["d.csv part 0: d.csv: the header names 'a' more than once"]


def test_one_reason_for_the_parts_of_a_file_is_reported_once(regression_dir: Path, tmp_path: Path) -> None:
    summary, _ = score(regression_dir, tmp_path, {"x.csv": b"a,c\n" + b"1,2\n" * 10}, part_bytes=10)
    (failure,) = summary.parts_failed
    assert failure.startswith("x.csv parts 0, 1, 2") and "the header has no column 'b'" in failure


def test_an_output_folder_inside_the_input_folder_is_not_input(regression_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "r.csv").write_bytes(b"a,b\n1,2\n")
    for _ in range(2):
        summary = run_local(regression_dir, tmp_path / "in", tmp_path / "in" / "scored", output_format="jsonl",
                            workers=1, part_bytes=1 << 20, job_id="t", progress=False)
        assert (summary.files, summary.rows) == (1, 1)


def test_an_output_path_that_is_a_file_is_bad_input(regression_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "r.csv").write_bytes(b"a,b\n1,2\n")
    (tmp_path / "taken").write_text("x")
    code = cli.main(["--model-dir", str(regression_dir), "--input", str(tmp_path / "r.csv"), "--output",
                     str(tmp_path / "taken"), "--quiet"])
    assert code == 2 and "exists and is not a folder" in capsys.readouterr().err


def test_a_rerun_of_the_whole_job_drops_the_outputs_of_files_no_longer_there(regression_dir: Path, tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (src / "keep.csv").write_bytes(b"a,b\n1,2\n")
    (src / "gone.csv").write_bytes(b"a,b\n1,2\n")
    run_local(regression_dir, src, out, output_format="jsonl", workers=1, part_bytes=1 << 20, job_id="t", progress=False)
    (src / "gone.csv").unlink()
    summary = run_local(regression_dir, src, out, output_format="jsonl", workers=1, part_bytes=1 << 20, job_id="t",
                        progress=False)
    assert summary.files == 1 and not (out / "gone.csv").exists()
    assert (out / "keep.csv" / "part-00000.jsonl").exists()


def score_and_capture(model_dir: Path, tmp_path: Path, data: bytes) -> tuple[list, list[dict]]:
    """One JSON Lines part scored with every row captured: (capture records, output rows)."""
    import msgspec

    from batch_scoring import model_pin
    from batch_scoring.part_run import score_part
    from batch_scoring.planner import InputFile, plan_parts
    from batch_scoring.store import LocalStore
    from contracts.batch_job import JobSpec
    from contracts.capture_record import parse_line

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "m.jsonl").write_bytes(data)
    pin = model_pin.directory_pin(model_dir)
    source, sink, capture = LocalStore(tmp_path / "in"), LocalStore(tmp_path / "out"), LocalStore(tmp_path / "cap")
    (part,) = plan_parts(source, [InputFile("m.jsonl", "m.jsonl", len(data))], 1 << 20)
    spec = JobSpec(job_id="j", model_name="mixed", output_prefix="", scope="", output_format="jsonl", model=pin,
                   started_at="2026-12-01T00:00:00.000Z", capture_sample_rate=1.0, run_id="r")
    result = score_part(source, sink, part, spec, model_pin.load(pin, tmp_path), workdir=tmp_path / "w",
                        capture=capture, capture_prefix="capture/mixed/")
    (path,) = (tmp_path / "cap").rglob("*.gz")
    records = [parse_line(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    assert result.captured == len(records)
    output = [msgspec.json.decode(line) for line in next((tmp_path / "out").rglob("part-*.jsonl")).read_bytes().splitlines()]
    return records, output


def test_captured_features_are_what_the_model_read(mixed_dir: Path, tmp_path: Path) -> None:
    """An integer category code is captured as the category it was read as (as the API captures it)."""
    (record,), (row,) = score_and_capture(mixed_dir, tmp_path, b'{"size": 10.0, "color": "red", "count": 1, "code": 1}\n')
    assert record.features == {"size": 10.0, "color": "red", "count": 1.0, "code": "1"}
    assert row["model_version"]
    assert np.isfinite(record.probability[next(iter(record.probability))])


def test_captured_rows_keep_the_output_rows_id(mixed_dir: Path, tmp_path: Path) -> None:
    """The id a label will quote: the file's id column, else <file>:<row>, as the output row shows it."""
    line = '{{"id": {}, "size": 10.0, "color": "red", "count": 1, "code": "1"}}\n'
    data = "".join(line.format(i) for i in ('"order-1"', "null", '"order-3"')).encode()
    records, output = score_and_capture(mixed_dir, tmp_path, data)
    assert [r.id for r in records] == [row["id"] for row in output]
    assert [r.id for r in records][::2] == ["order-1", "order-3"] and records[1].id.startswith("m.jsonl:")
