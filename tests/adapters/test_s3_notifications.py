"""S3 notifications in the shapes Ceph RGW and MinIO send."""

from __future__ import annotations

import json

import pytest

from shared.adapters import s3_notifications
from shared.adapters.s3_notifications import NotificationError


def _record(event_name: str, key: str, size: int = 10, **obj: str) -> dict:
    return {
        "eventVersion": "2.2", "eventSource": "ceph:s3", "eventName": event_name,
        "eventTime": "2026-11-24T10:00:00.000Z",
        "s3": {"bucket": {"name": "auxip-inbox"},
               "object": {"key": key, "size": size, "eTag": "e1", **obj}},
    }


def test_rgw_put_record() -> None:
    body = json.dumps({"Records": [_record("ObjectCreated:Put", "a.EOF", sequencer="01")]})
    [created] = s3_notifications.parse(body.encode())
    assert (created.bucket, created.key, created.size, created.etag) == (
        "auxip-inbox", "a.EOF", 10, "e1")
    assert created.event_time.isoformat() == "2026-11-24T10:00:00+00:00"


def test_minio_keys_are_url_decoded() -> None:
    body = {"EventName": "s3:ObjectCreated:Put", "Key": "auxip-inbox/x",
            "Records": [_record("s3:ObjectCreated:Put", "dir%2FS1A+name%C3%A9.SAFE%2Fmanifest.safe")]}
    [created] = s3_notifications.parse(json.dumps(body))
    assert created.key == "dir/S1A nameé.SAFE/manifest.safe"


def test_deletes_and_folder_markers_are_not_files() -> None:
    body = {"Records": [_record("ObjectRemoved:Delete", "a.EOF"),
                        _record("s3:ObjectCreated:Put", "folder/", size=0),
                        _record("ObjectCreated:CompleteMultipartUpload", "b.EOF")]}
    assert [c.key for c in s3_notifications.parse(json.dumps(body))] == ["b.EOF"]


def test_duplicate_notification_has_same_id_new_version_another() -> None:
    first = s3_notifications.parse(json.dumps({"Records": [_record("ObjectCreated:Put", "a", sequencer="1")]}))
    again = s3_notifications.parse(json.dumps({"Records": [_record("ObjectCreated:Put", "a", sequencer="1")]}))
    newer = s3_notifications.parse(json.dumps({"Records": [_record("ObjectCreated:Put", "a", sequencer="2")]}))
    assert first[0].dedup_id == again[0].dedup_id != newer[0].dedup_id


def test_minio_test_event_is_empty() -> None:
    assert s3_notifications.parse(b'{"Event": "s3:TestEvent"}') == []


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"Records": 3}',
                                  b'{"Records": [{"eventName": "ObjectCreated:Put"}]}', b"{}"])
def test_malformed_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(NotificationError):
        s3_notifications.parse(body)
