"""Ingestion tests run the real steps against the test stack's PostgreSQL, RGW and clamd;
the broker is left out (events stay in the journal, where the tests read them)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from events.files import FileArrived
from shared.adapters import runtime
from shared.adapters.runtime import Runtime
from shared.adapters.settings import Settings

REAL = Path(__file__).parents[2] / "samples" / "real"


@pytest.fixture
def rt(settings: Settings, clean_buckets: None, clean_catalogue: None) -> Iterator[Runtime]:
    built = runtime.build(settings.model_copy(update={"broker_url": None}))
    yield built
    built.close()


class Inbox:
    """Puts objects into the test inbox and says what the notification would have said."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.bucket = rt.settings.inbox_bucket

    def put(self, key: str, body: bytes) -> FileArrived:
        self.rt.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        return FileArrived(bucket=self.bucket, key=key, size=len(body),
                           arrived_at=datetime.now(UTC))

    def put_folder(self, folder: str, files: dict[str, bytes]) -> list[FileArrived]:
        return [self.put(f"{folder}/{path}", body) for path, body in sorted(files.items())]

    def keys(self, bucket: str | None = None) -> list[str]:
        listing = self.rt.s3.list_objects_v2(Bucket=bucket or self.bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))


@pytest.fixture
def inbox(rt: Runtime) -> Inbox:
    return Inbox(rt)


def real_folder(name: str) -> dict[str, bytes]:
    root = REAL / name
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def rows(rt: Runtime, query: str, *params: object) -> list[dict]:
    with psycopg.connect(rt.settings.database_url, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()


@pytest.fixture
def clean_catalogue_now(rt: Runtime, settings: Settings):  # type: ignore[no-untyped-def]
    """Empty the catalogue in the middle of a test (to ingest the same product anew)."""
    def clean() -> None:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute("TRUNCATE products, rejections, event_journal, pending_folders")
        for bucket in (settings.archive_bucket, settings.inbox_bucket):
            listing = rt.s3.list_objects_v2(Bucket=bucket).get("Contents", [])
            for item in listing:
                rt.s3.delete_object(Bucket=bucket, Key=item["Key"])
    return clean
