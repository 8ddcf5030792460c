"""The promotion history read under least privilege: a role that may list only the history's own key must
still tell "nothing promoted yet" from an unreadable history (S3 answers its GET of a missing key with 403)."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from contracts.promotions import load_history

BUCKET, KEY = "artifacts", "models/m/promotions.json"


@pytest.fixture
def s3():
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        yield client, stub


def test_a_missing_history_is_empty_without_a_get_that_s3_would_refuse(s3):
    client, stub = s3
    stub.add_response("list_objects_v2", {"KeyCount": 0}, {"Bucket": BUCKET, "Prefix": KEY, "MaxKeys": 1})
    history = load_history(client, BUCKET, KEY)  # a get_object here would be an unexpected call: the stub fails it
    assert history.entries == [] and history.etag is None and history.live() == []
    stub.assert_no_pending_responses()


def test_a_key_that_only_starts_with_the_history_name_is_not_the_history(s3):
    client, stub = s3
    stub.add_response("list_objects_v2", {"Contents": [{"Key": KEY + ".bak"}], "KeyCount": 1},
                      {"Bucket": BUCKET, "Prefix": KEY, "MaxKeys": 1})
    assert load_history(client, BUCKET, KEY).entries == []


def test_an_existing_history_is_read_with_its_etag(s3):
    client, stub = s3
    entries = [{"action": "promote", "version": 3, "model_package_arn": "arn", "model_data_url": "s3://a/b",
                "sha256": "ab" * 32, "at": "2026-12-01T00:00:00Z"}]
    stub.add_response("list_objects_v2", {"Contents": [{"Key": KEY}], "KeyCount": 1},
                      {"Bucket": BUCKET, "Prefix": KEY, "MaxKeys": 1})
    stub.add_response("get_object", {"Body": _body(json.dumps({"entries": entries}).encode()), "ETag": '"e1"'},
                      {"Bucket": BUCKET, "Key": KEY})
    history = load_history(client, BUCKET, KEY)
    assert history.live() == [3] and history.etag == '"e1"'


def test_a_history_that_cannot_be_read_is_an_error_not_an_empty_history(s3):
    client, stub = s3
    stub.add_response("list_objects_v2", {"Contents": [{"Key": KEY}], "KeyCount": 1},
                      {"Bucket": BUCKET, "Prefix": KEY, "MaxKeys": 1})
    stub.add_client_error("get_object", "AccessDenied", http_status_code=403)
    with pytest.raises(ClientError):
        load_history(client, BUCKET, KEY)


def _body(data: bytes):
    from io import BytesIO

    from botocore.response import StreamingBody

    return StreamingBody(BytesIO(data), len(data))
