"""Dispatch: claim due deliveries, POST them in binary mode, record what happened.

One claimer thread takes as many due deliveries as there are idle workers (FOR UPDATE SKIP
LOCKED, so several routers can share the tables) and hands them to worker threads. Each
worker keeps its own httpx transport, i.e. keep-alive connections to the subscribers it
has talked to (a bare transport rather than httpx.Client because the client's per-request
work - URL merging, cookies, auth, hooks - costs more CPU than the rest of a delivery, and
one pool per worker because httpcore checks every idle connection of a pool on each
request).

The claimer sleeps on a condition variable: woken by the ingress in this process, by NOTIFY
from other processes, by a worker that freed a slot or scheduled a retry, and otherwise
when the earliest pending delivery falls due (at most `poll_s` apart: one cheap indexed
query per idle second). Successful deliveries are recorded in batches by a completer
thread; a crash before that write only means the event is delivered again.

Outcome of an attempt, as the Knative data-plane contract and the Kafka Broker have it:
- 2xx: delivered. A reply event (ce- headers or structured body, any 2xx but 202) is
  ingested into the Trigger's broker in the same transaction that marks the delivery done.
- no response (refused, reset, timeout), 5xx, 404, 408, 409, 429: retried after the
  backoff while retries remain;
- any other status (400, 401, 3xx, ...) is not retried.
When attempts are over the event goes to the dead-letter sink with knativeerrordest,
knativeerrorcode (when a response came) and knativeerrordata (the response body's first KiB,
base64) plus the subscriber's `kne-*` response headers as extensions; the dead-letter sink
is retried with the same policy. With no sink, or when the sink also fails, the delivery is
marked failed and stays in router.deliveries for operators.
"""

from __future__ import annotations

import heapq
import math
import queue
import threading
import time
from collections.abc import Callable

import httpx
import psycopg

from devstack.router import logs, wire
from devstack.router.delivery import (
    Response,
    dead_letter_extensions,
    is_retryable,
    new_transport,
    post,
)
from devstack.router.store import CHANNEL, Claimed, Failure, Reply, Store, application_name
from devstack.router.topology import Subscription, Topology


