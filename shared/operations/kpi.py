"""The service report for a period, from the catalogue's own timestamps (not from metrics,
which restart with their process): per product type, how many arrived and were published
and how fast; rejections by reason; the transfers' success rate.

Timeliness is publication_date - origin_date (origin: the product reached the interface
point) of the products published in the period. Percentiles are nearest-rank
(`percentile_disc`): every figure is the delay of a real product, and "p95 = 12 min" reads
"95 % of the products were published within 12 min".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import dict_row


@dataclass(frozen=True)
class TypeFigures:
    product_type: str
    arrived: int  # origin_date in the period
    published: int  # publication_date in the period
    timeliness_p50_s: float | None
    timeliness_p95_s: float | None
    timeliness_max_s: float | None
    within_target: int | None  # published within `target_s` (when a target was given)


@dataclass(frozen=True)
class TransferFigures:
    route: str
    completed: int
    failed: int

    @property
    def success_rate(self) -> float | None:
        done = self.completed + self.failed
        return self.completed / done if done else None


@dataclass(frozen=True)
class Report:
    since: datetime
    until: datetime
    target_s: float | None
    types: list[TypeFigures]
    rejections: dict[str, int]
    transfers: list[TransferFigures]

    @property
    def transfer_success_rate(self) -> float | None:
        completed = sum(t.completed for t in self.transfers)
        done = completed + sum(t.failed for t in self.transfers)
        return completed / done if done else None


def report(conn: psycopg.Connection, since: datetime, until: datetime,
           target_s: float | None = None) -> Report:
    """Figures for [since, until)."""
    period = {"since": since, "until": until, "target": target_s}
    cursor = conn.cursor(row_factory=dict_row)
    types = cursor.execute(
        """
        WITH delays AS (
            SELECT product_type, extract(epoch FROM publication_date - origin_date) AS s
            FROM products
            WHERE publication_date >= %(since)s AND publication_date < %(until)s
        ), arrivals AS (
            SELECT product_type, count(*) AS n FROM products
            WHERE origin_date >= %(since)s AND origin_date < %(until)s GROUP BY 1
        ), timeliness AS (
            SELECT product_type, count(*) AS n,
                   percentile_disc(0.5) WITHIN GROUP (ORDER BY s) AS p50,
                   percentile_disc(0.95) WITHIN GROUP (ORDER BY s) AS p95,
                   max(s) AS worst,
                   count(*) FILTER (WHERE s <= %(target)s::float8) AS on_time
            FROM delays GROUP BY 1
        )
        SELECT coalesce(a.product_type, t.product_type) AS product_type,
               coalesce(a.n, 0) AS arrived, coalesce(t.n, 0) AS published,
               t.p50, t.p95, t.worst, t.on_time
        FROM arrivals a FULL JOIN timeliness t USING (product_type)
        ORDER BY 1
        """, period).fetchall()
    rejections = cursor.execute(
        "SELECT reason, count(*) AS n FROM rejections"
        " WHERE rejected_at >= %(since)s AND rejected_at < %(until)s GROUP BY 1 ORDER BY 2 DESC, 1",
        period).fetchall()
    transfers = cursor.execute(
        "SELECT route, count(*) FILTER (WHERE status = 'completed') AS completed,"
        " count(*) FILTER (WHERE status = 'failed') AS failed FROM transfers"
        " WHERE finished_at >= %(since)s AND finished_at < %(until)s GROUP BY 1 ORDER BY 1",
        period).fetchall()
    return Report(
        since=since, until=until, target_s=target_s,
        types=[TypeFigures(r["product_type"], r["arrived"], r["published"], _float(r["p50"]),
                           _float(r["p95"]), _float(r["worst"]),
                           r["on_time"] if target_s is not None and r["published"] else None)
               for r in types],
        rejections={r["reason"]: r["n"] for r in rejections},
        transfers=[TransferFigures(r["route"], r["completed"], r["failed"]) for r in transfers],
    )


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
