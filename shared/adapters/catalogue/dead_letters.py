"""Events the broker gave up delivering (its deadLetterSink), kept for operators."""

from __future__ import annotations

import base64
import json

import psycopg
from cloudevents.http import CloudEvent

from events.bindings import to_json

# Extensions Knative adds to a dead-lettered event.
DESTINATION = "knativeerrordest"
CODE = "knativeerrorcode"
DATA = "knativeerrordata"
# How many deliveries were made: Knative does not say, auxip's local router does. Without
# it, AUXIP_DEAD_LETTER_ATTEMPTS (1 + the Broker's delivery.retry, in the ConfigMap).
ATTEMPTS = "auxipattempts"


def record(conn: psycopg.Connection, event: CloudEvent,
           policy_attempts: int | None = None) -> bool:
    """Keep the event once per (event id, subscriber) until it is replayed, with the number
    of delivery attempts its extension gives, else `policy_attempts`."""
    subscriber = event.get(DESTINATION)
    error = _describe(event.get(CODE), event.get(DATA))
    carried = str(event.get(ATTEMPTS) or "")
    attempts = int(carried) if carried.isdigit() else policy_attempts
    row = conn.execute(
        "INSERT INTO dead_letters (event_id, type, subject, event, subscriber, error, attempts)"
        " SELECT %s, %s, %s, %s, %s, %s, %s WHERE NOT EXISTS (SELECT 1 FROM dead_letters"
        "  WHERE event_id = %s AND subscriber IS NOT DISTINCT FROM %s AND replayed_at IS NULL)"
        " RETURNING id",
        (event["id"], event["type"], event.get("subject"), json.dumps(to_json(event)),
         subscriber, error, attempts, event["id"], subscriber),
    ).fetchone()
    return row is not None


def _describe(code: str | None, data: str | None) -> str | None:
    if code is None and data is None:
        return None
    text = ""
    if data:
        try:
            text = base64.b64decode(data).decode("utf-8", "replace")
        except ValueError:
            text = data
    return f"HTTP {code}: {text}".strip() if code else text


def mark_replayed(conn: psycopg.Connection, event_ids: list[str]) -> int:
    """The waiting dead letters of these events were sent again (by the stalled-product
    sweep): replayed, so a new failure is recorded anew instead of vanishing into them."""
    return conn.execute(
        "UPDATE dead_letters SET replayed_at = now()"
        " WHERE event_id = ANY(%s) AND replayed_at IS NULL", (event_ids,),
    ).rowcount
