"""Functions that never touch S3 never import boto3 (nor botocore): ~0.2 s and ~10 MB of
every cold start, plus ~0.2 s and ~15 MB for a client they would not use.

Each function is loaded by functions-framework in a fresh interpreter with the stack's
environment, as the stack starts it, and the ones with a cheap real first event handle it
there; the interpreter then says which of the two packages it holds."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

NO_S3 = ("deadletter", "inbox_adapter", "notify", "publish")

_PROBE = textwrap.dedent("""
    import base64, json, sys
    from datetime import UTC, datetime
    from functions_framework import create_app
    from events import bindings, envelope, types
    from events.files import FileArrived

    folder, signature = sys.argv[1], sys.argv[2]
    app = create_app("handle", f"functions/{folder}/main.py", signature)
    status = None
    if folder == "deadletter":
        event = envelope.build(
            types.FILE_ARRIVED,
            FileArrived(bucket="b", key="k.EOF", size=1, arrived_at=datetime.now(UTC)),
            source="/test", subject="k.EOF",
            extensions={"knativeerrordest": "http://ingest.auxip.svc/",
                        "knativeerrorcode": "500",
                        "knativeerrordata": base64.b64encode(b"boom").decode()})
        headers, body = bindings.to_http_binary(event)
        status = app.test_client().post("/", data=body, headers=headers).status_code
    elif folder == "inbox_adapter":
        record = {"eventVersion": "2.2", "eventSource": "ceph:s3",
                  "eventName": "ObjectCreated:Put", "eventTime": "2026-11-24T10:00:00.000Z",
                  "s3": {"bucket": {"name": "auxip-inbox"},
                         "object": {"key": "a.EOF", "size": 100, "eTag": "e",
                                    "sequencer": "0A"}}}
        status = app.test_client().post("/", data=json.dumps({"Records": [record]}),
                                        content_type="application/json").status_code
    print(json.dumps({"status": status,
                      "loaded": sorted({"boto3", "botocore"} & set(sys.modules))}))
""")


@pytest.mark.usefixtures("function_env")
@pytest.mark.parametrize("folder", NO_S3)
def test_a_function_without_s3_never_imports_boto3(folder: str) -> None:
    signature = "http" if folder == "inbox_adapter" else "cloudevent"
    done = subprocess.run([sys.executable, "-c", _PROBE, folder, signature],
                          cwd=Path(__file__).parents[2], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    if folder in ("deadletter", "inbox_adapter"):
        assert answer["status"] == 200, done.stderr[-2000:]
    assert answer["loaded"] == [], f"{folder} imported {answer['loaded']}"


def test_the_storage_module_alone_imports_no_boto3() -> None:
    # The probe above would pass for a function that stopped importing storage at all;
    # this one keeps the module itself honest.
    code = ("import sys; import shared.adapters.storage, shared.adapters.runtime,"
            " shared.prip.routes; "
            "print(sorted({'boto3', 'botocore'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2],
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