class Dispatcher:
    def __init__(
        self,
        store: Store,
        topology: Topology,
        *,
        workers: int,
        poll_s: float,
        database_url: str | None = None,
        transport_factory: Callable[[], httpx.BaseTransport] = new_transport,
    ) -> None:
        self.store = store
        self.topology = topology
        self.transport_factory = transport_factory
        self._local = threading.local()
        self._transports: list[httpx.BaseTransport] = []
        self._urls: dict[str, httpx.URL] = {}
        self.workers = max(1, workers)
        self.poll_s = poll_s
        self.lease_s = topology.lease_seconds()
        self.database_url = database_url
        self._cv = threading.Condition()
        self._free = self.workers
        self._kicked = True  # look for work left by a previous run at once
        self._due: list[float] = []  # heap: monotonic times when known deliveries fall due
        self._poll_at = 0.0
        self._stopping = False
        self._queue: queue.SimpleQueue[Claimed | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[tuple[Claimed, int, dict] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._completer: threading.Thread | None = None

    # -- control ----------------------------------------------------------------------------

    def start(self) -> None:
        self._threads.append(threading.Thread(target=self._claim_loop, name="router-claimer", daemon=True))
        for i in range(self.workers):
            self._threads.append(threading.Thread(target=self._work_loop, name=f"router-worker-{i}", daemon=True))
        if self.database_url:
            self._threads.append(threading.Thread(target=self._listen_loop, name="router-listener", daemon=True))
        self._completer = threading.Thread(target=self._complete_loop, name="router-completer", daemon=True)
        for thread in [*self._threads, self._completer]:
            thread.start()

    def stop(self, grace_s: float = 10.0) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        claimer = self._threads[0] if self._threads else None
        if claimer:
            claimer.join(timeout=5)
        # Claims not yet picked up by a worker go back to the table untouched.
        unstarted: list[Claimed] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                unstarted.append(item)
        try:
            self.store.release(unstarted)
        except Exception:
            logs.exception("could not release unstarted claims; their lease will expire")
        for _ in range(self.workers):
            self._queue.put(None)
        deadline = time.monotonic() + grace_s
        for thread in self._threads[1:]:
            if thread.name != "router-listener":  # it notices _stopping within its timeout
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._done.put(None)
        if self._completer:
            self._completer.join(timeout=max(1.0, deadline - time.monotonic()))
        for transport in self._transports:
            transport.close()

    def kick(self) -> None:
        """New deliveries are due now."""
        with self._cv:
            self._kicked = True
            self._cv.notify_all()

    def due_in(self, seconds: float) -> None:
        """A delivery falls due in `seconds`."""
        with self._cv:
            heapq.heappush(self._due, time.monotonic() + seconds)
            self._cv.notify_all()

    # -- claimer ----------------------------------------------------------------------------

    def _claim_loop(self) -> None:
        while True:
            with self._cv:
                while True:
                    if self._stopping:
                        return
                    now = time.monotonic()
                    next_at = min(self._due[0] if self._due else math.inf, self._poll_at)
                    if self._free > 0 and (self._kicked or now >= next_at):
                        break
                    self._cv.wait(None if self._free == 0 else next_at - now)
                self._kicked = False
                # Deadlines passed now are served by this claim (their rows are due in the
                # database: it stamped them before the deadline was registered here).
                while self._due and self._due[0] <= now:
                    heapq.heappop(self._due)
                limit = self._free
            try:
                claims = self.store.claim(limit, self.lease_s)
                # Only an idle router asks when the next delivery falls due: retries this
                # router schedules are in self._due, other routers' are found by the poll.
                due = self.store.seconds_until_due() if not claims else None
            except Exception:
                logs.exception("claiming deliveries failed; retrying in 1s")
                self.due_in(1.0)
                continue
            with self._cv:
                self._free -= len(claims)
                if len(claims) >= limit:
                    self._kicked = True  # probably more due: claim again when a worker frees
                else:
                    # Due now yet not claimed: held by another router for a moment.
                    wait = self.poll_s if due is None else min(max(due, 0.01), self.poll_s)
                    self._poll_at = time.monotonic() + wait
            for claim in claims:
                self._queue.put(claim)

    def _listen_loop(self) -> None:
        # Other router processes (or tools) announce new deliveries with NOTIFY; this
        # connection also keeps the instance visible in pg_stat_activity while it lives.
        assert self.database_url is not None
        while not self._stopping:
            try:
                with psycopg.connect(
                    self.database_url, autocommit=True, application_name=application_name(self.store.instance)
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._stopping:
                        for notify in conn.notifies(timeout=0.5):
                            if notify.payload != self.store.instance:
                                self.kick()
            except Exception:
                if not self._stopping:
                    logs.exception("LISTEN connection lost; reconnecting in 1s")
                    time.sleep(1.0)

    # -- workers ----------------------------------------------------------------------------

    def _work_loop(self) -> None:
        while True:
            claim = self._queue.get()
            if claim is None:
                return
            try:
                self._handle(claim)
            except Exception as error:
                logs.exception("delivery failed inside the router", delivery=claim.id, **_event_fields(claim))
                try:
                    self.store.retry_later(claim, 1.0, Failure(None, f"router error: {error!r}"))
                    self.due_in(1.0)
                except Exception:
                    logs.exception("could not reschedule; the lease will expire", delivery=claim.id)
            finally:
                with self._cv:
                    self._free += 1
                    self._cv.notify_all()

    def _handle(self, claim: Claimed) -> None:
        subscription = self.topology.subscriptions.get(claim.trigger)
        if subscription is None:
            failure = Failure(None, f"trigger {claim.trigger} is no longer in the manifests")
            self.store.failed(claim, failure)
            logs.error("delivery failed", status="failed", error=failure.error, **_event_fields(claim))
            return
        if claim.stage == "subscriber":
            self._to_subscriber(claim, subscription)
        else:
            self._to_dead_letter_sink(claim, subscription)

    def _to_subscriber(self, claim: Claimed, subscription: Subscription) -> None:
        delivery = subscription.delivery
        response = self.post(subscription.url, claim.event, delivery.timeout, prefer_reply=subscription.broker is not None)
        fields = _event_fields(claim) | {"url": subscription.url, "http_status": response.status,
                                          "duration_ms": round(response.seconds * 1000, 1)}
        if response.ok:
            reply = self._reply(response, subscription, claim)
            if reply is None:
                self._done.put((claim, response.status or 0, fields))
            elif self.store.delivered(claim, response.status or 0, reply):
                logs.info("delivered", status="delivered", reply_id=reply.event.id, **fields)
                self.kick()
            return
        failure = response.failure()
        if is_retryable(response.status) and claim.attempt <= delivery.retry:
            delay = delivery.backoff(claim.attempt)
            if self.store.retry_later(claim, delay, failure):
                self.due_in(delay)
                logs.warning("attempt failed, retrying", status="retry", error=failure.error,
                             retry_in_s=round(delay, 3), **fields)
        elif delivery.dead_letter is not None:
            if self.store.to_dead_letter(claim, failure):
                self.kick()
                logs.warning("attempts exhausted, to dead-letter sink", status="dead-letter",
                             error=failure.error, **fields)
        elif self.store.failed(claim, failure):
            logs.error("delivery failed, no dead-letter sink", status="failed", error=failure.error, **fields)

    def _to_dead_letter_sink(self, claim: Claimed, subscription: Subscription) -> None:
        delivery = subscription.delivery
        sink = delivery.dead_letter
        if sink is None:
            failure = Failure(None, "the dead-letter sink is no longer in the manifests")
            self.store.failed(claim, failure)
            logs.error("delivery failed", status="failed", error=failure.error, **_event_fields(claim))
            return
        extensions = dead_letter_extensions(claim.subscriber, claim.error_code, claim.error_data,
                                            claim.error_extensions)
        response = self.post(sink.url, claim.event.with_extensions(extensions), delivery.timeout, prefer_reply=False)
        fields = _event_fields(claim) | {"url": sink.url, "http_status": response.status,
                                          "duration_ms": round(response.seconds * 1000, 1)}
        if response.ok:
            if self.store.dead(claim, response.status or 0):
                logs.warning("delivered to dead-letter sink", status="dead", **fields)
            return
        failure = response.failure()
        if is_retryable(response.status) and claim.attempt <= delivery.retry:
            delay = delivery.backoff(claim.attempt)
            if self.store.retry_later(claim, delay, failure):
                self.due_in(delay)
                logs.warning("dead-letter sink attempt failed, retrying", status="retry",
                             error=failure.error, retry_in_s=round(delay, 3), **fields)
        elif self.store.failed(claim, failure):
            logs.error("dead-letter sink failed too", status="failed", error=failure.error, **fields)

    def _complete_loop(self) -> None:
        while True:
            first = self._done.get()
            batch = [first] if first is not None else []
            stopping = first is None
            while len(batch) < 500:
                try:
                    item = self._done.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
            for attempt in range(5):
                try:
                    self.store.delivered_many([(claim, status) for claim, status, _ in batch])
                    break
                except Exception:
                    logs.exception("recording deliveries failed", count=len(batch), attempt=attempt + 1)
                    time.sleep(min(2.0**attempt, 10.0))
            else:
                logs.error("deliveries not recorded; they will be delivered again", count=len(batch))
            for _, _, fields in batch:
                logs.info("delivered", status="delivered", **fields)
            if stopping:
                return

    def _reply(self, response: Response, subscription: Subscription, claim: Claimed) -> Reply | None:
        if subscription.broker is None or response.status == 202 or not wire.is_cloudevent(response.headers):
            return None
        try:
            event = wire.parse(response.headers, response.body)
        except wire.WireError as error:
            logs.warning("reply is not a valid CloudEvent, ignored", error=str(error), **_event_fields(claim))
            return None
        targets = self.topology.route(subscription.broker, event.attributes)
        if not targets:
            logs.info("reply matched no trigger", reply_id=event.id, reply_type=event.type, **_event_fields(claim))
            return None
        return Reply(event, subscription.broker, targets)

    def post(self, url: str, event: wire.Event, timeout: float, *, prefer_reply: bool) -> Response:
        target = self._urls.get(url)
        if target is None:
            target = self._urls[url] = httpx.URL(url)
        return post(self._transport(), target, event, timeout, prefer_reply=prefer_reply)


    def _transport(self) -> httpx.BaseTransport:
        transport = getattr(self._local, "transport", None)
        if transport is None:
            transport = self._local.transport = self.transport_factory()
            with self._cv:
                self._transports.append(transport)
        return transport


def _event_fields(claim: Claimed) -> dict:
    attributes = claim.event.attributes
    return {
        "event_id": attributes.get("id"),
        "type": attributes.get("type"),
        "subject": attributes.get("subject"),
        "trigger": claim.trigger,
        "attempt": claim.attempt,
        "stage": claim.stage,
    }
