"""The rest of an auxip instance's pipeline, run in this process: the journal's unsent
events handed to the real ingest, package and publish steps in the order they were
recorded, as the broker would deliver them, until none is left."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from events import types
from events.files import FileArrived
from events.products import ProductIngested, ProductPackaged
from shared.adapters.runtime import Runtime
from shared.pipeline import packaging, publication
from shared.pipeline.ingestion import ingest


def drain(rt: Runtime, rounds: int = 10) -> None:
    for _ in range(rounds):
        with psycopg.connect(rt.settings.database_url, row_factory=dict_row,
                             autocommit=True) as conn:
            pending = conn.execute("SELECT id, type, data FROM event_journal"
                                   " WHERE sent_at IS NULL ORDER BY recorded_at").fetchall()
            if not pending:
                return
            for row in pending:
                deliver(rt, row["type"], row["data"], row["id"])
                conn.execute("UPDATE event_journal SET sent_at = now() WHERE id = %s",
                             (row["id"],))
    raise AssertionError(f"events still unsent after {rounds} rounds")


def deliver(rt: Runtime, event_type: str, data: dict, event_id: str) -> None:
    if event_type == types.FILE_ARRIVED:
        ingest.ingest(rt, FileArrived.model_validate(data), event_id)
    elif event_type == types.PRODUCT_INGESTED:
        packaging.package(rt, ProductIngested.model_validate(data))
    elif event_type == types.PRODUCT_PACKAGED:
        publication.publish(rt, ProductPackaged.model_validate(data))
    # Terminal events (published, rejected, transfers) go to nobody here.
