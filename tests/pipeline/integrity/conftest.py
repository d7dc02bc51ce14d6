"""The scrub and repairs against the test stack's PostgreSQL and RGW, on products made by
the real ingest, package and publish steps (no broker: events stay in the journal)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from devstack import demo_products
from events import types
from events.products import ProductIngested, ProductPackaged
from shared.adapters.runtime import Runtime
from shared.pipeline import packaging, publication
from shared.pipeline.ingestion.ingest import Outcome, ingest
from tests.pipeline.ingestion import conftest as ingestion
from tests.pipeline.ingestion.conftest import Inbox, rows

START = datetime(2025, 3, 1, tzinfo=UTC)
# The ingestion tests' fixtures: a runtime on the emptied test stack, and its inbox.
rt = ingestion.rt
inbox = ingestion.inbox


def orbit(n: int) -> tuple[str, bytes]:
    """A small restituted orbit file, the n-th of a series."""
    begin = START + timedelta(hours=3 * n)
    return demo_products.orbit_eof("A", "AUX_RESORB", begin, begin + timedelta(hours=3),
                                   begin + timedelta(hours=4), max_vectors=4)


def publish_all(rt: Runtime) -> None:
    """Package and publish every ingested product, as the next steps would."""
    for event in rows(rt, "SELECT data FROM event_journal WHERE type = %s",
                      types.PRODUCT_INGESTED):
        packaging.package(rt, ProductIngested.model_validate(event["data"]))
    for event in rows(rt, "SELECT data FROM event_journal WHERE type = %s",
                      types.PRODUCT_PACKAGED):
        publication.publish(rt, ProductPackaged.model_validate(event["data"]))


def product(rt: Runtime, logical_name: str) -> dict:
    [row] = rows(rt, "SELECT * FROM products WHERE logical_name = %s", logical_name)
    return row


def ingest_files(rt: Runtime, inbox: Inbox, files: dict[str, bytes]) -> None:
    outcomes = [ingest(rt, inbox.put(key, body), f"ev-{key}").outcome
                for key, body in files.items()]
    assert Outcome.REJECTED not in outcomes
