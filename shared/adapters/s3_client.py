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
  11.8 MB, and decode in a third of the time;
- endpoints.json kept with the S3 service alone. The file describes some 400 services in
  every partition (4.1 MB decoded); the client consults it for S3 only (its legacy
  EndpointResolver, asked for `s3` in the configured region), and keeps it alive for its
  life. The partitions, their regions and defaults are kept whole. -3.1 MB of resident
  memory in a fresh ingest process (the space freed is reused by the S3 model decoded next).

One more keeps its build short: botocore's loader checks that the service asked for exists
by looking into the folder of every service it knows (~460, ~2,000 system calls, twice a
client build: 8% of the build's instructions); this one looks into those of _SERVICES alone.
"""

from __future__ import annotations

import gzip
import json
import os
from typing import Any

from botocore.config import Config
from botocore.loaders import JSONFileLoader, Loader
from botocore.session import Session

# The extensions botocore's own JSONFileLoader tries, in its order.
_OPENERS = ((".json", open), (".json.gz", gzip.open))
# The services of endpoints.json a client of this module is built for.
_SERVICES = frozenset({"s3"})


class PlainJSONFiles(JSONFileLoader):
    """botocore's data files, decoded as dicts (botocore's loader uses OrderedDict)."""

    def load_file(self, file_path: str) -> Any:
        for extension, opener in _OPENERS:
            path = file_path + extension
            if os.path.isfile(path):
                with opener(path, "rb") as fp:
                    data = json.loads(fp.read().decode("utf-8"))
                if os.path.basename(file_path) == "endpoints":
                    _only_our_services(data)
                return data
        return None


def _only_our_services(endpoints: Any) -> None:
    """endpoints.json (botocore's data/endpoints.json, or one on AWS_DATA_PATH) reduced to
    the services in _SERVICES, in place; anything not shaped like it is left as it is."""
    for partition in endpoints.get("partitions", []) if isinstance(endpoints, dict) else []:
        services = partition.get("services") if isinstance(partition, dict) else None
        if isinstance(services, dict):
            partition["services"] = {k: v for k, v in services.items() if k in _SERVICES}


class OurServicesLoader(Loader):
    """botocore's loader, knowing of the services in _SERVICES only."""

    def list_available_services(self, type_name: str) -> list[str]:
        # botocore's own lists every service folder of every search path; asked only to
        # tell whether a service of ours exists (load_service_model), the answer for ours
        # is the same: one with a `type_name` file in one of its API versions' folders.
        found = set()
        for path in self._potential_locations():
            for service in _SERVICES:
                folder = os.path.join(path, service)
                if os.path.isdir(folder) and any(
                        self.file_loader.exists(os.path.join(folder, version, type_name))
                        for version in os.listdir(folder)):
                    found.add(service)
        return sorted(found)


def session() -> Session:
    """A botocore session whose data loader decodes into dicts; AWS_DATA_PATH is honoured
    as botocore's default loader (botocore.loaders.create_loader) does."""
    s = Session()
    data_path = s.get_config_variable("data_path")
    extra = None if data_path is None else [
        os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)]
    s.register_component("data_loader",
                         OurServicesLoader(extra_search_paths=extra, file_loader=PlainJSONFiles()))
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
