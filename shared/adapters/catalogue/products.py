"""Product rows: written by ingest, package and publish; read by everyone."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg
from psycopg.rows import dict_row


@dataclass(frozen=True)
class Packaging:
    """The distribution form of a product that ingest packages (served as it arrived, or
    built from the bytes ingest holds), known when it is ingested."""

    name: str
    distribution_key: str
    content_type: str


@dataclass(frozen=True)
class Publication:
    """The publication of a product ingest packages, made in the same statement."""

    publication_date: datetime
    eviction_date: datetime


@dataclass(frozen=True)
class NewProduct:
    id: UUID
    logical_name: str
    product_type: str
    platform_serial: str
    fingerprint: str
    layout: str
    archive_key: str
    content_length: int
    checksums: list[dict[str, str]]
    content_start: datetime
    content_end: datetime
    origin_date: datetime
    attributes: dict[str, object]
    ingestion_date: datetime | None = None  # None: the database's now()
    packaged: Packaging | None = None  # inserted 'packaged' when set, else 'ingested'
    published: Publication | None = None  # with `packaged`: inserted 'published', online


def find_by_logical_name(conn: psycopg.Connection, logical_name: str) -> dict | None:
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM products WHERE logical_name = %s", (logical_name,)
    ).fetchone()


def get(conn: psycopg.Connection, product_id: UUID) -> dict | None:
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM products WHERE id = %s", (product_id,)
    ).fetchone()


def insert_ingested(conn: psycopg.Connection, p: NewProduct) -> bool:
    """False when a product of that logical name exists already (a concurrent ingest)."""
    return conn.execute(_INSERT_INGESTED, _ingested_params(p)).fetchone() is not None


def insert_ingested_statement(p: NewProduct) -> tuple[str, tuple[object, ...]]:
    """`insert_ingested`'s statement and parameters (RETURNING id, no row when the logical
    name is taken), for a caller that journals the events announcing it in the same
    statement (`outbox.record_with`)."""
    return _INSERT_INGESTED, _ingested_params(p)


_INSERT_INGESTED = (
    "INSERT INTO products (id, logical_name, product_type, platform_serial, fingerprint,"
    " layout, archive_key, content_length, checksums, content_start, content_end,"
    " origin_date, attributes, ingestion_date, modification_date, status, name,"
    " distribution_key, content_type, publication_date, eviction_date, online)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
    " coalesce(%s, now()), coalesce(%s, now()), %s, %s, %s,"
    " coalesce(%s, 'application/octet-stream'), %s, %s, %s)"
    " ON CONFLICT (logical_name) DO NOTHING RETURNING id"
)


def _ingested_params(p: NewProduct) -> tuple[object, ...]:
    packaged = p.packaged
    published = p.published if packaged else None
    status = "published" if published else "packaged" if packaged else "ingested"
    # A published row's modification date is its publication's, as publish sets it (and
    # as the row rebuilt from the journal has it).
    modified = published.publication_date if published else p.ingestion_date
    return (p.id, p.logical_name, p.product_type, p.platform_serial, p.fingerprint, p.layout,
            p.archive_key, p.content_length, json.dumps(p.checksums), p.content_start,
            p.content_end, p.origin_date, json.dumps(p.attributes), p.ingestion_date,
            modified, status, packaged and packaged.name,
            packaged and packaged.distribution_key, packaged and packaged.content_type,
            published and published.publication_date, published and published.eviction_date,
            published is not None)


RESTORED_COLUMNS = (
    "id", "logical_name", "name", "status", "product_type", "platform_serial", "fingerprint",
    "layout", "archive_key", "distribution_key", "content_type", "content_length", "checksums",
    "content_start", "content_end", "origin_date", "ingestion_date", "publication_date",
    "modification_date", "eviction_date", "online", "attributes",
)


def insert_restored(conn: psycopg.Connection, row: dict) -> bool:
    """Put back a whole row rebuilt from the journal (restore.py beside); False when the
    product, its logical name or its name is catalogued already (restored concurrently)."""
    values = [json.dumps(row[c]) if c in ("checksums", "attributes") else row[c]
              for c in RESTORED_COLUMNS]
    inserted = conn.execute(
        f"INSERT INTO products ({', '.join(RESTORED_COLUMNS)})"  # nosec B608  # constant columns
        f" VALUES ({', '.join(['%s'] * len(RESTORED_COLUMNS))})"
        " ON CONFLICT DO NOTHING RETURNING id", values,
    ).fetchone()
    return inserted is not None


def mark_packaged(conn: psycopg.Connection, product_id: UUID, *, name: str,
                  distribution_key: str, content_type: str, content_length: int,
                  checksums: list[dict[str, str]], packaged_at: datetime | None = None) -> bool:
    """False when the product is gone or already past packaging (a redelivery)."""
    statement, params = mark_packaged_statement(
        product_id, name=name, distribution_key=distribution_key, content_type=content_type,
        content_length=content_length, checksums=checksums, packaged_at=packaged_at)
    return conn.execute(statement, params).fetchone() is not None


def mark_packaged_statement(product_id: UUID, *, name: str, distribution_key: str,
                            content_type: str, content_length: int,
                            checksums: list[dict[str, str]], packaged_at: datetime | None
                            ) -> tuple[str, tuple[object, ...]]:
    """`mark_packaged`'s statement and parameters (RETURNING id, no row when nothing was
    waiting for packaging), for a caller that journals its event in the same statement."""
    return _MARK_PACKAGED, (name, distribution_key, content_type, content_length,
                            json.dumps(checksums), packaged_at, product_id)


_MARK_PACKAGED = (
    "UPDATE products SET name = %s, distribution_key = %s, content_type = %s,"
    " content_length = %s, checksums = %s, status = 'packaged',"
    " modification_date = coalesce(%s, now())"
    " WHERE id = %s AND status = 'ingested' RETURNING id"
)


def mark_published(conn: psycopg.Connection, product_id: UUID, *, publication_date: datetime,
                   eviction_date: datetime) -> dict | None:
    """The published row, None when the product is gone or not packaged (a redelivery)."""
    # The modification date is the publication's own, so the row rebuilt from the
    # product.published event is the same row.
    return conn.cursor(row_factory=dict_row).execute(
        "UPDATE products SET status = 'published', online = true, publication_date = %s,"
        " eviction_date = %s, modification_date = %s"
        " WHERE id = %s AND status = 'packaged' RETURNING *",
        (publication_date, eviction_date, publication_date, product_id),
    ).fetchone()
