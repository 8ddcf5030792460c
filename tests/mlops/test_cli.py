"""The `mlops` command: every tool a subcommand, each with an example; usable from any folder once installed."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from demo.data import TARGET, write_breast_cancer_csv
from mlops import cli

REPO = Path(__file__).resolve().parents[2]
MLOPS = Path(sys.executable).parent / "mlops"  # the console script pip installed beside this interpreter


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("validate", "train", "evaluate", "registry", "promote", "rollback", "status", "deploy", "drift", "demo"):
        assert f"\n  {name} " in out


@pytest.mark.parametrize("name", [n for n in cli.COMMANDS if n != "demo"])
def test_each_command_has_help_with_an_example(name, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([name, "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert out.startswith(f"usage: mlops {name}") and "example" in out and f"mlops {name} " in out.split("example")[1]


def test_demo_help_has_an_example(tmp_path):
    done = run(str(MLOPS), "demo", "--help", cwd=tmp_path)  # own process: importing the demo sets its log levels
    assert done.returncode == 0 and "usage: mlops demo" in done.stdout and "example" in done.stdout


def test_no_command_or_an_unknown_one_is_a_usage_error(capsys):
    assert cli.main([]) == 2
    assert cli.main(["trian"]) == 2
    assert "unknown command 'trian' (did you mean 'train'?)" in capsys.readouterr().err


def test_version():
    done = subprocess.run([sys.executable, "-m", "mlops", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("mlops ") and "unknown" not in done.stdout


@pytest.mark.slow
def test_train_then_drift_from_another_folder(tmp_path):
    """The README's commands, run where no repository file is: the installed packages are all they need."""
    data = write_breast_cancer_csv(tmp_path / "data.csv")
    trained = run(str(MLOPS), "train", "--train", data.name, "--model-dir", "out", "--target", TARGET, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["task"] == "binary" and (tmp_path / "out" / "model.joblib").exists()
    drift = run(str(MLOPS), "drift", "--reference", data.name, "--current", data.name, "--target", TARGET,
                "--output", "drift.json", "--html", "drift.html", cwd=tmp_path)
    assert drift.returncode == 0, drift.stderr
    assert json.loads((tmp_path / "drift.json").read_text())["dataset_drift"] is False
    assert (tmp_path / "drift.html").read_text().startswith("<!doctype html>")
    bad = run(str(MLOPS), "train", "--train", "missing.csv", "--model-dir", "out", "--target", TARGET, cwd=tmp_path)
    assert bad.returncode == 1 and "missing.csv" in bad.stderr


@pytest.mark.slow
def test_train_py_still_runs_as_a_script(tmp_path):
    """SageMaker script mode: `python training/train.py …`, by path, from any folder."""
    data = write_breast_cancer_csv(tmp_path / "data.csv")
    done = run(sys.executable, str(REPO / "training" / "train.py"), "--train", str(data), "--model-dir",
               str(tmp_path / "out"), "--target", TARGET, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["metrics"]["roc_auc"] > 0.9


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path):
    """`mlops --help | head -1`: the pipe closes before the output ends."""
    proc = subprocess.Popen([str(MLOPS), "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                            bufsize=0)
    proc.stdout.close()  # the reader is gone before the command writes
    _, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err and proc.returncode == 1
