"""The drift command line on CSV files: exit codes, report fields, the HTML page."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from drift_check.drift import EXIT_BAD_INPUT, EXIT_DRIFT, EXIT_OK, main
from tests.drift_check.drift_helpers import make_columns

SCRIPT = Path(__file__).resolve().parents[2] / "lambda" / "drift_check" / "drift.py"


def write_csv(path: Path, columns: dict[str, np.ndarray], *, drop: str | None = None) -> Path:
    names = [n for n in columns if n != drop]
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        writer.writerows(zip(*(columns[n] for n in names)))
    return path


def with_label(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return columns | {"label": np.where(columns["x"] > 0, "yes", "no")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("ref") / "ref.csv", with_label(make_columns(np.random.default_rng(0), 4000)))


def run_cli(tmp_path: Path, reference: Path, current: Path, *extra: str) -> tuple[int, dict]:
    out = tmp_path / "report.json"
    code = main(["--reference", str(reference), "--current", str(current), "--output", str(out),
                 "--target", "label", "--categorical", "color", *extra])
    return code, json.loads(out.read_text()) if out.exists() else {}


def test_no_drift_exits_0_with_the_report_fields(tmp_path, reference, capsys):
    current = write_csv(tmp_path / "cur.csv", with_label(make_columns(np.random.default_rng(1), 1500)))
    code, report = run_cli(tmp_path, reference, current)
    assert code == EXIT_OK
    assert report["status"] == "ok" and report["dataset_drift"] is False and report["drifted_features"] == []
    assert set(report["features"]) == {"x", "n", "color"}  # the label is not a feature
    assert all(report["features"][n]["drift"] is False for n in report["features"])
    assert report["features"]["x"]["test"] == "ks" and report["features"]["color"]["test"] == "chi2"
    assert report["prediction"]["type"] == "categorical"  # the label compared like a prediction
    assert "status: ok" in capsys.readouterr().out


def test_drift_exits_1_and_writes_html(tmp_path, reference, capsys):
    current = write_csv(tmp_path / "cur.csv", with_label(make_columns(np.random.default_rng(2), 1500, shift=1.0, blue=0.5)))
    html = tmp_path / "report.html"
    code, report = run_cli(tmp_path, reference, current, "--html", str(html))
    assert code == EXIT_DRIFT
    assert report["status"] == "drift" and report["dataset_drift"] is True
    assert sorted(report["drifted_features"]) == ["color", "x"]
    page = html.read_text()
    assert page.startswith("<!doctype html>") and page.count("<svg") == 4  # three features and the label
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # self-contained
    out = capsys.readouterr().out
    assert "drift critical x: PSI" in out and "drift critical color: share change" in out


def test_small_current_file_is_insufficient_data(tmp_path, reference):
    current = write_csv(tmp_path / "cur.csv", with_label(make_columns(np.random.default_rng(3), 50, shift=3.0)))
    code, report = run_cli(tmp_path, reference, current)
    assert code == EXIT_OK and report["status"] == "insufficient_data" and report["dataset_drift"] is False


def test_missing_column_and_bad_values_are_data_quality(tmp_path, reference):
    columns = with_label(make_columns(np.random.default_rng(4), 1500))
    columns["x"] = columns["x"].astype(object)
    columns["x"][:30] = "oops"
    current = write_csv(tmp_path / "cur.csv", columns, drop="n")
    code, report = run_cli(tmp_path, reference, current)
    assert code == EXIT_DRIFT  # a whole column missing fails data quality
    assert report["quality"]["missing_columns"] == ["n"]
    assert report["rows_rejected"] == 30 and report["reject_reasons"] == {"wrong_type": 30}
    assert report["features"]["x"]["quality"]["wrong_type_share"] == pytest.approx(30 / 1500)


@pytest.mark.parametrize("problem", ["missing file", "empty file", "unknown categorical", "ragged row"])
def test_bad_input_exits_2_with_a_message(tmp_path, reference, capsys, problem):
    current = write_csv(tmp_path / "cur.csv", with_label(make_columns(np.random.default_rng(5), 600)))
    extra: list[str] = []
    if problem == "missing file":
        current = tmp_path / "nope.csv"
    elif problem == "empty file":
        current.write_text("")
    elif problem == "unknown categorical":
        extra = ["--categorical", "colour"]
    else:
        current.write_text(current.read_text() + "1,2\n")
    code, _ = run_cli(tmp_path, reference, current, *extra)
    assert code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("drift: ") and ("colour" in err if problem == "unknown categorical" else True)


def test_runs_by_path_from_another_directory(tmp_path, reference):
    current = write_csv(tmp_path / "cur.csv", with_label(make_columns(np.random.default_rng(6), 800)))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--reference", str(reference), "--current", str(current),
         "--output", str(tmp_path / "r.json"), "--target", "label", "--categorical", "color"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == EXIT_OK, done.stderr
    assert json.loads((tmp_path / "r.json").read_text())["rows_checked"] == 800
