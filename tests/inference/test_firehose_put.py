"""Capture's signed PutRecordBatch: where it goes, what Firehose makes of it, errors, and connections kept alive."""
from __future__ import annotations

import http.server
import json
import os
import urllib.request
from collections.abc import Iterator

import boto3
import pytest

from contracts import metric_names
from inference import capture, firehose_lines, firehose_put
from inference.firehose_put import Endpoint, PutFailed, SignedFirehose, endpoint_for
from inference.sigv4 import Credentials
from tests.inference.serving_helpers import StubHandler, loopback_server

ENV = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_DEFAULT_REGION": "eu-west-1"}


def test_endpoint_is_the_one_boto3_uses():
    assert endpoint_for(ENV) == Endpoint("https", "firehose.eu-west-1.amazonaws.com", "/", "eu-west-1")
    assert endpoint_for(ENV | {"AWS_DEFAULT_REGION": "cn-north-1"}).host == "firehose.cn-north-1.amazonaws.com.cn"
    assert endpoint_for(ENV | {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}) == Endpoint("http", "127.0.0.1:5000", "/", "eu-west-1")
    assert endpoint_for(ENV | {"AWS_USE_FIPS_ENDPOINT": "true"}) is None


def test_without_credentials_in_the_environment_botocore_does_it():
    assert firehose_put.signed_client({k: v for k, v in ENV.items() if k != "AWS_SECRET_ACCESS_KEY"}) is None
    assert isinstance(firehose_put.signed_client(ENV), SignedFirehose)


@pytest.fixture
def emulator() -> Iterator[tuple[str, object]]:
    """moto in server mode on loopback, with a delivery stream into a bucket."""
    from demo.emulator import embedded_aws

    with embedded_aws() as url:
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="capture")
        boto3.client("firehose").create_delivery_stream(
            DeliveryStreamName="stream", DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": "arn:aws:s3:::capture",
                "Prefix": "capture/m/", "CompressionFormat": "UNCOMPRESSED",
                "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60}})
        yield url, s3


def landed(s3) -> bytes:
    objects = s3.list_objects_v2(Bucket="capture").get("Contents", [])
    return b"".join(s3.get_object(Bucket="capture", Key=o["Key"])["Body"].read() for o in objects)


def test_records_land_in_the_stream_and_the_answer_is_botocores(emulator, monkeypatch):
    url, s3 = emulator
    client = firehose_put.signed_client(dict(os.environ))
    answers = [client.put_record_batch(DeliveryStreamName="stream", Records=[{"Data": b'{"a":1}\n'}, {"Data": b'{"b":2}\n'}])
               for _ in range(3)]  # the second and third reuse the connection
    assert all(a["FailedPutCount"] == 0 and len(a["RequestResponses"]) == 2 for a in answers)
    assert sorted(landed(s3).splitlines()) == [b'{"a":1}'] * 3 + [b'{"b":2}'] * 3


def test_moto_checking_signatures_accepts_ours_and_a_wrong_secret_is_named(emulator):
    url, _ = emulator
    iam = boto3.client("iam")
    iam.create_user(UserName="serving")
    iam.put_user_policy(UserName="serving", PolicyName="put", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "firehose:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="serving")["AccessKey"]
    endpoint = endpoint_for({"AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": url})

    def authentication(count: str) -> None:  # requests moto lets through unchecked from now on
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset-auth", data=count.encode(),
                                                      headers={"Content-Type": "text/plain"})).close()

    authentication("0")
    try:
        good = SignedFirehose(endpoint, Credentials(key["AccessKeyId"], key["SecretAccessKey"]))
        assert good.put_record_batch(DeliveryStreamName="stream", Records=[{"Data": b"x\n"}])["FailedPutCount"] == 0
        wrong = SignedFirehose(endpoint, Credentials(key["AccessKeyId"], "not-the-secret"))
        with pytest.raises(PutFailed, match="403"):
            wrong.put_record_batch(DeliveryStreamName="stream", Records=[{"Data": b"x\n"}])
    finally:
        authentication("inf")  # moto's default; the server shares its settings with this process


class Stub(StubHandler):
    """Answers each POST with the next (status, body) and closes the connection when told to."""

    protocol_version = "HTTP/1.1"  # keep-alive

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        status, body, close = self.server.answers.pop(0)
        self.server.connections.add(self.client_address)
        self.close_connection = close
        self.reply(status, {"Content-Length": str(len(body))} | ({"Connection": "close"} if close else {}), body)


@pytest.fixture
def stub() -> Iterator[http.server.HTTPServer]:
    with loopback_server(Stub, answers=[], connections=set()) as server:
        yield server


def stub_client(server) -> SignedFirehose:
    return SignedFirehose(Endpoint("http", f"127.0.0.1:{server.server_port}", "/", "eu-west-1"), Credentials("AKID", "s"))


OK = json.dumps({"FailedPutCount": 0, "RequestResponses": [{"RecordId": "r"}]}).encode()


def test_a_connection_is_kept_alive_and_replaced_when_the_server_closes_it(stub):
    stub.answers = [(200, OK, False), (200, OK, True), (200, OK, False)]
    client = stub_client(stub)
    for _ in range(3):
        assert client.put_record_batch(DeliveryStreamName="s", Records=[{"Data": b"x"}])["FailedPutCount"] == 0
    assert len(stub.connections) == 2  # one for the first two calls, a new one after the server closed it


def test_a_200_that_is_not_a_firehose_answer_is_a_failure(stub):
    stub.answers = [(200, b"<html>captive portal</html>", False)]
    with pytest.raises(PutFailed, match="200 without a PutRecordBatch answer"):
        stub_client(stub).put_record_batch(DeliveryStreamName="s", Records=[{"Data": b"x"}])


def test_the_ca_bundle_of_the_environment_is_used():
    assert firehose_put.signed_client(ENV | {"AWS_CA_BUNDLE": "/etc/ssl/custom.pem"}).ca_bundle == "/etc/ssl/custom.pem"


def test_an_error_answer_names_its_type(stub):
    error = json.dumps({"__type": "ResourceNotFoundException", "message": "Firehose s not found"}).encode()
    stub.answers = [(400, error, False)]
    with pytest.raises(PutFailed, match="400 ResourceNotFoundException: Firehose s not found"):
        stub_client(stub).put_record_batch(DeliveryStreamName="s", Records=[{"Data": b"x"}])


def test_the_sink_counts_what_the_signed_call_could_not_deliver(stub):
    stub.answers = [(500, b"{}", False)]
    sink = capture.CaptureSink("s", 1.0, client=stub_client(stub))
    capture.metrics.clear_metrics()
    sink.send([b'{"a":1}\n', b'{"a":2}\n'])
    assert capture.metrics.metric_set[metric_names.CAPTURE_DROPPED]["Value"] == [2.0]


def test_a_sink_made_from_the_environment_uses_the_signed_call(monkeypatch):
    # The folder's fixture sends capture through botocore, for moto in-process; here, the real choice.
    monkeypatch.setattr(firehose_lines, "signed_client", firehose_put.signed_client)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert isinstance(capture.CaptureSink("s", 1.0)._client, SignedFirehose)
    monkeypatch.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    assert not isinstance(capture.CaptureSink("s", 1.0)._client, SignedFirehose)
