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
