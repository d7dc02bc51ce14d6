"""Eviction: a published product whose EvictionDate has passed (publication.py sets it from
the retention policy of its type) goes offline, its bytes leave the archive, and
`product.evicted` tells subscribers.

Each product is evicted on its own, in this order:

1. one transaction locks it (`FOR UPDATE SKIP LOCKED`: two instances never take the same
   product), marks it `evicted` and offline, and journals its `product.evicted` event;
2. after the commit, its bytes are deleted from the archive bucket: the distribution object
   and the ingested copy (a SAFE folder's whole prefix);
3. the event is sent (also when the deletion failed: the catalogue change stands).

Deleting after the commit means a crash, or an S3 error, between 1 and 2 leaves orphan bytes
rather than a catalogued product whose download fails. The choice kept simple: the sweep does
not come back for such orphans (it selects published products only); the evicted row keeps
both keys, so an operator can find and delete them (`auxip products show <name>`). A journalled
event a crash left unsent goes with the next `outbox.send_pending`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from cloudevents.http import CloudEvent

from events import envelope, types
from events.products import ProductEvicted
from shared.adapters import outbox, storage
from shared.adapters.catalogue import eviction
from shared.adapters.runtime import Runtime
from shared.adapters.telemetry import metrics
from shared.adapters.telemetry.tracing import current_trace_extensions

log = logging.getLogger(__name__)

_IDS = uuid.UUID("5d0c8f4e-2b6a-4f1d-9e3c-7a8b1c2d3e4f")
# An hourly tick: a backlog larger than this goes over the next ticks, each within the
# function's timeout.
DEFAULT_LIMIT = 500


@dataclass(frozen=True)
class Evicted:
    product_id: uuid.UUID
    name: str
    product_type: str
    eviction_date: datetime
    evicted_at: datetime
    event_id: str


def evict_due(rt: Runtime, now: datetime | None = None,
              limit: int = DEFAULT_LIMIT) -> list[Evicted]:
    """Evict up to `limit` products whose eviction date is at or before `now` (default: the
    current time); returns those this call evicted (not those another instance took)."""
    cutoff = now or datetime.now(UTC)
    done: list[Evicted] = []
    while len(done) < limit:
        evicted = _evict_next(rt, cutoff)
        if evicted is None:
            break
        done.append(evicted)
    return done


def _evict_next(rt: Runtime, cutoff: datetime) -> Evicted | None:
    s = rt.settings
    with rt.pool.connection() as conn:
        with conn.transaction():
            row = eviction.lock_next_due(conn, cutoff)
            if row is None:
                return None
            evicted_at = eviction.mark_evicted(conn, row["id"])
            assert evicted_at is not None  # locked and still matching: it was published
            event = _evicted_event(s.event_source, row, evicted_at)
            outbox.record(conn, event)
        metrics.evicted(row["product_type"])
        log.info("evicted %s (eviction date %s)", row["name"], row["eviction_date"])
        try:
            delete_bytes(rt, row)
        finally:
            outbox.send(conn, s.broker_url, [event["id"]])
    return Evicted(row["id"], _name(row), row["product_type"], row["eviction_date"],
                   evicted_at, event["id"])


def delete_bytes(rt: Runtime, row: dict) -> None:
    """Delete a product's objects from the archive: its distribution object and what was
    ingested (one object, or every object under a SAFE folder's prefix)."""
    bucket = rt.settings.archive_bucket
    for key in sorted({k for k in (row["distribution_key"], row["archive_key"]) if k}):
        if not key.endswith("/"):
            storage.delete(rt.s3, bucket, key)
        elif _is_folder_of(key, row["logical_name"]):
            storage.delete_prefix(rt.s3, bucket, key)
        else:
            # A damaged row's prefix ("", "ingested/") would take other products' bytes.
            log.error("%s: archive prefix %r is not the product's folder; kept",
                      row["logical_name"], key)


def _is_folder_of(prefix: str, logical_name: str) -> bool:
    return prefix.rstrip("/").rsplit("/", 1)[-1] == logical_name


def _name(row: dict) -> str:
    return row["name"] or row["logical_name"]


def _evicted_event(source: str, row: dict, evicted_at: datetime) -> CloudEvent:
    return envelope.build(
        types.PRODUCT_EVICTED,
        ProductEvicted(product_id=row["id"], name=_name(row), product_type=row["product_type"],
                       evicted_at=evicted_at),
        source=f"{source}/evict", subject=_name(row),
        event_id=str(uuid.uuid5(_IDS, f"evicted:{row['id']}")),
        extensions=current_trace_extensions(),
    )
