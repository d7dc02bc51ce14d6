"""One KafkaSource record to its sink, as the source's `delivery` spec says.

The same rules as the router's Triggers (devstack/router/dispatch.py), which are Knative's:
2xx is delivered; no answer, 5xx, 404, 408, 409 and 429 are retried `retry` times after
the backoff; then, or at once for any other status, the event goes to the dead-letter sink
(with knativeerrordest, knativeerrorcode, knativeerrordata and the sink's `kne-*` headers),
retried the same way. A sink's reply is ignored: a source has nowhere to send it.

Where Knative's dispatcher logs a record that the dead-letter sink did not take either (or
that failed with no dead-letter sink) and commits its offset, this keeps it first as a
failed delivery in router.deliveries (`python -m devstack.router --failed`, `--redeliver`):
nothing consumed is dropped.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable

from devstack.router import logs
from devstack.router.delivery import Response, dead_letter_extensions, is_retryable
from devstack.router.store import Failure, Store
from devstack.router.topology import Delivery, Subscription
from devstack.router.wire import Event
from shared.adapters.catalogue.dead_letters import ATTEMPTS as ATTEMPTS_EXTENSION

Post = Callable[..., Response]  # Dispatcher.post: (url, event, timeout, *, prefer_reply)
KEEP_RETRY_MAX_S = 30.0


class Outcome(enum.Enum):
    DELIVERED = "delivered"  # the sink took it
    DEAD = "dead"  # the dead-letter sink took it
    FAILED = "failed"  # neither did: kept in router.deliveries
    ABANDONED = "abandoned"  # the consumer stops: not done, delivered again by the next one


def deliver(event: Event, subscription: Subscription, post: Post, store: Store,
            stopping: threading.Event, fields: dict) -> Outcome:
    delivery = subscription.delivery
    response, attempts = _attempts(subscription.url, event, delivery, post, stopping)
    if response is None:
        return Outcome.ABANDONED
    log = fields | {"url": subscription.url, "http_status": response.status, "attempts": attempts}
    if response.ok:
        logs.info("delivered", status="delivered", **log)
        return Outcome.DELIVERED
    failure = response.failure()
    stage = "subscriber"
    sink = delivery.dead_letter
    if sink is not None:
        extensions = dead_letter_extensions(
            subscription.url, failure.status, failure.body,
            {**(failure.extensions or {}), ATTEMPTS_EXTENSION: str(attempts)})
        logs.warning("attempts exhausted, to dead-letter sink", status="dead-letter",
                     error=failure.error, **log)
        answer, attempts = _attempts(sink.url, event.with_extensions(extensions), delivery, post,
                                     stopping)
        if answer is None:
            return Outcome.ABANDONED
        if answer.ok:
            logs.warning("delivered to dead-letter sink", status="dead", **fields,
                         url=sink.url, http_status=answer.status)
            return Outcome.DEAD
        failure, stage = answer.failure(), "deadletter"
    if not _keep(store, event, subscription, stage, attempts, failure, stopping):
        return Outcome.ABANDONED
    logs.error("delivery failed, kept in router.deliveries", status="failed",
               error=failure.error, **log)
    return Outcome.FAILED


def _attempts(url: str, event: Event, delivery: Delivery, post: Post,
              stopping: threading.Event) -> tuple[Response | None, int]:
    """The last response and how many attempts it took; None when stopping cut it short."""
    attempt = 1
    while True:
        response = post(url, event, delivery.timeout, prefer_reply=False)
        if response.ok or not is_retryable(response.status) or attempt > delivery.retry:
            return response, attempt
        if stopping.wait(delivery.backoff(attempt)):
            return None, attempt
        attempt += 1


def _keep(store: Store, event: Event, subscription: Subscription, stage: str, attempts: int,
          failure: Failure, stopping: threading.Event) -> bool:
    """Write the failed delivery, retrying while the database is unreachable: the offset is
    committed only once it is written."""
    wait = 1.0
    while True:
        try:
            store.record_failed(event, subscription, stage, attempts, failure)
            return True
        except Exception:
            logs.exception("could not keep a failed record; retrying", event_id=event.id,
                           retry_in_s=wait)
        if stopping.wait(wait):
            return False
        wait = min(wait * 2, KEEP_RETRY_MAX_S)
