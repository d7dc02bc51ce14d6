"""inbox-adapter: S3 notifications (RGW/MinIO webhook, or KafkaSource's
`dev.knative.kafka.event` wrapping MinIO's Kafka record) -> one `file.arrived` per object.

Answers 2xx only once the events are journalled, so the storage retries otherwise.
"""

from __future__ import annotations

import json
import logging

import flask
import functions_framework
from cloudevents.exceptions import GenericException

from events import bindings, envelope, types
from events.files import FileArrived
from shared.adapters import outbox, s3_notifications
from shared.adapters.runtime import check_environment, current
from shared.adapters.telemetry import metrics
from shared.adapters.telemetry.instrument import instrumented
from shared.adapters.telemetry.tracing import current_trace_extensions

# At start: a missing AUXIP_* setting stops the process here, named, not at each event.
check_environment()

log = logging.getLogger("auxip.inbox_adapter")


@functions_framework.http
@instrumented("inbox-adapter")
def handle(request: flask.Request) -> flask.Response:
    if request.method != "POST":
        return _answer(405, "method_not_allowed", "POST an S3 notification")
    try:
        body = _notification_body(request)
        created = s3_notifications.parse(body)
    except (s3_notifications.NotificationError, GenericException, ValueError) as error:
        return _answer(400, "bad_notification", str(error))
    rt = current()
    events = [
        envelope.build(
            types.FILE_ARRIVED,
            FileArrived(bucket=obj.bucket, key=obj.key, size=obj.size, etag=obj.etag,
                        arrived_at=obj.event_time),
            source=f"{rt.settings.event_source}/inbox-adapter", subject=obj.key,
            event_id=obj.dedup_id, extensions=current_trace_extensions(),
        )
        for obj in created
    ]
    with rt.pool.connection() as conn:
        # One INSERT for all: atomic on its own, no transaction around it.
        journalled = outbox.record_all(conn, events)
        fresh = list({e["id"]: e for e in events if e["id"] in journalled}.values())
        outbox.send_recorded(conn, rt.settings.broker_url, fresh)
    metrics.files_arrived(len(fresh))
    return _answer(200, "accepted", f"{len(events)} object(s), {len(fresh)} new")


def _notification_body(request: flask.Request) -> bytes | dict:
    """The Records document, from a raw notification or a CloudEvent wrapping one."""
    is_cloudevent = "ce-type" in request.headers or (
        request.mimetype == "application/cloudevents+json")
    if not is_cloudevent:
        return request.get_data()
    event = bindings.from_http_request(dict(request.headers), request.get_data())
    if event["type"] != types.KAFKA_RECORD:
        raise ValueError(f"unexpected CloudEvent type {event['type']!r}")
    data = event.data
    if isinstance(data, (bytes, str)):
        return json.loads(data)
    return data


def _answer(status: int, code: str, message: str) -> flask.Response:
    return flask.Response(json.dumps({"code": code, "message": message}), status=status,
                          mimetype="application/json")
