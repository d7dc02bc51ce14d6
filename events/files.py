"""Events about files reaching auxip, before they are products."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from events.base import EventData


class FileArrived(EventData):
    """One object landed in the inbox bucket (from a storage notification or a poller)."""

    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1, description="object key, URL-decoded")
    size: int = Field(ge=0)
    etag: str | None = None
    origin: str = Field(default="inbox", description="'inbox' or 'poll:<source name>'")
    arrived_at: datetime


class RejectReason(StrEnum):
    """Machine-readable reasons; the same codes appear in quarantine, the API and metrics."""

    NAME_INVALID = "name_invalid"
    TYPE_UNKNOWN = "type_unknown"
    EMPTY = "empty"
    TOO_LARGE = "too_large"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    VIRUS_FOUND = "virus_found"
    ARCHIVE_UNSAFE = "archive_unsafe"
    ARCHIVE_CORRUPT = "archive_corrupt"
    SAFE_INCOMPLETE = "safe_incomplete"
    METADATA_INVALID = "metadata_invalid"
    CONTENT_MISMATCH = "content_mismatch"
    CONFLICT = "conflict"


class FileRejected(EventData):
    """A file was refused; its bytes are kept in quarantine under `quarantine_key`."""

    name: str
    bucket: str
    key: str
    quarantine_bucket: str
    quarantine_key: str | None
    reason: RejectReason
    detail: str
    fingerprint: str | None = None
    rejected_at: datetime
