"""Objects left in the inbox with no event: a storage notification can be lost (RGW's and
MinIO's webhook targets drop it when the adapter is down at PUT time). The minute sweep
announces every inbox object older than a grace period that has not been announced yet, so
nothing that reached the inbox is silently forgotten."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from events import envelope, types
from events.files import FileArrived
from shared.adapters import outbox, storage
from shared.adapters.runtime import Runtime
from shared.adapters.telemetry.tracing import current_trace_extensions
from shared.core.arrival import is_folder_marker, locate

_IDS = uuid.UUID("c0f3e1d2-4b5a-4e8f-9a7b-3d2c1e0f9a8b")


def reconcile_inbox(rt: Runtime, min_age_s: float) -> list[str]:
    """Journal and send a file.arrived for each forgotten object; returns their keys."""
    s = rt.settings
    cutoff = datetime.now(UTC) - timedelta(seconds=min_age_s)
    with rt.pool.connection() as conn:
        waiting = {row[0] for row in conn.execute(
            "SELECT prefix FROM pending_folders WHERE bucket = %s", (s.inbox_bucket,))}
    forgotten = []
    events = []
    for item in storage.list_listed(rt.s3, s.inbox_bucket):
        if item.last_modified > cutoff or is_folder_marker(item.key, item.size):
            continue
        arrival = locate(s.inbox_bucket, item.key)
        if arrival.folder_prefix in waiting:
            continue  # its folder was seen: the sweep decides when it is incomplete
        events.append(envelope.build(
            types.FILE_ARRIVED,
            FileArrived(bucket=s.inbox_bucket, key=item.key, size=item.size, etag=item.etag,
                        origin="inbox", arrived_at=item.last_modified),
            source=f"{s.event_source}/ingest", subject=item.key,
            # Once per object version: an object whose ingest keeps failing is for the
            # dead letters and its operators, not for another announcement every minute.
            event_id=str(uuid.uuid5(_IDS, f"{s.inbox_bucket}/{item.key}/{item.etag}")),
            extensions=current_trace_extensions(),
        ))
    with rt.pool.connection() as conn:
        with conn.transaction():
            fresh = [event["id"] for event in events if outbox.record(conn, event)]
        outbox.send(conn, s.broker_url, fresh)
    by_id = {event["id"]: event["subject"] for event in events}
    forgotten = [by_id[event_id] for event_id in fresh]
    return forgotten
