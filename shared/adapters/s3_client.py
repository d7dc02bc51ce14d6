"""The S3 client itself: botocore's, built on a botocore session of its own.

Imported only where a client is built (`storage.client`): botocore costs a cold start
~0.1 s and several MB, and most functions never touch S3.

Two choices keep an S3-using function's resident memory down (measured in a fresh ingest
process, bench/RESULTS.md "issue 19: RSS"), neither changing what the client does:
- a botocore session rather than boto3's: boto3's import pulls in s3transfer and, through
  it, multiprocessing (~2.3 MB) for the managed transfers, which only `storage.put_file`
  above UPLOAD_PART and `storage.put_stream` use; they import boto3's transfer module
  when they run and drive it with this client, as boto3's injected methods do;
- botocore's model files decoded into plain dicts instead of OrderedDicts. The client
  keeps the decoded S3 model, endpoint rule set and endpoints.json for its life; as dicts
  (ordered since Python 3.7, the same data in the same order) they take 7.4 MB instead of
  11.8 MB, and decode in a third of the time.
"""

from __future__ import annotations

import gzip
import json
import os
from typing import Any

from botocore.config import Config
from botocore.loaders import JSONFileLoader, create_loader
from botocore.session import Session

# The extensions botocore's own JSONFileLoader tries, in its order.
_OPENERS = ((".json", open), (".json.gz", gzip.open))


class PlainJSONFiles(JSONFileLoader):
    """botocore's data files, decoded as dicts (botocore's loader uses OrderedDict)."""

    def load_file(self, file_path: str) -> Any:
        for extension, opener in _OPENERS:
            path = file_path + extension
            if os.path.isfile(path):
                with opener(path, "rb") as fp:
                    return json.loads(fp.read().decode("utf-8"))
        return None


def session() -> Session:
    """A botocore session whose data loader decodes into dicts; AWS_DATA_PATH is honoured
    as botocore's default loader does."""
    s = Session()
    loader = create_loader(s.get_config_variable("data_path"))
    loader.file_loader = PlainJSONFiles()
    s.register_component("data_loader", loader)
    return s


def build(endpoint: str, access_key: str, secret_key: str, config: Config) -> Any:
    """An S3 client on a session of its own (sessions are not thread-safe; clients are)."""
    return session().create_client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
    )
