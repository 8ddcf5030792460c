"""SigV4 as botocore computes it, for the JSON-protocol POST capture sends (the S3 GET: test_s3_get.py)."""
from __future__ import annotations

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from inference import sigv4

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize("token", ["", "FQoGZXIvYXdzEXAMPLETOKEN//+="])
@pytest.mark.parametrize("host", ["firehose.eu-west-1.amazonaws.com", "127.0.0.1:5000"])
def test_post_signature_is_botocores(host, token):
    body = b'{"DeliveryStreamName":"s","Records":[{"Data":"eyJhIjoxfQo="}]}'
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Firehose_20150804.PutRecordBatch"}
    request = AWSRequest(method="POST", url=f"https://{host}/", data=body, headers=dict(headers))
    SigV4Auth(BotoCredentials("AKIDEXAMPLE", SECRET, token or None), "firehose", "eu-west-1").add_auth(request)
    ours = sigv4.sign("POST", host, "/", service="firehose", region="eu-west-1",
                      credentials=sigv4.Credentials("AKIDEXAMPLE", SECRET, token),
                      amz_date=request.headers["X-Amz-Date"], headers=headers, body=body)
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours.get("x-amz-security-token") == request.headers.get("X-Amz-Security-Token")


def test_settings_left_to_botocore():
    env = {"AWS_DEFAULT_REGION": "eu-west-1"}
    assert sigv4.plain_region(env) == "eu-west-1"
    for extra in ({"AWS_USE_FIPS_ENDPOINT": "true"}, {"AWS_USE_DUALSTACK_ENDPOINT": "1"}, {"HTTPS_PROXY": "http://p:3128"}):
        assert sigv4.plain_region(env | extra) is None
    assert sigv4.plain_region({"AWS_DEFAULT_REGION": "moon-1"}) is None


def test_configured_endpoints_service_first():
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_FIREHOSE": "http://127.0.0.1:2"}
    assert sigv4.configured_endpoint(env, "firehose").netloc == "127.0.0.1:2"
    assert sigv4.configured_endpoint(env, "s3").netloc == "127.0.0.1:1"
    assert sigv4.configured_endpoint(env | {"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, "s3") is None
    assert sigv4.configured_endpoint({}, "s3") is None
