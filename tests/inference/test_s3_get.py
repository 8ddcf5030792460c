"""The model download's signed S3 GET: botocore's signature, boto3's URL, and boto3 for anything unusual."""
from __future__ import annotations

import http.server
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from inference import s3_get
from inference.s3_get import Download, FetchError, Target, fetch, sign, target_for
from inference.sigv4 import Credentials
from tests.inference.serving_helpers import StubHandler, loopback_server

ENV = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
       "AWS_DEFAULT_REGION": "eu-west-1"}
KEY = "models/churn run+1/ü/model.tar.gz"  # characters the path must percent-encode


# ------------------------------------------------------------------ signature and URL


@pytest.mark.parametrize("token", ["", "FQoGZXIvYXdzEXAMPLETOKEN//+="])
@pytest.mark.parametrize("target", [
    Target("http", "127.0.0.1:5000", "/artifacts/models/churn%20run%2B1/%C3%BC/model.tar.gz", "us-east-1"),
    Target("https", "artifacts.s3.eu-west-1.amazonaws.com", "/models/model.tar.gz", "eu-west-1"),
])
def test_signature_is_botocores(target, token):
    """Same request, same credentials, same instant: the Authorization header botocore's S3 signer computes."""
    request = AWSRequest(method="GET", url=f"http://{target.host}{target.path}")  # http: botocore hashes the empty body too
    S3SigV4Auth(BotoCredentials("AKIDEXAMPLE", ENV["AWS_SECRET_ACCESS_KEY"], token or None), "s3", target.region).add_auth(request)
    ours = sign(target, Credentials("AKIDEXAMPLE", ENV["AWS_SECRET_ACCESS_KEY"], token), request.headers["X-Amz-Date"])
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-content-sha256"] == request.headers["X-Amz-Content-SHA256"]
    assert ours.get("x-amz-security-token") == request.headers.get("X-Amz-Security-Token")


class Sent(Exception):
    """Raised before boto3 sends a request, carrying its URL."""


def boto3_get_object_url(bucket: str, key: str) -> str:
    """The URL of the GetObject request boto3 would send (stopped before it leaves the process)."""
    client = boto3.client("s3")

    def stop(request, **kwargs):
        raise Sent(request.url)

    client.meta.events.register("before-send.s3.GetObject", stop)
    with pytest.raises(Sent) as sent:
        client.get_object(Bucket=bucket, Key=key)
    return str(sent.value)


@pytest.mark.parametrize("bucket, env", [
    ("artifacts", {}),  # virtual-hosted
    ("my.artifacts", {}),  # dots: path-style, as boto3 does for TLS
    ("artifacts", {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}),  # an emulator: path-style
    ("artifacts", {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "AWS_ENDPOINT_URL_S3": "http://localhost:4566/"}),
    ("artifacts", {"AWS_ENDPOINT_URL": "https://minio.example.com"}),
])
def test_url_is_the_one_boto3_uses(monkeypatch, bucket, env):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (ENV | env).items():
        monkeypatch.setenv(name, value)
    sent = urlsplit(boto3_get_object_url(bucket, KEY))
    target = target_for(bucket, KEY, ENV | env)
    assert (target.scheme, target.host, target.path) == (sent.scheme, sent.netloc, sent.path)
    assert target.region == "eu-west-1"


def test_china_regions_use_their_domain():
    assert target_for("artifacts", "m.tar.gz", ENV | {"AWS_DEFAULT_REGION": "cn-north-1"}).host == "artifacts.s3.cn-north-1.amazonaws.com.cn"


def test_us_east_1_uses_the_regional_endpoint():
    assert target_for("artifacts", "m.tar.gz", ENV | {"AWS_DEFAULT_REGION": "us-east-1"}).host == "artifacts.s3.us-east-1.amazonaws.com"


