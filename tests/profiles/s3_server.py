"""A real S3 endpoint for the tests: moto's server on 127.0.0.1, on a port of this suite's
range (8120-8129), reached through boto3 and django-storages as production reaches S3."""
from __future__ import annotations

import socket
import uuid

import boto3
from moto.server import ThreadedMotoServer

PORTS = range(8120, 8130)
REGION = "cn-north-1"
ACCESS_KEY, SECRET_KEY = "AKIDIMPORTS", "import-secret-for-tests"


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8120-8129 for the S3 server")


def s3_server_start() -> tuple[ThreadedMotoServer, str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def s3_bucket_create(endpoint: str) -> tuple:
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY)
    name = f"cdp-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return client, name


def s3_keys(client, bucket: str, prefix: str = "") -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def s3_storages(endpoint: str, bucket: str, prefix: str = "uploads") -> dict:
    """The STORAGES setting with the default storage in the bucket, as CDP_STORAGE_S3_* set it."""
    return {
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
            "bucket_name": bucket, "endpoint_url": endpoint, "region_name": REGION, "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY, "location": prefix, "file_overwrite": False, "default_acl": None,
            "querystring_auth": False, "addressing_style": "path"}},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
