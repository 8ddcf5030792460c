"""Property-based requests generated from the API's own OpenAPI document, sent to uvicorn on loopback.

Schema-valid bodies must be answered 200 and schema-breaking ones 400/413/422; no answer is a 5xx
and every answer matches the documented status, content type and body schema. Derandomized and
bounded (MAX_EXAMPLES per operation and mode); the cases run are printed. Two models: the demo model
(30 numeric features) and a mixed one (a categorical feature, a numeric one with missing values).
tests/inference/test_api_models.py fuzzes the ASGI app in-process, 25 positive examples per operation.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from demo.local_server import prediction_api
from tests.inference.serving_helpers import api_event, invoke, load_app, repeats_an_id
from tests.training.training_helpers import binary_rows, write_csv
from training.train import TrainConfig, train

MAX_EXAMPLES = 100
MAX_BATCH = 8  # small batches keep generated bodies small; the 413 path is still reached
REJECTIONS = ["400", "413", "422"]  # the documented answers to a body that breaks the schema
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def mixed_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Binary, with a categorical feature and a numeric one with gaps (training_helpers' data)."""
    root = tmp_path_factory.mktemp("fuzz-mixed")
    csv = write_csv(root / "data.csv", *binary_rows())
    return train(csv, root / "model", TrainConfig(target="label", model_name="tiny-binary", categorical=["color"])).model_dir


@pytest.fixture(scope="module", params=["breast-cancer", "mixed"])
def served(request, tmp_path_factory):
    model_dir = request.getfixturevalue("breast_cancer_dir" if request.param == "breast-cancer" else "mixed_model_dir")
    out = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    env = {"MODEL_DIR": str(model_dir), "MAX_BATCH": str(MAX_BATCH), "MODEL_WORK_DIR": str(out)}
    with prediction_api(env, out / "uvicorn.log") as url:
        yield request.param, url


def fuzz_operation(operation, mode: GenerationMode, session: requests.Session) -> Counter:
    """Run the bounded property test of one operation in one mode; the statuses answered, per case."""
    statuses: Counter = Counter()
    checks = CHECKS + [negative_data_rejection if mode is GenerationMode.NEGATIVE else positive_data_acceptance]

    cases = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.POSITIVE:
        cases = cases.filter(lambda case: not repeats_an_id(case))

    @given(case=cases)
    @settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call(session=session)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=checks)

    check()
    return statuses


@pytest.mark.slow
def test_generated_requests_get_documented_answers_and_no_5xx(served):
    name, url = served
    config = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}}})
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {(op.method, op.path) for op in operations} == {
        ("get", "/health"), ("get", "/model-info"), ("post", "/predict"), ("post", "/predict/batch"), ("post", "/feedback")}
    ran = {}
    with requests.Session() as session:
        # /feedback needs a labels stream to answer 202 (none here): tests/inference/test_api_models.py fuzzes it.
        for op in [op for op in operations if op.path != "/feedback"]:
            # An operation without inputs has no schema to break: positive only.
            modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if len(op.body) else [])
            for mode in modes:
                ran[f"{op.method.upper()} {op.path} {mode.value}"] = fuzz_operation(op, mode, session)
    total = sum(sum(statuses.values()) for statuses in ran.values())
    print(f"\nfuzz {name}: {total} cases")
    for key, statuses in ran.items():
        print(f"  {key}: {sum(statuses.values())} cases, statuses {dict(sorted(statuses.items()))}")
    for path in ("/predict", "/predict/batch"):
        assert sum(ran[f"POST {path} positive"].values()) >= MAX_EXAMPLES
        assert set(ran[f"POST {path} positive"]) == {200}
        assert sum(ran[f"POST {path} negative"].values()) >= MAX_EXAMPLES
        assert set(ran[f"POST {path} negative"]) <= {int(code) for code in REJECTIONS}


@pytest.mark.parametrize("path, key", [("/predict", "features"), ("/predict/batch", "instances")])
def test_deeply_nested_json_is_a_400_not_a_500(breast_cancer_dir, monkeypatch, lambda_context, path, key):
    """Found by hand, not by the generator (it never nests this deep); sent through the Lambda handler."""
    depth = 100_000  # far past the recursion limit wherever the parser is called from: msgspec and json give up
    served = load_app(monkeypatch, MODEL_DIR=str(breast_cancer_dir))
    status, body = invoke(served, api_event("v2", "POST", path, raw=f'{{"{key}": {"[" * depth}{"]" * depth}}}'),
                          lambda_context)
    assert status == 400, body
    (issue,) = body["detail"]
    assert issue["loc"] == ["body"] and issue["type"] == "json_invalid"
