"""CSV reading, typing and the model input matrix."""
import math

import numpy as np
import pytest

from contracts.schema import MISSING_CATEGORY, FeatureType
from training import dataset


def _csv(tmp_path, text):
    path = tmp_path / "d.csv"
    path.write_text(text)
    return path


def test_schema_inference_types_ranges_and_missing(tmp_path):
    table = dataset.read_csv(_csv(tmp_path, "a,b,c,y\n1,x,2.5,0\n3,,NA,1\n2,z,1.5,0\n"))
    schema = dataset.infer_schema(table, "y")
    a, b, c = schema.features
    assert (a.type, a.min, a.max, a.integer) == (FeatureType.NUMERIC, 1.0, 3.0, True)
    assert (b.type, b.categories) == (FeatureType.CATEGORICAL, ["x", "z"])
    assert b.missing_rate == pytest.approx(1 / 3)
    assert c.integer is False and math.isclose(c.missing_rate, 1 / 3)
    cols = dataset.typed_columns(table, schema)
    assert cols["b"][1] == MISSING_CATEGORY and math.isnan(cols["c"][1])
    X = dataset.feature_matrix(schema, cols)
    assert X.shape == (3, 3) and X.dtype == object


def test_declared_categorical_and_all_numeric_matrix(tmp_path):
    table = dataset.read_csv(_csv(tmp_path, "a,b,y\n1,2,0\n3,4,1\n"))
    schema = dataset.infer_schema(table, "y", categorical={"b"})
    assert schema.feature("b").categories == ["2", "4"]
    numeric_only = dataset.infer_schema(table, "y")
    X = dataset.feature_matrix(numeric_only, dataset.typed_columns(table, numeric_only))
    assert X.dtype == np.float64 and X.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_non_numeric_value_names_column_and_line(tmp_path):
    table = dataset.read_csv(_csv(tmp_path, "a,y\n1,0\n2,1\n"))
    schema = dataset.infer_schema(table, "y")
    table.columns[0][1] = "oops"
    with pytest.raises(dataset.DataError, match=r"column 'a'.*'oops' on line 3"):
        dataset.typed_columns(table, schema)


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("a,b\n1\n", "line 2 has 1 fields"),
])
def test_unreadable_files(tmp_path, text, message):
    with pytest.raises(dataset.DataError, match=message):
        dataset.read_csv(_csv(tmp_path, text))


def test_infinity_is_not_a_number_here():
    with pytest.raises(ValueError):
        dataset.parse_float("inf")


def test_line_breaks_inside_values_stay_in_the_value():
    # quoted (as csv.writer quotes \n) or not (csv.writer leaves \u2028 and its kind unquoted): one record each
    raw = 'c,y\n"gr\neen",1\n"a\r\nb",0\nbl\u2028ue,1\nx\x85\x0b\x0c\x1c\x1d\x1e\u2029y,0\n'.encode()
    table = dataset.parse_csv(raw, "d.csv")
    assert table.column("c") == ["gr\neen", "a\r\nb", "bl\u2028ue", "x\x85\x0b\x0c\x1c\x1d\x1e\u2029y"]
    assert table.column("y") == ["1", "0", "1", "0"]


def test_ordinary_files_read_as_before(tmp_path):
    # a BOM, CRLF line ends, blank lines and R's row-name column (empty first name, kept for validation to name)
    raw = '\ufeff"",a,y\r\n\r\n"1",0.5,x\r\n"2",,y\r\n\r\n'.encode()
    table = dataset.parse_csv(raw, "r.csv")
    assert table.header == ["", "a", "y"] and table.columns == [["1", "2"], ["0.5", ""], ["x", "y"]]
    # old Mac line ends, no final line end
    assert dataset.parse_csv(b"a,y\r1,x\r2,y", "m.csv").columns == [["1", "2"], ["x", "y"]]
    # a ragged row is named by its record number, blank lines not counted, as before
    with pytest.raises(dataset.DataError, match=r"^d.csv: line 3 has 1 fields, the header has 2$"):
        dataset.parse_csv(b"a,y\n1,x\n\n2\n", "d.csv")
    with pytest.raises(dataset.DataError, match=r"^d.csv: not UTF-8 text"):
        dataset.parse_csv(b"a,y\n\xff,x\n", "d.csv")


def test_an_unclosed_quote_that_swallows_the_file_is_a_data_error():
    raw = b'a,y\n1,"x\n' + b"2,y\n" * 40_000  # past the csv module's field limit
    with pytest.raises(dataset.DataError, match=r"^d.csv: not readable as CSV at line \d+ \(field larger"):
        dataset.parse_csv(raw, "d.csv")


def test_rows_csv_reads_back_as_written_and_writes_ordinary_rows_as_csv_writer_does():
    import csv
    import io

    odd = [["lone\rcr", "1"], ["a\r\nb", "0"], ["gr\neen", "1"], ["bl\u2028ue", "0"], ['say "hi", twice', "1"]]
    table = dataset.parse_csv(dataset.rows_csv(["c", "y"], odd), "d.csv")
    assert [list(r) for r in zip(*table.columns)] == odd
    ordinary = [["1.5", "red", "yes"], ["", "a,b", "no"], ['"q"', "gr\neen", "no"]]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([["a", "c", "y"], *ordinary])
    assert dataset.rows_csv(["a", "c", "y"], ordinary) == out.getvalue().encode()
