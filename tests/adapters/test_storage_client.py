"""The S3 client storage builds (botocore's, shared.adapters.s3_client) against the test
stack's Ceph RGW: boto3's managed transfers driven with it, and boto3 left unimported until
a managed transfer runs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.settings import StackSettings
from devstack.stack import up as stack_up
from shared.adapters import storage

MiB = 1024**2
PREFIX = "test-storage-client/"


@pytest.fixture
def bucket(settings: StackSettings, s3: Any) -> Iterator[str]:
    yield settings.archive_bucket
    storage.delete_prefix(s3, settings.archive_bucket, PREFIX)


class _Unsized(io.RawIOBase):
    """A stream of unknown length that cannot seek (a pipe, a socket)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)


def test_put_file_above_the_part_size_is_a_multipart_upload(
        s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "UPLOAD_PART", 5 * MiB)  # S3's smallest part
    data = os.urandom(11 * MiB)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    etag = storage.put_file(s3, bucket, PREFIX + "big.bin", path, content_type="text/plain",
                            metadata={"origin": "test"})
    head = s3.head_object(Bucket=bucket, Key=PREFIX + "big.bin")
    assert etag.endswith("-3") and head["ETag"].strip('"') == etag  # three parts
    assert (head["ContentType"], head["Metadata"]) == ("text/plain", {"origin": "test"})
    assert s3.get_object(Bucket=bucket, Key=PREFIX + "big.bin")["Body"].read() == data


def test_put_stream_of_unknown_length(s3: Any, bucket: str) -> None:
    data = os.urandom(9 * MiB)  # above the managed transfer's 8 MiB multipart threshold
    storage.put_stream(s3, bucket, PREFIX + "stream.bin", io.BufferedReader(_Unsized(data)),
                       Metadata={"origin": "stream"})
    answer = s3.get_object(Bucket=bucket, Key=PREFIX + "stream.bin")
    assert answer["Metadata"] == {"origin": "stream"}
    assert answer["Body"].read() == data


_PROBE = textwrap.dedent("""
    import io, json, sys
    from shared.adapters import storage
    from shared.adapters.settings import load_settings
    s3 = storage.client(load_settings())
    bucket, key = sys.argv[1], sys.argv[2]
    storage.put_bytes(s3, bucket, key, b"one")
    read = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    before = "boto3" in sys.modules
    storage.put_stream(s3, bucket, key, io.BytesIO(b"two"))
    print(json.dumps({"read": read, "boto3_before": before, "boto3_after": "boto3" in sys.modules,
                      "again": s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()}))
""")


def test_plain_s3_calls_leave_boto3_unimported(settings: StackSettings, bucket: str) -> None:
    # boto3's import (s3transfer, multiprocessing) is ~2.3 MB of every S3-using function's
    # resident memory; only a managed transfer needs it.
    env = {**os.environ, **stack_up.env(settings)}
    done = subprocess.run([sys.executable, "-c", _PROBE, bucket, PREFIX + "probe"],
                          cwd=Path(__file__).parents[2], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer == {"read": "one", "boto3_before": False, "boto3_after": True, "again": "two"}


def test_the_loader_knows_s3_and_only_s3(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    from botocore.exceptions import UnknownServiceError

    from shared.adapters import s3_client

    monkeypatch.delenv("AWS_DATA_PATH", raising=False)
    loader = s3_client.session().get_component("data_loader")
    assert loader.list_available_services("service-2") == ["s3"]
    assert loader.list_available_services("no-such-type-1") == []
    assert loader.load_service_model("s3", "service-2")["metadata"]["endpointPrefix"] == "s3"
    with pytest.raises(UnknownServiceError):
        loader.load_service_model("sqs", "service-2")  # botocore has it; we never ask for it
    # AWS_DATA_PATH is still searched, as botocore's loader does, first.
    model = tmp_path / "s3" / "2099-01-01"
    model.mkdir(parents=True)
    (model / "service-2.json").write_text('{"metadata": {"endpointPrefix": "mine"}}')
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    loader = s3_client.session().get_component("data_loader")
    assert loader.load_service_model("s3", "service-2") == {
        "metadata": {"endpointPrefix": "mine"}}
