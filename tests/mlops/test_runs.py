"""`mlops runs`: tables, the HTML page, errors, and the export to a fake MLflow tracking server on loopback."""
from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from contracts.run_record import DataRef, Gate, Registration, RunRecord
from mlops import cli, mlflow_export, runs, runs_view
from mlops.run_store import RunStoreError, reports_bucket

MODEL = "breast-cancer"


def record(run_id: str, value: float, *, status: str = "rejected", production: float | None = 0.97,
           version: int | None = None, started: str = "2026-11-30T10:00:00Z", **extra) -> RunRecord:
    return RunRecord(
        model_name=MODEL, run_id=run_id, status=status, started_at=started, finished_at=started.replace("T10:00", "T10:05"),
        task="binary", algorithm="linear", hyperparameters={"target": "diagnosis", "params": {"C": value * 10}},
        data=DataRef(uri=f"s3://data/datasets/{MODEL}/train.csv", sha256="ab" * 32, rows={"train": 455, "test": 114}),
        primary_metric="roc_auc", metrics={"roc_auc": value, "accuracy": value - 0.02},
        gate=Gate(passed=status != "rejected", reason=f"candidate roc_auc {value}", threshold=0.96, tolerance=0.01,
                  floor=0.5, production_version=1 if production else None,
                  production_metrics={"roc_auc": production} if production else None, test_rows=114),
        model_version=f"v-{run_id}", artifact_uri=f"s3://artifacts/models/{MODEL}/{run_id}/job/output/model.tar.gz",
        artifact_sha256="cd" * 32, training_job_name=f"{MODEL}-{run_id}",
        registration=Registration(version=version, arn=f"arn:aws:sagemaker:us-east-1:1:model-package/{MODEL}/{version}",
                                  approval_status="Approved") if version else None,
        **extra)


@pytest.fixture
def records_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "copy" / "runs" / MODEL  # a copy of the reports bucket
    folder.mkdir(parents=True)
    for r in (record("run-a", 0.95, started="2026-11-29T10:00:00Z", production=None, status="registered", version=1),
              record("run-b", 0.96),
              record("run-c", 0.985, started="2026-12-01T10:00:00Z", status="registered", version=2,
                     search_candidates=[{"params": {"C": 1.0}, "score": 0.98}, {"params": {"C": 0.1}, "score": 0.97}])):
        (folder / f"{r.run_id}.json").write_text(r.to_json())
    return tmp_path / "copy"


