"""The batch trigger's pattern, matched by moto's EventBridge implementation against a real S3 event."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from moto.events.models import EventPattern

from contracts.events import OBJECT_KEY_PATH, batch_job_input, batch_upload_pattern

EVENT = json.loads((Path(__file__).resolve().parents[1] / "events" / "s3_object_created_batch.json").read_text())


def matches(key: str, bucket: str = "data-bucket") -> bool:
    event = copy.deepcopy(EVENT)
    event["detail"]["object"]["key"] = key
    event["detail"]["bucket"]["name"] = bucket
    return EventPattern.load(json.dumps(batch_upload_pattern("data-bucket", "breast-cancer"))).matches_event(event)


@pytest.mark.parametrize("key", ["batch/breast-cancer/input/nightly/customers.csv",
                                 "batch/breast-cancer/input/nightly/sub/part-1.jsonl.gz",
                                 "batch/breast-cancer/input/j/x.ndjson"])
def test_data_files_in_a_job_folder_start_a_job(key: str) -> None:
    assert matches(key)


@pytest.mark.parametrize("key", ["batch/breast-cancer/input/nightly/_SUCCESS",
                                 "batch/breast-cancer/input/customers.csv",  # no job folder
                                 "batch/other-model/input/j/customers.csv",
                                 "batch/breast-cancer/output/j/customers.csv/part-00000.jsonl",
                                 "datasets/breast-cancer/train.csv",
                                 "batch/breast-cancer/input/j/notes.txt"])
def test_other_objects_do_not(key: str) -> None:
    assert not matches(key)


def test_another_bucket_does_not_and_the_input_names_the_key() -> None:
    assert not matches("batch/breast-cancer/input/nightly/customers.csv", bucket="other")
    assert OBJECT_KEY_PATH == "$.detail.object.key"
    assert batch_job_input(EVENT["detail"]["object"]["key"]) == {"object_key": EVENT["detail"]["object"]["key"]}
