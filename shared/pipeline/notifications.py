"""Push notifications to Subscriptions: when a product is published (or evicted), every
running subscription to that event whose FilterParam matches the product gets a POST

    {"@odata.context": "$metadata#Notification", "SubscriptionEvent": "created",
     "ProductId": ..., "ProductName": ..., "SubscriptionId": ..., "NotificationDate": ...}

at its NotificationEndpoint (HTTP Basic when it has a username), and every attempt is a
row in `notifications`.

Guarantees and choices:
- Exactly one delivered notification per subscription and product, even when the event
  is delivered again or twice at once: a delivery holds an advisory lock on (subscription,
  product) and first looks for a delivered row (the unique index
  `notifications_delivered_once` backs this up).
- Retries with exponential backoff, bounded: AUXIP_NOTIFY_ATTEMPTS (5) attempts, waiting
  AUXIP_NOTIFY_BACKOFF_S (0.5 s) then doubling: 0.5+1+2+4 = 7.5 s of waits, plus at most
  AUXIP_NOTIFY_TIMEOUT_S (5 s) per attempt. A 4xx other than 408/425/429 (and any 3xx:
  redirects are not followed) is not retried: it will not change by itself.
- An endpoint still failing after its attempts is recorded `failed` and the event counts
  as handled: raising would make the broker redeliver, and a broken endpoint would hold
  up the event for every subscription. A redelivery (replay) still retries only the
  subscriptions without a delivered row.
- Paused and cancelled subscriptions get nothing, then or later (no backfill on resume);
  a subscription paused or deleted during the retries stops being retried.
- Deliveries to different subscriptions run in parallel (AUXIP_NOTIFY_CONCURRENCY, 4), so
  one slow endpoint does not delay the others.
- No POST to an address shared.adapters.endpoint_policy denies (loopback, link-local,
  private, ...): at each attempt the client (shared.adapters.outbound_http) resolves the
  endpoint's host once, judges every address and connects only to those, so a DNS answer
  changed in between (rebinding) cannot slip through; a refused endpoint is recorded
  `failed` once ("endpoint refused: <code>: <reason>") and not retried. Redirects are not
  followed: a 3xx is a failed attempt naming its Location.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import psycopg
from psycopg_pool import ConnectionPool
from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.adapters import endpoint_policy, endpoint_secrets, outbound_http
from shared.adapters.catalogue import notifications as attempts_table
from shared.adapters.catalogue import restore
from shared.adapters.catalogue import subscriptions as subscriptions_table
from shared.adapters.telemetry import security_events
from shared.core.s1time import format_odata
from shared.odata import Bool, ODataError, matches, parse_filter

log = logging.getLogger(__name__)

_RETRYABLE_4XX = {408, 425, 429}
_LOCK_POLL_S = 0.2


class NotifySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUXIP_", extra="ignore")

    notify_attempts: int = 5
    notify_backoff_s: float = 0.5
    notify_timeout_s: float = 5.0
    notify_concurrency: int = 4
    secret_keys: SecretStr | None = None  # opens the endpoint passwords prip sealed

    @field_validator("notify_attempts", "notify_concurrency")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator("notify_backoff_s", "notify_timeout_s")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must not be negative")
        return value

    def longest_delivery_s(self) -> float:
        waits = sum(self.notify_backoff_s * 2**i for i in range(self.notify_attempts - 1))
        return waits + self.notify_attempts * self.notify_timeout_s


@dataclass(frozen=True)
class Delivery:
    subscription_id: UUID
    outcome: str  # delivered | failed | already_delivered | stopped | busy
    attempts: int  # made now


@lru_cache(maxsize=4096)
def _filter_of(text: str) -> Bool | None:
    """Parsed once per process per distinct FilterParam; None matches everything."""
    return parse_filter(text) if text.strip() else None


def wanted_by(subscription: Mapping[str, Any], product: Mapping[str, Any]) -> bool:
    try:
        node = _filter_of(subscription["filter_param"] or "")
    except ODataError as error:  # checked at creation; only a grammar change gets here
        log.warning("subscription %s: FilterParam no longer parses (%s); skipped",
                    subscription["id"], error.message)
        return False
    return node is None or matches(node, product)


def body(event: str, product: Mapping[str, Any], subscription_id: UUID,
         when: datetime) -> dict[str, str]:
    return {
        "@odata.context": "$metadata#Notification",
        "SubscriptionEvent": event,
        "ProductId": str(product["id"]),
        "ProductName": product["name"] or product["logical_name"],
        "SubscriptionId": str(subscription_id),
        "NotificationDate": format_odata(when),
    }


def notify(pool: ConnectionPool, settings: NotifySettings, event: str, product_id: UUID, *,
           http: httpx.Client, sleep: Callable[[float], None] = time.sleep) -> list[Delivery]:
    """Notify every subscription to `event` (created/deleted) that wants this product;
    `http` (`client()`) judges the addresses it connects to by the outbound policy."""
    with pool.connection() as conn:
        product = restore.get_or_restore(conn, product_id)
        if product is None:
            log.warning("product %s is not in the catalogue: nobody to notify", product_id)
            return []
        if event == subscriptions_table.CREATED and product["status"] != "published":
            log.info("product %s is %s, no longer published: not notified", product_id,
                     product["status"])
            return []
        candidates = subscriptions_table.running(conn, event)
    chosen = [s for s in candidates if wanted_by(s, product)]
    if not chosen:
        return []
    deliver = _Deliverer(pool, settings, http, sleep, event, product)
    # Each worker holds a pooled connection for its whole delivery: leave one for the rest
    # of the process (AUXIP_DB_POOL_MAX is small in production).
    workers_wanted = min(settings.notify_concurrency, len(chosen), max(1, pool.max_size - 1))
    with ThreadPoolExecutor(max_workers=workers_wanted, thread_name_prefix="notify") as workers:
        return list(workers.map(deliver, chosen))


@dataclass(frozen=True)
class _Deliverer:
    pool: ConnectionPool
    settings: NotifySettings
    http: httpx.Client
    sleep: Callable[[float], None]
    event: str
    product: Mapping[str, Any]

    def __call__(self, subscription: Mapping[str, Any]) -> Delivery:
        sid: UUID = subscription["id"]
        key = f"notification:{sid}:{self.product['id']}"
        with self.pool.connection() as conn:
            if not self._lock(conn, key):
                log.warning("subscription %s: another delivery of product %s is still running",
                            sid, self.product["id"])
                return Delivery(sid, "busy", 0)
            try:
                return self._deliver(conn, subscription)
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))

    def _lock(self, conn: psycopg.Connection, key: str) -> bool:
        # Another process delivering the same event: wait for it to end, then see whether
        # it delivered. Polled, so a stuck peer cannot hold this worker for ever.
        deadline = time.monotonic() + self.settings.longest_delivery_s() + 5
        while True:
            row = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
                               (key,)).fetchone()
            if row and row[0]:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(_LOCK_POLL_S)

    def _deliver(self, conn: psycopg.Connection, subscription: Mapping[str, Any]) -> Delivery:
        sid, pid = subscription["id"], self.product["id"]
        if attempts_table.delivered(conn, sid, pid):
            return Delivery(sid, "already_delivered", 0)
        first = attempts_table.attempts_so_far(conn, sid, pid) + 1
        auth = None
        if subscription["notification_username"] is not None:
            try:
                password = endpoint_secrets.unseal(subscription["notification_password"] or "",
                                                   self.settings.secret_keys)
            except endpoint_secrets.SecretsUnavailable as error:
                # A configuration fault no retry mends: recorded, then the operator fixes the
                # keys and replays the event (the delivered-once index still holds).
                log.error("subscription %s: %s", sid, error)
                try:
                    attempts_table.record(conn, sid, pid, attempt=first,
                                          status=attempts_table.FAILED, http_status=None,
                                          error=f"endpoint password unavailable: {error}")
                except psycopg.errors.ForeignKeyViolation:
                    return Delivery(sid, "stopped", 0)  # deleted meanwhile
                return Delivery(sid, "failed", 0)
            auth = (subscription["notification_username"], password)
        made = 0
        for number in range(self.settings.notify_attempts):
            if number > 0:
                self.sleep(self.settings.notify_backoff_s * 2 ** (number - 1))
                if not _still_running(conn, sid):
                    return Delivery(sid, "stopped", made)
            when = datetime.now(UTC)
            refused: endpoint_policy.EndpointRefused | None = None
            try:
                # The client resolves the name and judges every address as it connects
                # (outbound_http), each attempt afresh: no separate look-up before it.
                status, error = _post(self.http, subscription["notification_endpoint"],
                                      body(self.event, self.product, sid, when), auth,
                                      self.settings.notify_timeout_s)
            except endpoint_policy.EndpointRefused as at_connect:
                refused = at_connect
            if refused is not None:
                # Not retried: the address is the subscriber's choice, not a passing fault.
                log.warning("subscription %s: product %s not sent, endpoint refused: %s",
                            sid, pid, _refusal(refused))
                security_events.emit(
                    "auxip.endpoint.refused", "network", "failure", event_type="denied",
                    reason=refused.reason, code=refused.code, owner=subscription.get("owner"),
                    via="notification", subscription_id=str(sid), product_id=str(pid),
                    endpoint=_without_userinfo(subscription["notification_endpoint"]))
                try:
                    attempts_table.record(conn, sid, pid, attempt=first + number,
                                          status=attempts_table.FAILED, http_status=None,
                                          error=f"endpoint refused: {_refusal(refused)}")
                except psycopg.errors.ForeignKeyViolation:
                    return Delivery(sid, "stopped", made)  # deleted meanwhile
                return Delivery(sid, "failed", made)
            made += 1
            ok = status is not None and 200 <= status < 300
            try:
                attempts_table.record(conn, sid, pid, attempt=first + number,
                                      status=attempts_table.DELIVERED if ok
                                      else attempts_table.FAILED,
                                      http_status=status, error=error)
            except psycopg.errors.ForeignKeyViolation:
                return Delivery(sid, "stopped", made)  # deleted meanwhile
            if ok:
                subscriptions_table.mark_notified(conn, sid, when)
                return Delivery(sid, "delivered", made)
            if status is not None and 300 <= status < 500 and status not in _RETRYABLE_4XX:
                break
        log.warning("subscription %s: product %s not delivered to its endpoint after %d"
                    " attempt(s)", sid, pid, made)
        return Delivery(sid, "failed", made)


def _without_userinfo(url: str) -> str:
    """The endpoint for a log: scheme, host, port and path, never credentials."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"[:500]
    except ValueError:
        return "(unparsable URL)"