def test_list_shows_every_run_newest_first(records_dir, capsys):
    assert cli.main(["runs", "list", "--dir", str(records_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["run-c", "run-b", "run-a"]
    assert lines[3].split() == ["run-b", MODEL, "2026-11-30T10:05:00Z", "rejected", "linear", "roc_auc", "0.96", "0.97", "–"]
    assert lines[2].split()[-1] == "2" and lines[4].split()[-2:] == ["–", "1"]  # no production for the first run


def test_list_limit_and_html_page(records_dir, tmp_path, capsys):
    page = tmp_path / "runs.html"
    assert runs.main(["list", "--dir", str(records_dir), "--limit", "2", "--html", str(page)]) == 0
    out = capsys.readouterr()
    assert [line.split()[0] for line in out.out.splitlines()[2:]] == ["run-c", "run-b"]
    assert f"wrote {page}" in out.err
    html = page.read_text()
    assert html.startswith("<!doctype html>") and "<script" not in html and html.count("<svg") == 1
    assert html.count('fill="#c62828"') == 1 and html.count('fill="#2e7d32"') == 1  # rejected, registered points
    assert "<title>run-b: roc_auc 0.96, rejected</title>" in html and "production 0.97" in html
    assert "run-a" not in html  # the limit applies to the page too


def test_show_prints_every_field(records_dir, capsys):
    assert runs.main(["show", "run-c", "--dir", str(records_dir)]) == 0
    out = capsys.readouterr().out
    for field in ("hyperparameters.params.C", "data.sha256", "gate.reason", "registration.version", "search_candidates",
                  "training_job_name", "artifact_sha256"):
        assert f"\n{field} " in out
    assert runs_view.text(0.123456789, digits=None) == "0.123456789" and runs_view.text(0.123456789) == "0.1235"
    assert runs.main(["show", "run-c", "--dir", str(records_dir), "--json"]) == 0
    assert RunRecord.model_validate_json(capsys.readouterr().out).search_candidates[0]["score"] == 0.98


def test_compare_puts_runs_side_by_side_and_marks_differences(records_dir, tmp_path, capsys):
    page = tmp_path / "compare.html"
    assert runs.main(["compare", "run-b", "run-c", "--dir", str(records_dir), "--html", str(page)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["field", "run-b", "run-c"]
    rows = {line[3:].split()[0]: line for line in lines[2:]}
    assert rows["metrics.roc_auc"].startswith("*") and rows["metrics.roc_auc"].split()[-2:] == ["0.96", "0.985"]
    assert rows["algorithm"].startswith(" ") and rows["hyperparameters.params.C"].startswith("*")
    html = page.read_text()
    assert "Side by side" in html and html.count('class="diff"') >= 2 * 3 and "run-a" not in html


def test_errors_are_clear(records_dir, tmp_path, capsys):
    assert runs.main(["show", "run-x", "--dir", str(records_dir)]) == 1
    assert "no run 'run-x' among 3 records (did you mean" in capsys.readouterr().err
    assert runs.main(["list", "--dir", str(records_dir), "--model-name", "other"]) == 1
    assert "no run records of model 'other'" in capsys.readouterr().err
    assert runs.main(["list", "--dir", str(tmp_path / "missing")]) == 1
    assert "no such folder" in capsys.readouterr().err
    broken = records_dir / "runs" / MODEL / "run-z.json"
    broken.write_text(json.dumps({"model_name": MODEL, "run_id": "run-z"}))
    assert runs.main(["list", "--dir", str(records_dir)]) == 1
    assert f"{broken} is not a readable run record (status: Field required)" in capsys.readouterr().err
    broken.write_text("{not json")
    assert runs.main(["list", "--dir", str(records_dir)]) == 1
    assert f"{broken} is not a readable run record" in capsys.readouterr().err
    for usage_error in (["compare", "--dir", str(records_dir)], ["list", "--dir", str(records_dir), "--limit", "0"],
                        ["list", "--dir", str(records_dir), "--bucket", "b"]):
        with pytest.raises(SystemExit) as usage:
            runs.main(usage_error)
        assert usage.value.code == 2


def test_the_same_run_id_in_two_models_needs_the_model_name(records_dir, capsys):
    other = record("run-b", 0.9).model_copy(update={"model_name": "wine"})
    (records_dir / "runs" / "wine").mkdir()
    (records_dir / "runs" / "wine" / "run-b.json").write_text(other.to_json())
    assert runs.main(["show", "run-b", "--dir", str(records_dir)]) == 1
    assert "run 'run-b' exists for several models (breast-cancer, wine): pass --model-name" in capsys.readouterr().err
    assert runs.main(["show", "run-b", "--dir", str(records_dir), "--model-name", "wine", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model_name"] == "wine"


class FakeCloudFormation:
    def __init__(self, outputs: dict[str, str] | None) -> None:
        self.outputs = outputs

    def describe_stacks(self, StackName: str) -> dict:
        from botocore.exceptions import ClientError

        if self.outputs is None:
            raise ClientError({"Error": {"Code": "ValidationError", "Message": f"Stack with id {StackName} does not exist"}},
                              "DescribeStacks")
        return {"Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]}]}


def test_the_reports_bucket_comes_from_the_storage_stack():
    assert reports_bucket("proj", FakeCloudFormation({"ReportsBucketName": "proj-reports"})) == "proj-reports"
    with pytest.raises(RunStoreError, match="stack proj-storage is not deployed .*; or read records with --bucket"):
        reports_bucket("proj", FakeCloudFormation(None))
    with pytest.raises(RunStoreError, match="stack proj-storage has no output ReportsBucketName"):
        reports_bucket("proj", FakeCloudFormation({}))


def test_no_credentials_is_a_clear_error(capsys):
    from botocore.exceptions import NoCredentialsError

    class NoCredentials:
        def describe_stacks(self, StackName: str) -> dict:
            raise NoCredentialsError()

    assert runs.main(["list", "--project-name", "proj"], clients=lambda name: NoCredentials()) == 1
    assert "no AWS credentials to read the records with" in capsys.readouterr().err


# ------------------------------------------------------------------ MLflow export


class FakeMlflow(BaseHTTPRequestHandler):
    """The tracking server's REST endpoints the export uses, in memory; every call is recorded."""

    state: dict

    def log_message(self, *args) -> None:
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, body: dict) -> tuple[int, dict]:
        s, path = self.state, urlsplit(self.path).path.removeprefix("/api/2.0/mlflow/")
        if path == "experiments/get-by-name":
            name = parse_qs(urlsplit(self.path).query)["experiment_name"][0]
            if name not in s["experiments"]:
                return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"No experiment '{name}'"}
            return 200, {"experiment": {"experiment_id": s["experiments"][name], "name": name}}
        if path == "experiments/create":
            s["experiments"][body["name"]] = str(len(s["experiments"]) + 1)
            return 200, {"experiment_id": s["experiments"][body["name"]]}
        if path == "runs/create":
            run_id = f"mlflow-{len(s['runs']) + 1}"
            s["runs"][run_id] = {"experiment_id": body["experiment_id"], "name": body["run_name"], "params": {},
                                 "metrics": {}, "tags": {t["key"]: t["value"] for t in body["tags"]}, "status": "RUNNING"}
            return 200, {"run": {"info": {"run_id": run_id}}}
        if path == "runs/log-batch":
            if s.get("fail_log_batch"):
                return 500, {"error_code": "INTERNAL_ERROR", "message": "database is locked"}
            run = s["runs"][body["run_id"]]
            assert len(body.get("params", [])) <= 100
            run["params"] |= {p["key"]: p["value"] for p in body.get("params", [])}
            run["metrics"] |= {m["key"]: m["value"] for m in body.get("metrics", [])}
            run["tags"] |= {t["key"]: t["value"] for t in body.get("tags", [])}
            return 200, {}
        if path == "runs/update":
            s["runs"][body["run_id"]]["status"] = body["status"]
            return 200, {}
        if path == "runs/search":
            assert body["filter"] == "tags.`mlops.run` LIKE '%'"
            found = [{"info": {"run_id": k}, "data": {"tags": [{"key": t, "value": v} for t, v in r["tags"].items()]}}
                     for k, r in s["runs"].items()
                     if r["experiment_id"] in body["experiment_ids"] and "mlops.run" in r["tags"]]
            return 200, {"runs": found}
        return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": path}

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        self.state["calls"].append((self.command, urlsplit(self.path).path, self.headers.get("Authorization")))
        self._reply(*self._handle(body))

    do_GET = do_POST = _serve


@pytest.fixture
def mlflow():
    state: dict = {"experiments": {}, "runs": {}, "calls": []}
    handler = type("Handler", (FakeMlflow,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def test_export_copies_every_record_once(records_dir, mlflow, capsys, monkeypatch):
    uri, state = mlflow
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "secret-token")
    assert runs.main(["export", "--dir", str(records_dir), "--mlflow", uri]) == 0
    assert json.loads(capsys.readouterr().out) == {"exported": [f"{MODEL}/run-a", f"{MODEL}/run-b", f"{MODEL}/run-c"],
                                                   "skipped": []}
    assert state["experiments"] == {MODEL: "1"}
    by_name = {r["name"]: r for r in state["runs"].values()}
    run_b, run_c = by_name["run-b"], by_name["run-c"]
    assert run_b["status"] == "FINISHED" and run_b["tags"]["mlops.status"] == "rejected"
    assert run_b["metrics"] == {"roc_auc": 0.96, "accuracy": pytest.approx(0.94), "production_roc_auc": 0.97,
                                "gate_threshold": 0.96}
    assert run_b["params"]["params.C"] == "9.6" and run_b["params"]["data_sha256"] == "ab" * 32
    assert run_b["params"]["algorithm"] == "linear" and run_b["params"]["rows_train"] == "455"
    assert run_c["tags"]["mlops.registry_version"] == "2" and run_c["params"]["search_candidates"] == "2"
    assert run_c["tags"]["mlops.run"] == f"{MODEL}/run-c" and "mlops.registry_version" not in run_b["tags"]
    assert {auth for _, _, auth in state["calls"]} == {"Bearer secret-token"}

    calls = len(state["calls"])
    assert runs.main(["export", "--dir", str(records_dir), "--mlflow", uri]) == 0  # again: nothing new
    assert json.loads(capsys.readouterr().out)["skipped"] == [f"{MODEL}/run-a", f"{MODEL}/run-b", f"{MODEL}/run-c"]
    assert len(state["runs"]) == 3
    assert [path for _, path, _ in state["calls"][calls:]] == ["/api/2.0/mlflow/experiments/get-by-name",
                                                                "/api/2.0/mlflow/runs/search"]


def test_export_to_a_named_experiment_with_basic_auth(records_dir, mlflow, capsys, monkeypatch):
    uri, state = mlflow
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ana")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert runs.main(["export", "--dir", str(records_dir), "--experiment", "team-runs"]) == 0
    assert list(state["experiments"]) == ["team-runs"] and len(state["runs"]) == 3
    assert state["calls"][0][2] == "Basic " + base64.b64encode(b"ana:pw").decode()


def test_a_failed_export_is_retried_next_time(records_dir, mlflow, capsys):
    uri, state = mlflow
    state["fail_log_batch"] = True
    assert runs.main(["export", "--dir", str(records_dir), "--mlflow", uri]) == 1
    assert "MLflow runs/log-batch: HTTP 500: database is locked" in capsys.readouterr().err
    assert [r["status"] for r in state["runs"].values()] == ["KILLED"]  # not taken for a result, not tagged
    state["fail_log_batch"] = False
    assert runs.main(["export", "--dir", str(records_dir), "--mlflow", uri]) == 0
    assert len(json.loads(capsys.readouterr().out)["exported"]) == 3


def test_export_errors(records_dir, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert runs.main(["export", "--dir", str(records_dir)]) == 1
    assert "export needs --mlflow URI" in capsys.readouterr().err
    assert runs.main(["export", "--dir", str(records_dir), "--mlflow", "ftp://x"]) == 1
    assert "give the tracking server's http(s):// URL or its SageMaker ARN" in capsys.readouterr().err
    assert runs.main(["export", "--dir", str(records_dir), "--mlflow", "http://127.0.0.1:9"]) == 1  # nothing listens
    assert "cannot reach the MLflow tracking server at http://127.0.0.1:9" in capsys.readouterr().err
    assert runs.main(["export", "--dir", str(records_dir), "--mlflow", "arn:aws:s3:::bucket"]) == 1
    assert "is not a SageMaker MLflow tracking server ARN" in capsys.readouterr().err


def test_sagemaker_tracking_server_requests_are_sigv4_signed(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/team"
    client = mlflow_export.Client.from_uri(arn)
    assert client.base_url == "https://eu-west-1.experiments.sagemaker.aws"
    headers = client.sign("POST", client.base_url + "/api/2.0/mlflow/runs/create", b"{}", dict(client.headers))
    assert headers["x-mlflow-sm-tracking-server-arn"] == arn
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/sagemaker-mlflow/aws4_request" in headers["Authorization"]


def test_a_failed_run_is_listed_without_a_metric(records_dir, tmp_path, capsys):
    failed = RunRecord(model_name=MODEL, run_id="run-0", status="failed", finished_at="2026-11-28T09:00:00Z",
                       data=DataRef(uri="s3://data/bad.csv", rows={"total": 12}), error="too few rows: 12 < 50")
    (records_dir / "runs" / MODEL / "run-0.json").write_text(failed.to_json())
    page = tmp_path / "runs.html"
    assert runs.main(["list", "--dir", str(records_dir), "--html", str(page)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split() == ["run-0", MODEL, "2026-11-28T09:00:00Z", "failed",
                                                                 "–", "–", "–", "–", "–"]
    html = page.read_text()
    assert "too few rows: 12 &lt; 50" in html and html.count("<svg") == 1  # in the table, not on the chart