@pytest.mark.parametrize("env", [
    {"AWS_DEFAULT_REGION": ""},
    {"AWS_DEFAULT_REGION": "mars-central-1"},
    {"AWS_USE_FIPS_ENDPOINT": "true"},
    {"AWS_USE_DUALSTACK_ENDPOINT": "true"},
    {"HTTPS_PROXY": "http://proxy:3128"},
    {"AWS_ENDPOINT_URL": "ftp://127.0.0.1"},
])
def test_settings_it_does_not_handle_are_left_to_boto3(env):
    assert target_for("artifacts", "m.tar.gz", ENV | env) is None


def test_configured_endpoints_can_be_ignored():
    env = ENV | {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}
    assert target_for("artifacts", "m.tar.gz", env).host == "artifacts.s3.eu-west-1.amazonaws.com"


def test_moto_checking_signatures_accepts_ours(tmp_path, monkeypatch, sdk):
    """An independent check: moto with IAM authentication on recomputes the signature from its own key store."""
    import json
    import urllib.request

    from demo.emulator import embedded_aws

    with embedded_aws() as url:
        iam = boto3.client("iam")
        iam.create_user(UserName="serving")
        iam.put_user_policy(UserName="serving", PolicyName="read", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="serving")["AccessKey"]
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="artifacts")
        s3.put_object(Bucket="artifacts", Key=KEY, Body=b"tarball")
        env = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
               "AWS_SESSION_TOKEN": "", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": url}

        def authentication(count: str) -> None:  # requests moto lets through unchecked from now on
            urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset-auth", data=count.encode(),
                                                          headers={"Content-Type": "text/plain"})).close()

        authentication("0")
        try:
            assert fetch("artifacts", KEY, tmp_path / "m.tar.gz", env) == "signed GET"
            wrong = env | {"AWS_SECRET_ACCESS_KEY": "not-the-secret"}
            assert fetch("artifacts", KEY, tmp_path / "m.tar.gz", wrong) == "boto3: signed GET answered 403 SignatureDoesNotMatch"
        finally:
            authentication("inf")  # moto's default; the server shares its settings with this process
    assert (tmp_path / "m.tar.gz").read_bytes() == b"from boto3" and sdk == ["signed GET answered 403 SignatureDoesNotMatch"]


# ------------------------------------------------------------------ fetching from a loopback stub


class Stub(StubHandler):
    """Answers every GET with the server's (status, headers, body); keeps the request lines and headers."""

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers))
        self.reply(*self.server.answer)


@pytest.fixture
def stub() -> Iterator[http.server.HTTPServer]:
    with loopback_server(Stub, seen=[], answer=(200, {}, b"")) as server:
        yield server


@pytest.fixture
def sdk(monkeypatch) -> list[str]:
    """boto3's part replaced: records why it was called and writes a body of its own."""
    calls: list[str] = []

    def fake(bucket, key, fh, why):
        calls.append(why)
        fh.seek(0)
        fh.truncate()
        fh.write(b"from boto3")
        return f"boto3: {why}"

    monkeypatch.setattr(s3_get, "_sdk_fetch", fake)
    return calls


def stub_env(server) -> dict[str, str]:
    return ENV | {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_port}", "AWS_SESSION_TOKEN": "TOKEN"}


def s3_error(code: str) -> bytes:
    return f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>m</Message></Error>".encode()


def test_signed_get_writes_the_object(stub, sdk, tmp_path):
    stub.answer = (200, {"Content-Length": "9"}, b"tarball!!")
    assert fetch("artifacts", KEY, tmp_path / "m.tar.gz", stub_env(stub)) == "signed GET"
    assert (tmp_path / "m.tar.gz").read_bytes() == b"tarball!!" and sdk == []
    path, headers = stub.seen[0]
    assert path == "/artifacts/models/churn%20run%2B1/%C3%BC/model.tar.gz"
    assert headers["Host"] == f"127.0.0.1:{stub.server_port}" and headers["x-amz-security-token"] == "TOKEN"
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token," in headers["Authorization"]


