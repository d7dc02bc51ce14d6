"""A product's catalogue row rebuilt from the journal, the catalogue's source of truth.

Every step that changes a product row journals, in the same transaction, an event carrying
everything it wrote: product.ingested the whole row, product.packaged the distribution
form, product.published the publication and eviction dates, product.evicted the end.
Folding a product's events in life order therefore gives back the row as it was, dates
included; nothing is recomputed, so a restored product keeps its PublicationDate.

The steps call `get_or_restore` where they read the row they act on: a row lost from the
catalogue (a restored backup, a deleted row) comes back from the first event that needs
it, whatever the order in which a replay delivers them. `missing` lists what the journal
knows and the catalogue lacks, for `auxip products restore`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from events import types
from events.products import ProductEvicted, ProductIngested, ProductPackaged, ProductPublished
from shared.adapters.catalogue import products
from shared.core.checksums import dated

log = logging.getLogger(__name__)

_LIFE = (types.PRODUCT_INGESTED, types.PRODUCT_PACKAGED, types.PRODUCT_PUBLISHED,
         types.PRODUCT_EVICTED)


def get_or_restore(conn: psycopg.Connection, product_id: UUID) -> dict | None:
    """The product's row, put back from the journal first if the catalogue lost it; None
    when the journal has never seen it ingested either."""
    row = products.get(conn, product_id)
    if row is not None:
        return row
    with conn.transaction():
        if restore(conn, product_id):
            log.warning("product %s was missing from the catalogue: restored from the journal",
                        product_id)
    return products.get(conn, product_id)


def restore(conn: psycopg.Connection, product_id: UUID) -> bool:
    """Insert the row the journal describes; False when there is nothing to restore or the
    row exists (restored concurrently)."""
    row = fold(journalled(conn, product_id))
    if row is None:
        return False
    return products.insert_restored(conn, row)


def catalogued(conn: psycopg.Connection, logical_name: str,
               product_id: UUID) -> tuple[dict | None, bool]:
    """The row catalogued under `logical_name` (None when there is none), and whether the
    journal holds life events of `product_id`: ingest's two questions in one round trip."""
    row = conn.cursor(row_factory=dict_row).execute(
        "SELECT p.*, EXISTS (SELECT 1 FROM event_journal WHERE data ? 'product_id'"
        " AND data ->> 'product_id' = %s AND type = ANY(%s)) AS in_journal"
        " FROM (VALUES (1)) AS one LEFT JOIN products p ON p.logical_name = %s",
        (str(product_id), list(_LIFE), logical_name),
    ).fetchone()
    assert row is not None  # one row, whatever the join finds
    in_journal = bool(row.pop("in_journal"))
    return (row if row["id"] is not None else None), in_journal


def journalled(conn: psycopg.Connection, product_id: UUID) -> list[tuple[str, dict]]:
    """(type, data) of the product's life events, in the order they were journalled."""
    rows = conn.cursor(row_factory=dict_row).execute(
        "SELECT type, data FROM event_journal"
        " WHERE data ? 'product_id' AND data ->> 'product_id' = %s AND type = ANY(%s)"
        " ORDER BY recorded_at, id", (str(product_id), list(_LIFE)),
    ).fetchall()
    return [(r["type"], r["data"]) for r in rows]


def fold(events: Iterable[tuple[str, dict]]) -> dict | None:
    """The row after these events, taken in life order (ingested, packaged, published,
    evicted) whatever order they come in; None without a product.ingested."""
    by_type = {event_type: data for event_type, data in events}
    if types.PRODUCT_INGESTED not in by_type:
        return None
    row = _ingested(ProductIngested.model_validate(by_type[types.PRODUCT_INGESTED]))
    if types.PRODUCT_PACKAGED in by_type:
        _packaged(row, ProductPackaged.model_validate(by_type[types.PRODUCT_PACKAGED]))
    if types.PRODUCT_PUBLISHED in by_type and row["status"] == "packaged":
        _published(row, ProductPublished.model_validate(by_type[types.PRODUCT_PUBLISHED]))
    if types.PRODUCT_EVICTED in by_type and row["status"] == "published":
        _evicted(row, ProductEvicted.model_validate(by_type[types.PRODUCT_EVICTED]))
    return row


def missing(conn: psycopg.Connection, limit: int | None = None) -> list[dict]:
    """Products the journal saw ingested that the catalogue does not hold."""
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT (j.data ->> 'product_id')::uuid AS id, j.data ->> 'logical_name' AS logical_name,"
        " j.data ->> 'product_type' AS product_type, j.time AS ingested"
        " FROM event_journal j"
        " WHERE j.type = %s AND NOT EXISTS"
        " (SELECT 1 FROM products p WHERE p.id = (j.data ->> 'product_id')::uuid)"
        " ORDER BY j.recorded_at LIMIT %s", (types.PRODUCT_INGESTED, limit),
    ).fetchall()


def _ingested(e: ProductIngested) -> dict:
    return {
        "id": e.product_id, "logical_name": e.logical_name, "name": None,
        "status": "ingested", "product_type": e.product_type,
        "platform_serial": e.platform_serial, "fingerprint": e.fingerprint,
        "layout": e.layout, "archive_key": e.archive_key, "distribution_key": None,
        "content_type": "application/octet-stream", "content_length": e.content_length,
        "checksums": _checksums(e.checksums, e.ingested_at),
        "content_start": e.content_start, "content_end": e.content_end,
        "origin_date": e.arrived_at, "ingestion_date": e.ingested_at,
        "publication_date": None, "modification_date": e.ingested_at,
        "eviction_date": None, "online": False, "attributes": dict(e.attributes),
    }


def _packaged(row: dict, e: ProductPackaged) -> None:
    row.update(name=e.name, status="packaged", distribution_key=e.distribution_key,
               content_type=e.content_type, content_length=e.content_length,
               checksums=_checksums(e.checksums, e.packaged_at),
               modification_date=e.packaged_at)


def _published(row: dict, e: ProductPublished) -> None:
    row.update(status="published", online=True, publication_date=e.publication_date,
               eviction_date=e.eviction_date, modification_date=e.publication_date)


def _evicted(row: dict, e: ProductEvicted) -> None:
    row.update(status="evicted", online=False, modification_date=e.evicted_at)


def _checksums(checksums: Iterable, when: datetime) -> list[dict[str, str]]:
    return dated(((c.algorithm, c.value) for c in checksums), when)
