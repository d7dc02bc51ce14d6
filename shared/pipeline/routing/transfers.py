"""The route step: a published product goes to the target of every route whose rule it
matches; each (route, product) is one row of `transfers`.

Guarantees:
- Once per route and product: UNIQUE (route, product_id) and a completed row is never
  attempted again, so a redelivered `product.published` transfers nothing twice. One
  attempt at a time per transfer (a session advisory lock, dropped with a crashed
  process's connection: the sweep then takes the transfer up again).
- The bytes are read from the archive (distribution_key) into a temporary file and
  checked against the catalogue's size and MD5 before anything is sent; the target then
  verifies what it stored (targets/). Only then is the transfer `completed`, with
  `transfer.completed` in the same transaction (outbox).
- A failed attempt is retried with exponential backoff (the route's `retry`): within the
  same invocation while the waits stay under AUXIP_ROUTE_INLINE_RETRY_S, later by the
  sweep (`sweep`, run by a PingSource). After `retry.attempts` the transfer is `failed`,
  with `transfer.failed` and a reason code; never `completed` with bytes that differ.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any
from uuid import UUID

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from events import envelope, types
from events.products import ProductPublished
from events.transfers import TransferCompleted, TransferFailed
from shared.adapters import outbox, storage
from shared.adapters.catalogue import products as products_table
from shared.adapters.catalogue import restore
from shared.adapters.catalogue import routes as routes_table
from shared.adapters.catalogue import sources as sources_table
from shared.adapters.catalogue import transfers as transfers_table
from shared.adapters.runtime import Runtime
from shared.adapters.telemetry import metrics
from shared.core.checksums import Checksums, Digest
from shared.pipeline.routing import config, rules
from shared.pipeline.routing.config import Route
from shared.pipeline.routing.settings import RoutingSettings
from shared.pipeline.routing.targets import (
    ARCHIVE_UNAVAILABLE,
    CHECKSUM_MISMATCH,
    CONFIG_INVALID,
    PRODUCT_UNAVAILABLE,
    TARGET_DENIED,
    UNEXPECTED,
    Target,
    TransferError,
    open_target,
)

log = logging.getLogger(__name__)

_IDS = uuid.UUID("f4a9e0c3-6d2b-4c1e-8a57-0e9b3d6f2a18")


@dataclass(frozen=True)
class Outcome:
    route: str
    product_id: UUID
    status: str  # completed | failed | pending | already_completed | already_failed | busy
    attempts: int = 0
    detail: str = ""


def transfer_id(route: str, product_id: UUID) -> UUID:
    return uuid.uuid5(_IDS, f"transfer:{route}:{product_id}")


def route_published(rt: Runtime, published: ProductPublished, environ: Mapping[str, str],
                    settings: RoutingSettings, *, sleep: Callable[[float], None] = time.sleep
                    ) -> list[Outcome]:
    """Transfer one published product along every enabled route that wants it."""
    with rt.pool.connection() as conn:
        product = restore.get_or_restore(conn, published.product_id)
        if product is None or product["status"] != "published" or not product["online"]:
            log.info("product %s is not published and online: not routed", published.name)
            return []
        origin = sources_table.origin_of(conn, [product["logical_name"], product["name"]])
        routes = _enabled_routes(conn)
    facts = rules.Facts.of(product, origin)
    outcomes = []
    for route in (r for r in routes if rules.applies(r, facts)):
        with rt.pool.connection() as conn:
            row = transfers_table.create(conn, transfer_id(route.name, product["id"]),
                                         route.name, product["id"],
                                         _where(route, product, rt.settings, environ))
        outcomes.append(_run(rt, route, row, product, environ, settings, sleep))
    return outcomes


def sweep(rt: Runtime, environ: Mapping[str, str], settings: RoutingSettings, *,
          sleep: Callable[[float], None] = time.sleep) -> list[Outcome]:
    """Attempt the pending transfers whose next attempt is due."""
    with rt.pool.connection() as conn:
        due = transfers_table.due(conn, settings.route_sweep_limit)
        routes = {r["name"]: r for r in routes_table.all_routes(conn)}
    # Each route's series at zero from the minute's tick on, before its first transfer.
    for name, stored in routes.items():
        if stored["enabled"]:
            metrics.route_known(name)
    outcomes = []
    for row in due:
        with rt.pool.connection() as conn:
            product = products_table.get(conn, row["product_id"])
        stored = routes.get(row["route"])
        try:
            route = config.route_from_row(stored) if stored else None
        except config.ConfigError as error:
            outcomes.append(_give_up(rt, row, product, CONFIG_INVALID, str(error)))
            continue
        if route is None:
            outcomes.append(_give_up(rt, row, product, CONFIG_INVALID,
                                     f"route {row['route']} no longer exists"))
            continue
        if not route.enabled:
            continue  # kept pending: enabling the route again resumes it
        outcomes.append(_run(rt, route, row, product, environ, settings, sleep))
    return outcomes


def _enabled_routes(conn: psycopg.Connection) -> list[Route]:
    routes = []
    for row in routes_table.enabled_routes(conn):
        try:
            routes.append(config.route_from_row(row))
        except config.ConfigError as error:
            log.error("route %s is not valid and is skipped: %s", row["name"], error)
    return routes


def _where(route: Route, product: Mapping[str, Any], settings: Any,
           environ: Mapping[str, str]) -> str:
    try:
        target = open_target(route.target, settings, environ)
    except config.ConfigError as error:
        return f"{route.target.kind} ({error})"
    try:
        return target.where(product)
    except config.ConfigError as error:
        return f"{route.target.kind} ({error})"
    finally:
        target.close()


def _run(rt: Runtime, route: Route, row: Mapping[str, Any], product: Mapping[str, Any] | None,
         environ: Mapping[str, str], settings: RoutingSettings,
         sleep: Callable[[float], None]) -> Outcome:
    if row["status"] != transfers_table.PENDING:
        return Outcome(route.name, row["product_id"], f"already_{row['status']}",
                       row["attempts"])
    if product is None or product["status"] != "published" or not product["online"]:
        return _give_up(rt, row, product, PRODUCT_UNAVAILABLE,
                        "the product is no longer published and online")
    with _transfer_lock(rt, row["id"]) as conn:
        if conn is None:
            return Outcome(route.name, row["product_id"], "busy")
        current = transfers_table.get(conn, row["id"])
        if current is None or current["status"] != transfers_table.PENDING:
            status = current["status"] if current else "gone"
            return Outcome(route.name, row["product_id"], f"already_{status}")
        if current["next_attempt_at"] > datetime.now(UTC) + timedelta(seconds=1):
            return Outcome(route.name, row["product_id"], "pending", current["attempts"],
                           "next attempt not due yet")
        return _Attempts(rt, conn, route, current, product, environ, settings, sleep).run()


@contextmanager
def _transfer_lock(rt: Runtime, transfer: UUID) -> Iterator[psycopg.Connection | None]:
    key = f"transfer:{transfer}"
    with rt.pool.connection() as conn:
        locked = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
                              (key,)).fetchone()
        if not (locked and locked[0]):
            yield None
            return
        try:
            yield conn
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))


class _Attempts:
    """Attempts of one transfer within one invocation, sharing one copy of the bytes."""

    def __init__(self, rt: Runtime, conn: psycopg.Connection, route: Route,
                 row: Mapping[str, Any], product: Mapping[str, Any],
                 environ: Mapping[str, str], settings: RoutingSettings,
                 sleep: Callable[[float], None]) -> None:
        self.rt, self.conn, self.route, self.row = rt, conn, route, row
        self.product, self.environ, self.sleep = product, environ, sleep
        self.budget = settings.route_inline_retry_s
        self.checksums: Checksums | None = None  # of the bytes in the spool, once read

    def run(self) -> Outcome:
        with tempfile.TemporaryFile(prefix="auxip-route-") as spool:
            while True:
                outcome, wait = self._attempt(spool)
                if outcome is not None:
                    return outcome
                self.budget -= wait
                self.sleep(wait)

    def _attempt(self, spool: IO[bytes]) -> tuple[Outcome | None, float]:
        """One attempt: its outcome, or None and how long to wait before the next one."""
        started = time.monotonic()
        target: Target | None = None
        where, problem = self.row["target"], None
        try:
            target = open_target(self.route.target, self.rt.settings, self.environ)
            where = target.where(self.product)
        except config.ConfigError as error:
            # Retried like any failure: the operator may yet set the missing Secret.
            problem = TransferError(CONFIG_INVALID, str(error))
        attempt = transfers_table.begin_attempt(self.conn, self.row["id"], where)
        try:
            if attempt is None:
                return Outcome(self.route.name, self.row["product_id"], "already_done"), 0.0
            if problem is not None or target is None:
                raise problem or TransferError(CONFIG_INVALID, "no target")
            if self.checksums is None:
                self.checksums = _from_archive(self.rt, self.product, spool)
            target.deliver(self.product, spool, self.checksums)
        except TransferError as error:
            return self._retry_or_fail(error, where, attempt or 0, _ms(started))
        except Exception as error:  # a library failing in its own way: retried all the same
            log.exception("route %s: %s", self.route.name, self.product["name"])
            unexpected = TransferError(UNEXPECTED, f"{type(error).__name__}: {error}")
            return self._retry_or_fail(unexpected, where, attempt or 0, _ms(started))
        finally:
            if target is not None:
                target.close()
        return self._completed(where, attempt, _ms(started), self.checksums), 0.0

    def _retry_or_fail(self, error: TransferError, where: str, attempt: int,
                       duration_ms: int) -> tuple[Outcome | None, float]:
        # A refused address is not retried: only a change of configuration mends it.
        if attempt >= self.route.retry.attempts or error.reason == TARGET_DENIED:
            return self._failed(error.reason, error.detail, where, attempt, duration_ms), 0.0
        delay = self.route.retry.delay(attempt)
        transfers_table.retry_later(self.conn, self.row["id"], error=error.detail[:2000],
                                    reason=error.reason, duration_ms=duration_ms,
                                    at=datetime.now(UTC) + timedelta(seconds=delay))
        log.warning("route %s: %s attempt %d failed (%s), next in %.1f s", self.route.name,
                    self.product["name"], attempt, error.detail, delay)
        if delay > self.budget:  # the sweep takes it from here
            return Outcome(self.route.name, self.row["product_id"], "pending", attempt,
                           error.detail), 0.0
        return None, delay

    def _completed(self, where: str, attempt: int, duration_ms: int,
                   checksums: Checksums) -> Outcome:
        s = self.rt.settings
        now = datetime.now(UTC)
        event = envelope.build(
            types.TRANSFER_COMPLETED,
            TransferCompleted(transfer_id=self.row["id"], route=self.route.name,
                              product_id=self.product["id"], name=self.product["name"],
                              target=where, bytes=checksums.size, attempts=attempt,
                              duration_ms=duration_ms, checksum=checksums.md5,
                              completed_at=now),
            source=f"{s.event_source}/route", subject=self.product["name"],
            event_id=str(uuid.uuid5(_IDS, f"completed:{self.row['id']}")))
        with self.conn.transaction():
            done = transfers_table.complete(self.conn, self.row["id"], size=checksums.size,
                                            duration_ms=duration_ms, checksum=checksums.md5)
            if done is not None:
                outbox.record(self.conn, event)
        if done is not None:
            outbox.send(self.conn, s.broker_url, [event["id"]])
            metrics.transferred(self.route.name, "completed", duration_ms / 1000, checksums.size)
        log.info("route %s: %s -> %s (%d bytes, attempt %d)", self.route.name,
                 self.product["name"], where, checksums.size, attempt)
        return Outcome(self.route.name, self.product["id"], "completed", attempt)

    def _failed(self, reason: str, detail: str, where: str, attempt: int,
                duration_ms: int) -> Outcome:
        return _give_up(self.rt, self.row, self.product, reason, detail, conn=self.conn,
                        attempts=attempt, duration_ms=duration_ms, where=where)


def _give_up(rt: Runtime, row: Mapping[str, Any], product: Mapping[str, Any] | None,
             reason: str, detail: str, *, conn: psycopg.Connection | None = None,
             attempts: int | None = None, duration_ms: int | None = None,
             where: str | None = None) -> Outcome:
    s = rt.settings
    now = datetime.now(UTC)
    name = (product or {}).get("name") or str(row["product_id"])
    event = envelope.build(
        types.TRANSFER_FAILED,
        TransferFailed(transfer_id=row["id"], route=row["route"], product_id=row["product_id"],
                       name=name, target=where or row["target"],
                       attempts=max(attempts or row["attempts"], 1), error=detail[:2000],
                       reason=reason, failed_at=now),
        source=f"{s.event_source}/route", subject=name,
        event_id=str(uuid.uuid5(_IDS, f"failed:{row['id']}:{now.isoformat()}")))

    def record(c: psycopg.Connection) -> Outcome:
        with c.transaction():
            done = transfers_table.fail(c, row["id"], error=detail[:2000], reason=reason,
                                        duration_ms=duration_ms)
            if done is not None:
                outbox.record(c, event)
        if done is None:
            return Outcome(row["route"], row["product_id"], "already_done")
        outbox.send(c, s.broker_url, [event["id"]])
        metrics.transferred(row["route"], "failed", (duration_ms or 0) / 1000)
        log.error("route %s: %s failed for good after %d attempt(s): %s (%s)", row["route"],
                  name, max(attempts or row["attempts"], 1), detail, reason)
        return Outcome(row["route"], row["product_id"], "failed", done["attempts"], detail)

    if conn is not None:
        return record(conn)
    with rt.pool.connection() as fresh:
        return record(fresh)


def _from_archive(rt: Runtime, product: Mapping[str, Any], spool: IO[bytes]) -> Checksums:
    """The product's distribution bytes into `spool`, checked against the catalogue."""
    key = product["distribution_key"]
    if not key:
        raise TransferError(ARCHIVE_UNAVAILABLE, f"{product['name']} has no distribution key")
    digest = Digest()
    spool.seek(0)
    spool.truncate()
    try:
        for chunk in storage.iter_chunks(rt.s3, rt.settings.archive_bucket, key):
            digest.update(chunk)
            spool.write(chunk)
    except (BotoCoreError, ClientError) as error:
        raise TransferError(ARCHIVE_UNAVAILABLE, f"archive {key}: {error}") from None
    spool.flush()
    got = digest.result()
    expected = _catalogue_md5(product)
    if got.size != product["content_length"] or (expected and got.md5 != expected):
        raise TransferError(CHECKSUM_MISMATCH,
                            f"archive {key}: {got.size} bytes, MD5 {got.md5}; the catalogue "
                            f"says {product['content_length']} bytes, MD5 {expected}")
    return got


def _catalogue_md5(product: Mapping[str, Any]) -> str | None:
    for checksum in product.get("checksums") or []:
        if str(checksum.get("Algorithm", "")).upper() == "MD5":
            return str(checksum.get("Value", "")).lower()
    return None


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
