"""`mlops demo --data … --target …` on a CSV the project does not ship: a regression with a categorical column and
missing values, generated here, through the whole loop; and bad input refused before anything starts."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from demo.loop import BATCH_ROWS, SEGMENT_ROWS

MLOPS = Path(sys.executable).parent / "mlops"  # the console script pip installed beside this interpreter
MALFORMED_PER_SEGMENT = 9  # demo.traffic.malformed_requests


def write_house_prices(path: Path, rows: int = 400) -> Path:
    """Price from size, age and district; age missing in one row of ten."""
    rng = np.random.default_rng(11)
    lines = ["size_m2,age_years,rooms,district,price"]
    for i in range(rows):
        size, age, rooms = rng.normal(90, 25), rng.uniform(0, 80), int(rng.integers(1, 6))
        district = ["north", "south", "harbour"][i % 3]
        price = 3000 * size - 800 * age + 5000 * rooms + {"north": 0, "south": 20000, "harbour": 60000}[district]
        lines.append(f"{size:.1f},{'' if i % 10 == 0 else f'{age:.0f}'},{rooms},{district},{price + rng.normal(0, 8000):.0f}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def loop(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("own-data")
    csv = write_house_prices(work / "House Prices.csv")
    proc = subprocess.run([str(MLOPS), "demo", "--workdir", "run", "--data", str(csv), "--target", "price",
                           "--categorical", "district", "--algorithm", "hist_gradient_boosting",
                           "--search-candidates", "2", "--json", "loop.json"],
                          capture_output=True, text=True, timeout=600, cwd=work)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((work / "loop.json").read_text())


@pytest.mark.slow  # the whole loop: about 30 s on two cores
def test_own_csv_runs_the_whole_loop(loop):
    validation = loop["first_run"]["validation"]
    assert (validation["rows"], validation["task"]) == (400, "regression")
    assert loop["data"]["model_name"] == "house-prices"  # from the file name
    assert loop["first_run"]["evaluation"]["candidate"]["r2"] > 0.8
    trained = validation["hyperparameters"]  # the execution input's model choice reaches the training job
    assert (trained["algorithm"], trained["search"]) == ("hist_gradient_boosting", "2")
    assert loop["live"]["sha256"] == loop["first_run"]["evaluation"]["candidate_sha256"]
    assert loop["health"]["model_version"] == str(loop["live"]["version"])
    for segment in ("normal_traffic", "drifted_traffic"):  # categorical values and nulls are served
        statuses = {int(k): v for k, v in loop[segment]["statuses"].items()}
        assert loop[segment]["rows_predicted"] == SEGMENT_ROWS and not [s for s in statuses if s >= 500]
        assert sum(v for s, v in statuses.items() if 400 <= s < 500) == MALFORMED_PER_SEGMENT


@pytest.mark.slow
def test_own_csv_drift_is_found_on_the_shifted_features_and_retrains(loop):
    shifted = [shift["feature"] for shift in loop["drift"]]
    assert shifted == ["size_m2", "age_years", "rooms"]  # the first three numeric features
    assert (loop["first_check"]["status"], loop["second_check"]["status"]) == ("ok", "drift")
    assert set(shifted) <= set(loop["second_check"]["drifted_features"])
    assert loop["alarm_states"] == ["OK", "ALARM"]
    assert loop["retraining_input"]["target"] == "price" and "r2" in loop["retraining"]["evaluation"]["production"]


@pytest.mark.slow
def test_own_csv_batch_file_is_scored_with_refused_rows_set_aside(loop):
    summary = loop["batch"]["summary"]
    assert loop["batch"]["object_key"] == "batch/house-prices/input/nightly/customers.csv"
    assert summary["rows"] == BATCH_ROWS and summary["errors"] == loop["batch_refused_on_purpose"] == 3
    assert summary["scored"] == BATCH_ROWS - 3


@pytest.mark.parametrize("args, message", [
    (["--target", "price"], "pass --data too"),
    (["--data", "missing.csv", "--target", "price"], "missing.csv: no such file"),
    (["--data", "prices.csv"], "name its label column with --target"),
    (["--data", "prices.csv", "--target", "cost"], "target column 'cost' is not in the header"),
    (["--data", "prices.csv", "--target", "price", "--categorical", "town"], "categorical column 'town' is not in the header"),
    (["--data", "few.csv", "--target", "price"], "the data has 20 row(s); training needs at least 50"),
    (["--data", "prices.csv", "--target", "price", "--model-name", "My_Model"], "model name 'My_Model'"),
    (["--data", "r.csv", "--target", "price"], "column 1 has an empty name (row names, as R's write.csv adds"),
    (["--data", "prices.csv", "--target", "price", "--search-candidates", "-1"], "--search-candidates must be >= 0"),
])
def test_bad_input_is_refused_before_anything_starts(tmp_path, monkeypatch, capsys, args, message):
    from demo.run import main  # returns before the embedded AWS starts, so in this process

    write_house_prices(tmp_path / "prices.csv", rows=100)
    write_house_prices(tmp_path / "few.csv", rows=20)
    (tmp_path / "r.csv").write_text('"","size","price"\n' + "".join(f'"{i}",{i},{2 * i}\n' for i in range(60)))
    monkeypatch.chdir(tmp_path)
    assert main(["--workdir", "run", *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing started


def test_data_inside_the_workdir_is_refused_not_deleted(tmp_path, monkeypatch, capsys):
    from demo.run import main

    (tmp_path / "run").mkdir()
    csv = write_house_prices(tmp_path / "run" / "prices.csv", rows=100)
    monkeypatch.chdir(tmp_path)
    assert main(["--workdir", "run", "--data", "run/prices.csv", "--target", "price"]) == 2
    assert "is inside --workdir" in capsys.readouterr().err
    assert csv.is_file()  # the workdir is emptied first: the user's file must survive
