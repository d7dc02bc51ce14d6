"""The RADOS Gateway's bucket notifications, set up for the local stack's inbox: an SNS topic
with a push endpoint (RGW's topic API speaks SNS on the S3 endpoint) and the bucket's
notification configuration, primed so that the gateway's first push succeeds."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from botocore.config import Config

from devstack.stack.ceph import CephError
from shared.adapters.settings import Settings


def _sns(settings: Settings) -> Any:
    """RGW's topic API speaks the SNS protocol on the S3 endpoint."""
    return boto3.session.Session().client(
        "sns",
        endpoint_url=settings.s3_endpoint,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key.get_secret_value(),
        region_name=settings.s3_region,
        config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3}),
    )


def _topic(sns: Any, name: str) -> tuple[str | None, dict]:
    """(ARN, endpoint description) of the topic `name`, (None, {}) when there is none."""
    for item in sns.list_topics().get("Topics", []):
        arn = item["TopicArn"]
        if arn.rsplit(":", 1)[-1] == name:
            attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
            return arn, json.loads(attributes.get("EndPoint") or "{}")
    return None, {}


def _notify(s3: Any, bucket: str, topic: str, arn: str) -> None:
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"TopicConfigurations": [
            {"Id": topic, "TopicArn": arn, "Events": ["s3:ObjectCreated:*"]}
        ]},
    )


def ensure_notification(settings: Settings, s3: Any, bucket: str, push_endpoint: str) -> bool:
    """`s3:ObjectCreated:*` of `bucket` POSTed to `push_endpoint`; True when (re)configured.

    Synchronous delivery: RGW POSTs the S3 record while it answers the PUT, so an event
    reaches the inbox adapter at once; an adapter that is down loses it (the PUT still
    succeeds). RGW 16.2 accepts `persistent=true`, which would queue and retry, but there
    it does not serve: the queue is first read 30 s after the gateway starts, and after a
    failed delivery a push stayed pending (pubsub_push_pending=1) for the 3+ minutes
    watched, the queue delivering nothing meanwhile.
    """
    sns = _sns(settings)
    topic = f"{bucket}-created"
    arn, endpoint = _topic(sns, topic)
    current = s3.get_bucket_notification_configuration(Bucket=bucket)
    wanted = {"Id": topic, "TopicArn": arn, "Events": ["s3:ObjectCreated:*"]}
    if (arn is not None and endpoint.get("EndpointAddress") == push_endpoint
            and endpoint.get("Persistent") != "true"
            and current.get("TopicConfigurations") == [wanted]):
        return False
    arn = sns.create_topic(Name=topic, Attributes={"push-endpoint": push_endpoint})["TopicArn"]
    # The bucket keeps a copy of the topic as it was when the notification was put: a
    # changed endpoint takes effect only once the notification is put again.
    _notify(s3, bucket, topic, arn)
    return True


def notifies(s3: Any, bucket: str) -> bool:
    """Whether `bucket` has a notification configured. One cannot be taken back: RGW 16
    refuses an empty configuration (MalformedXML) and merges a new one into the old."""
    return bool(s3.get_bucket_notification_configuration(Bucket=bucket).get("TopicConfigurations"))


class _Primer(BaseHTTPRequestHandler):
    received = threading.Event()

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()
        type(self).received.set()

    def log_message(self, *args: object) -> None:
        pass


def prime_notifications(settings: Settings, s3: Any, bucket: str, push_endpoint: str) -> None:
    """ensure_notification, on a fresh gateway whose first push must succeed.

    Measured on RGW 16.2.15: when a gateway's very first push fails (endpoint down), that
    push stays pending for minutes (~220 s) and so do the next ones, each PUT to the bucket
    waiting with them, even once the endpoint is up; after one successful push, failures
    are quick and counted, and later pushes work. So before the real endpoint is set, one
    event goes to a listener of our own.
    """
    handler = type("Primer", (_Primer,), {"received": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    sns = _sns(settings)
    # The real topic and notification id, pointed at our listener first: RGW 16 merges
    # notification configurations, so a separate priming one could not be removed.
    topic = f"{bucket}-created"
    try:
        arn = sns.create_topic(
            Name=topic, Attributes={"push-endpoint": f"http://127.0.0.1:{server.server_port}/"}
        )["TopicArn"]
        _notify(s3, bucket, topic, arn)
        s3.put_object(Bucket=bucket, Key=".auxip-prime", Body=b"")
        if not handler.received.wait(10.0):
            raise CephError("RGW did not deliver the priming notification")
        s3.delete_object(Bucket=bucket, Key=".auxip-prime")
        ensure_notification(settings, s3, bucket, push_endpoint)
    finally:
        server.shutdown()
        server.server_close()
