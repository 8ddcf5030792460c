"""`mlops serve`: a model directory served on loopback, its interactive docs readable; bad input named, exit 2."""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from demo.local_server import free_port
from mlops import serve
from tests.inference.conftest import breast_cancer_dir  # noqa: F401  (the demo model, trained once)
from tests.inference.serving_helpers import copy_artifact


def mlops_serve(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mlops", "serve", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture
def served(breast_cancer_dir: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:  # noqa: F811
    port = free_port()
    proc = mlops_serve("--model-dir", str(breast_cancer_dir), "--port", str(port), cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_serves_the_model_and_its_docs_on_loopback(served) -> None:
    url, proc = served
    health = httpx.get(f"{url}/health").json()
    assert health["model_loaded"] is True and health["model_version"] == "7"
    doc = httpx.get(f"{url}/openapi.json").json()
    row = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]["features"]
    assert "mean_radius" in row["properties"] and doc["info"]["version"] == "7"
    page = httpx.get(f"{url}/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    proc.terminate()
    out, _ = proc.communicate(timeout=10)
    assert f"interactive docs at {url}/docs" in out and "breast-cancer version 7" in out


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing", "--model-dir {dir}: not a directory"),
    (lambda tmp: tmp, "--model-dir {dir}: not a model artifact the API can serve: manifest.json is missing"),
])
def test_a_bad_model_dir_is_named(tmp_path, capsys, make, message) -> None:
    model_dir = make(tmp_path)
    assert serve.main(["--model-dir", str(model_dir)], prog="mlops serve") == 2
    assert f"mlops serve: {message.format(dir=model_dir)}" in capsys.readouterr().err


@pytest.mark.slow
def test_a_model_the_runtime_refuses_is_named_before_listening(breast_cancer_dir, tmp_path) -> None:  # noqa: F811
    old = copy_artifact(breast_cancer_dir, tmp_path / "old", drop_onnx=True, library_versions={"scikit-learn": "0.24.2"})
    proc = mlops_serve("--model-dir", str(old), "--port", str(free_port()), cwd=tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert f"mlops serve: cannot serve {old}:" in err and "scikit-learn 0.24.2 (trained)" in err


def test_without_uvicorn_it_says_how_to_install_it(monkeypatch, breast_cancer_dir, capsys) -> None:  # noqa: F811
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn raises ImportError
    assert serve.main(["--model-dir", str(breast_cancer_dir)]) == 2
    assert "pip install -e ." in capsys.readouterr().err


@pytest.mark.parametrize("port", ["0", "70000", "http"])
def test_a_bad_port_is_a_usage_error(port, capsys) -> None:
    with pytest.raises(SystemExit) as done:
        serve.main(["--model-dir", ".", "--port", port])
    assert done.value.code == 2 and "expected a port number from 1 to 65535" in capsys.readouterr().err