@pytest.mark.parametrize("status, code", [(404, "NoSuchKey"), (404, "NoSuchBucket"), (403, "AccessDenied")])
def test_a_definite_no_is_reported_without_boto3(stub, sdk, tmp_path, status, code):
    stub.answer = (status, {"Content-Type": "application/xml"}, s3_error(code))
    with pytest.raises(FetchError, match=f"^{code}$"):
        fetch("artifacts", "m.tar.gz", tmp_path / "m.tar.gz", stub_env(stub))
    assert sdk == []


@pytest.mark.parametrize("status, body, why", [
    (503, s3_error("SlowDown"), "signed GET answered 503 SlowDown"),
    (301, s3_error("PermanentRedirect"), "signed GET answered 301 PermanentRedirect"),
    (403, s3_error("SignatureDoesNotMatch"), "signed GET answered 403 SignatureDoesNotMatch"),
    (500, b"", "signed GET answered 500"),
])
def test_other_answers_go_to_boto3(stub, sdk, tmp_path, status, body, why):
    stub.answer = (status, {}, body)
    assert fetch("artifacts", "m.tar.gz", tmp_path / "m.tar.gz", stub_env(stub)) == f"boto3: {why}"
    assert (tmp_path / "m.tar.gz").read_bytes() == b"from boto3"


def test_a_body_cut_short_goes_to_boto3(stub, sdk, tmp_path):
    stub.answer = (200, {"Content-Length": "1000", "Connection": "close"}, b"only part")
    assert fetch("artifacts", "m.tar.gz", tmp_path / "m.tar.gz", stub_env(stub)).startswith("boto3: signed GET failed: IncompleteRead")
    assert (tmp_path / "m.tar.gz").read_bytes() == b"from boto3", "the partial body is not kept"


def test_a_refused_connection_goes_to_boto3(stub, sdk, tmp_path):
    env = stub_env(stub)
    stub.shutdown()
    stub.server_close()
    assert "ConnectionRefusedError" in fetch("artifacts", "m.tar.gz", tmp_path / "m.tar.gz", env)


def test_without_credentials_in_the_environment_boto3_finds_them(stub, sdk, tmp_path):
    env = {k: v for k, v in stub_env(stub).items() if k != "AWS_SECRET_ACCESS_KEY"}
    assert fetch("artifacts", "m.tar.gz", tmp_path / "m.tar.gz", env) == "boto3: no credentials in the environment"
    assert stub.seen == []


def test_a_local_write_failure_is_not_blamed_on_s3(stub, sdk, tmp_path):
    with pytest.raises(FileNotFoundError):
        fetch("artifacts", "m.tar.gz", tmp_path / "missing" / "m.tar.gz", stub_env(stub))
    assert stub.seen == [] and sdk == []


# ------------------------------------------------------------------ in the background


def test_download_hands_over_its_result(stub, sdk, tmp_path):
    stub.answer = (200, {"Content-Length": "2"}, b"ok")
    assert Download("artifacts", "m.tar.gz", tmp_path / "m.tar.gz", stub_env(stub)).wait() == "signed GET"
    assert (tmp_path / "m.tar.gz").read_bytes() == b"ok"


def test_download_hands_over_its_error(stub, sdk, tmp_path):
    stub.answer = (404, {}, s3_error("NoSuchKey"))
    download = Download("artifacts", "m.tar.gz", tmp_path / "m.tar.gz", stub_env(stub))
    with pytest.raises(FetchError, match="NoSuchKey"):
        download.wait()
    with pytest.raises(FetchError):  # and again: waiting twice is harmless
        download.wait()


def test_download_hands_over_unexpected_errors(tmp_path):
    download = Download("artifacts", "m.tar.gz", Path(tmp_path / "missing" / "m.tar.gz"), ENV)
    with pytest.raises(FileNotFoundError):
        download.wait()
