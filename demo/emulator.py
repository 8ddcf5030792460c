"""An embedded AWS for local runs: moto in server mode on 127.0.0.1, found by boto3 via AWS_ENDPOINT_URL."""
from __future__ import annotations

import contextlib
import logging
import os
import urllib.request
from collections.abc import Iterator

from moto.server import ThreadedMotoServer

# Credentials the emulator accepts; never real ones, so a local run cannot reach an account.
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@contextlib.contextmanager
def embedded_aws() -> Iterator[str]:
    """Start moto on a free loopback port, point boto3 (this process and its children) at it, yield the URL."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request drowns the demo
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto keeps its state per process, not per server: an earlier emulator's buckets and streams would linger.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    saved = {k: os.environ.get(k) for k in [*FAKE_ENV, "AWS_ENDPOINT_URL", "AWS_PROFILE"]}
    os.environ.update(FAKE_ENV)
    os.environ.pop("AWS_PROFILE", None)
    os.environ["AWS_ENDPOINT_URL"] = url
    try:
        yield url
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
