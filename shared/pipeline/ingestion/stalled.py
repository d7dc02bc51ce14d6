"""Products stalled between stages: the event that should move a product left in
`ingested` or `packaged` is sent again by the ingest sweep (AUXIP_STALLED_AFTER_S,
AUXIP_STALLED_RESENDS), so a function down for longer than the Broker's retries heals
without an operator, while a step that keeps failing ends in the dead letters."""

from __future__ import annotations

import logging

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from events.types import PRODUCT_INGESTED, PRODUCT_PACKAGED
from shared.adapters import outbox
from shared.adapters.catalogue import dead_letters

log = logging.getLogger(__name__)


def resend_stalled(pool: ConnectionPool, broker_url: str | None, *, after_s: float,
                   max_resends: int, limit: int = 100) -> list[dict]:
    """Send again the event that should move a product stalled in `ingested` or `packaged`
    for `after_s`: its consumer failed past the Broker's retries (a function down for
    minutes) and the event sits in the dead letters. Handlers are idempotent, so a resend
    that crosses a late success changes nothing. Each event is resent at most
    `max_resends` times, waiting `after_s` doubled after each: a product whose step keeps
    failing is left to the dead letters and its operators, not resent for ever."""
    if not broker_url or max_resends < 1:
        return []
    with pool.connection() as conn, conn.transaction():
        rows = conn.cursor(row_factory=dict_row).execute(
            "SELECT j.* FROM products p JOIN event_journal j"
            " ON j.data ? 'product_id' AND j.data ->> 'product_id' = p.id::text"
            " AND j.type = CASE p.status WHEN 'ingested' THEN %(ingested)s ELSE %(packaged)s END"
            " WHERE p.status IN ('ingested', 'packaged')"
            " AND p.modification_date < clock_timestamp() - make_interval(secs => %(after)s)"
            # Unsent rows are send_pending's; a sent row was sent once plus its resends.
            " AND j.sent_at IS NOT NULL AND j.send_attempts <= %(resends)s"
            " AND j.sent_at < clock_timestamp()"
            "     - make_interval(secs => %(after)s * power(2, j.send_attempts - 1))"
            " ORDER BY p.modification_date LIMIT %(limit)s FOR UPDATE OF j SKIP LOCKED",
            {"ingested": PRODUCT_INGESTED, "packaged": PRODUCT_PACKAGED, "after": after_s,
             "resends": max_resends, "limit": limit},
        ).fetchall()
        for row in rows:
            log.warning("product %s stalled after %s: event %s sent again (resend %d of %d)",
                        row["data"].get("logical_name") or row["subject"], row["type"],
                        row["id"], row["send_attempts"], max_resends)
        # Only what reached the broker leaves the dead letters; a failed resend still
        # counts against the limit (a broker down for long is send_pending's business).
        dead_letters.mark_replayed(conn, outbox.post_rows(conn, broker_url, rows))
    return rows
