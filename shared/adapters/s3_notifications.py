"""S3 bucket notifications as Ceph RGW and MinIO send them: a JSON document with a
`Records` array (MinIO's webhook and Kafka targets, RGW's HTTP push endpoint).

Keys are URL-encoded in the records (`+` for spaces, %XX for the rest); non-create events
(deletes, tagging, test events) and folder markers are not files.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote_plus

_IDS = uuid.UUID("5d0f4b8e-2a61-4c3b-b7a9-e1c2d3f4a5b6")


class NotificationError(ValueError):
    """The body is not an S3 notification at all."""


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    key: str
    size: int
    etag: str | None
    event_time: datetime
    sequencer: str | None

    @property
    def dedup_id(self) -> str:
        """Same object version -> same id, so a notification delivered twice is one event."""
        version = self.sequencer or self.etag or self.event_time.isoformat()
        return str(uuid.uuid5(_IDS, f"{self.bucket}/{self.key}/{self.etag}/{version}"))


def parse(body: bytes | str | dict) -> list[ObjectCreated]:
    document = body if isinstance(body, dict) else _json(body)
    records = document.get("Records") if isinstance(document, dict) else None
    if records is None:
        if isinstance(document, dict) and document.get("Event") == "s3:TestEvent":
            return []
        raise NotificationError("no Records array in the notification")
    if not isinstance(records, list):
        raise NotificationError("Records is not an array")
    created = []
    for index, record in enumerate(records):
        try:
            event_name = str(record.get("eventName", ""))
            if "ObjectCreated" not in event_name:
                continue
            s3 = record["s3"]
            obj = s3["object"]
            key = unquote_plus(obj["key"])
            size = int(obj.get("size", 0))
            if key.endswith("/"):
                continue
            created.append(ObjectCreated(
                bucket=s3["bucket"]["name"], key=key, size=size,
                etag=(obj.get("eTag") or obj.get("etag") or None),
                event_time=_time(record.get("eventTime")),
                sequencer=obj.get("sequencer") or None,
            ))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise NotificationError(f"record {index} is malformed: {error!r}") from error
    return created


def _json(body: bytes | str) -> object:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise NotificationError(f"not JSON: {error}") from error


def _time(value: object) -> datetime:
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.now(UTC)
