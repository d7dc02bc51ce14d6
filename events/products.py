"""Events along a product's life: ingested, packaged, published, evicted."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from events.base import EventData


class Checksum(EventData):
    algorithm: str
    value: str


class ProductIngested(EventData):
    """The whole catalogue row ingest wrote, so the journal alone can rebuild it."""

    product_id: UUID
    logical_name: str
    product_type: str
    platform_serial: str = Field(description="'A'..'D', or '' for all units")
    layout: Literal["file", "safe-folder", "safe-archive"]
    archive_bucket: str
    archive_key: str
    fingerprint: str = Field(description="MD5 of the file, or of manifest.safe for a SAFE")
    content_length: int = Field(ge=0, description="bytes of what arrived")
    checksums: list[Checksum] = Field(description="of what arrived, dated ingested_at")
    content_start: datetime
    content_end: datetime
    attributes: dict[str, str | int | float | bool] = Field(
        description="the OData Attributes by name; dates as ISO 8601 strings")
    arrived_at: datetime
    ingested_at: datetime


class ProductPackaged(EventData):
    """What packaging changed in the row; checksums are dated packaged_at."""

    product_id: UUID
    name: str = Field(description="the distribution file name clients see")
    product_type: str
    archive_bucket: str
    distribution_key: str
    content_type: str
    content_length: int = Field(ge=0)
    checksums: list[Checksum]
    packaged_at: datetime


class ProductPublished(EventData):
    product_id: UUID
    name: str
    product_type: str
    platform_serial: str
    content_length: int = Field(ge=0)
    content_start: datetime
    content_end: datetime
    origin_date: datetime
    publication_date: datetime
    eviction_date: datetime


class ProductEvicted(EventData):
    product_id: UUID
    name: str
    product_type: str
    evicted_at: datetime
