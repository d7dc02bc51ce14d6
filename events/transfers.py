"""Events of routing: a product copied to an external target, or given up on."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from events.base import EventData


class TransferCompleted(EventData):
    transfer_id: UUID
    route: str
    product_id: UUID
    name: str
    target: str
    bytes: int = Field(ge=0)
    attempts: int = Field(ge=1)
    duration_ms: int = Field(ge=0)
    checksum: str = Field(description="MD5 (hex) of the bytes verified at the target")
    completed_at: datetime


class TransferFailed(EventData):
    transfer_id: UUID
    route: str
    product_id: UUID
    name: str
    target: str
    attempts: int = Field(ge=1)
    error: str
    reason: str | None = Field(
        default=None, description="machine-readable: target_unreachable, target_refused,"
        " checksum_mismatch, archive_unavailable, product_unavailable, config_invalid")
    failed_at: datetime
