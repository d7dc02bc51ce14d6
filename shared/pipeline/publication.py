"""Publication: a packaged product goes online, with its eviction date from the retention
policy of its type (`AUXIP_RETENTION_DAYS="AUX_RESORB=90,AUX_PREORB=30"`; types not listed
use AUXIP_DEFAULT_RETENTION_DAYS, or are kept for ever)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from cloudevents.http import CloudEvent

from events import envelope, types
from events.products import ProductPackaged, ProductPublished
from shared.adapters import outbox
from shared.adapters.catalogue import products, publication_clock, restore
from shared.adapters.runtime import Runtime
from shared.adapters.settings import Settings
from shared.adapters.telemetry import metrics
from shared.adapters.telemetry.tracing import current_trace_extensions
from shared.core.s1time import OPEN_END

_IDS = uuid.UUID("a3d5c1e2-7f0b-4e6a-8b2d-9c1e0f3a5b7d")
KEPT = OPEN_END  # EvictionDate 9999-12-31T23:59:59.999Z in the API


def retention_table(spec: str) -> dict[str, int]:
    table: dict[str, int] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        product_type, sep, days = entry.partition("=")
        if not sep or not days.strip().isdigit():
            raise ValueError(f"retention entry {entry!r} is not TYPE=DAYS")
        table[product_type.strip()] = int(days)
    return table


def eviction_date(product_type: str, published: datetime, table: dict[str, int],
                  default_days: int | None) -> datetime:
    days = table.get(product_type, default_days)
    return KEPT if days is None else published + timedelta(days=days)


def eviction_for(settings: Settings, product_type: str, published: datetime) -> datetime:
    """The eviction date of a product of `product_type` published at `published`."""
    return eviction_date(product_type, published, retention_table(settings.retention_days),
                         settings.default_retention_days)


def publish(rt: Runtime, packaged: ProductPackaged) -> str | None:
    """Publish one product; returns the emitted event id, None when already published."""
    s = rt.settings
    with rt.pool.connection() as conn:
        published = _mark_published(conn, s, packaged)
        if published is None:
            # Nothing packaged under that id: a redelivery, or a row the catalogue lost,
            # which the journal gives back (read only then, not once per publication).
            row = restore.get_or_restore(conn, packaged.product_id)
            if row is None or row["status"] != "packaged":
                return None
            published = _mark_published(conn, s, packaged)
            if published is None:
                return None
        row, event, fresh = published
        metrics.published(row["product_type"],
                          (row["publication_date"] - row["origin_date"]).total_seconds())
        if fresh:
            outbox.send_recorded(conn, s.broker_url, [event])
        else:  # journalled before (a replay): sent unless its row says it was not
            outbox.send(conn, s.broker_url, [event["id"]])
    return event["id"]


def _mark_published(conn: psycopg.Connection, s: Settings, packaged: ProductPackaged
                    ) -> tuple[dict, CloudEvent, bool] | None:
    """(the published row, its event, whether the event is journalled for the first time);
    None when no packaged row of that id is catalogued."""
    with conn.transaction():
        # The date from the publication clock, whose lock this transaction holds until it
        # commits: no product with a later date becomes visible before this one.
        now = publication_clock.stamp(conn, datetime.now(UTC))
        evicts = eviction_for(s, packaged.product_type, now)
        row = products.mark_published(conn, packaged.product_id, publication_date=now,
                                      eviction_date=evicts)
        if row is None:
            return None
        event = published_event(f"{s.event_source}/publish", row, now, evicts)
        return row, event, outbox.record(conn, event)


def published_event(source: str, row: Mapping[str, Any], now: datetime, evicts: datetime
                    ) -> CloudEvent:
    """`product.published` from `source` (publish, or ingest for a product it packaged),
    with the one id a product's publication has wherever it is made; `row` has the
    product's id, name, product_type, platform_serial, content_length, content_start,
    content_end and origin_date."""
    return envelope.build(
            types.PRODUCT_PUBLISHED,
            ProductPublished(
                product_id=row["id"], name=row["name"], product_type=row["product_type"],
                platform_serial=row["platform_serial"], content_length=row["content_length"],
                content_start=row["content_start"], content_end=row["content_end"],
                origin_date=row["origin_date"], publication_date=now, eviction_date=evicts),
            source=source, subject=row["name"],
            event_id=str(uuid.uuid5(_IDS, f"published:{row['id']}")),
            extensions=current_trace_extensions(),
        )
