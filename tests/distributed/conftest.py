"""Fixtures for the multi-node tests: a fabric of namespaced nodes, a shared directory, an S3 server."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import uuid
from pathlib import Path

import pytest

from tests.distributed.netns import Fabric


@pytest.fixture(scope="module")
def fabric():
    """Three nodes with addresses of their own (namespaces; loopback only where refused)."""
    if os.geteuid() != 0 and os.environ.get("DOLMA_TEST_NETNS") != "0":
        pytest.skip("network namespaces need root (DOLMA_TEST_NETNS=0 runs on loopback addresses instead)")
    def interrupted(signum, frame):  # a SIGTERM (CI timeout, `timeout`) still runs the finalizers
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupted)
    fab = Fabric(3)
    try:
        if fab.notes:
            print(f"\nnote: {fab.notes}")
        yield fab
    finally:
        fab.close()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="module")
def shared_dir():
    """A directory every node sees (outside /tmp, which is private to each node): the cluster's shared FS."""
    path = Path("/var/tmp") / f"dolma-multinode-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def s3_server(fabric):
    """moto's S3 server on the host side of the fabric, reachable from every node; yields (endpoint, client)."""
    moto_server = pytest.importorskip("moto.server")
    import boto3

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address=fabric.host, port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                              region_name="us-east-1")
        yield endpoint, client
    finally:
        server.stop()


def aws_env(endpoint: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1"}