def _refusal(refused: endpoint_policy.EndpointRefused) -> str:
    return f"{refused.code}: {refused.reason}"


def _still_running(conn: psycopg.Connection, subscription_id: UUID) -> bool:
    row = conn.execute("SELECT status FROM subscriptions WHERE id = %s",
                       (subscription_id,)).fetchone()
    return row is not None and row[0] == subscriptions_table.RUNNING


def _post(http: httpx.Client, url: str, payload: dict[str, str],
          auth: tuple[str, str] | None, timeout: float) -> tuple[int | None, str | None]:
    """(HTTP status or None, error text or None) of one attempt; never raises."""
    try:
        response = http.post(url, json=payload, auth=auth, timeout=timeout,
                             follow_redirects=False)
    except httpx.HTTPError as error:
        return None, f"{type(error).__name__}: {error}"
    except endpoint_policy.EndpointRefused:
        raise
    except Exception as error:  # an endpoint URL httpx cannot even use
        return None, f"{type(error).__name__}: {error}"
    if 200 <= response.status_code < 300:
        return response.status_code, None
    if response.is_redirect:
        # Not followed: the Location could be anywhere, the policy judged only the endpoint.
        where = response.headers.get("Location", "")[:200]
        return response.status_code, f"HTTP {response.status_code}: redirect to {where}" \
                                     " not followed"
    return response.status_code, f"HTTP {response.status_code}"


def client() -> httpx.Client:
    """The HTTP client notify uses (one per process; its connection pool is thread-safe);
    it connects only to addresses the outbound policy allows."""
    return outbound_http.client(headers={"User-Agent": "auxip-notify"})
