"""deadletter: a failed delivery is recorded once, with Knative's error extensions."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import psycopg
import pytest

from events import bindings, envelope, types
from events.files import FileArrived
from shared.adapters.catalogue import dead_letters
from shared.adapters.settings import Settings
from tests.functions.conftest import client


@pytest.mark.usefixtures("function_env")
def test_dead_letter_is_recorded_once_with_its_error(settings: Settings) -> None:
    event = envelope.build(types.FILE_ARRIVED,
                           FileArrived(bucket="b", key="k.EOF", size=1, arrived_at=datetime.now(UTC)),
                           source="/test", subject="k.EOF",
                           extensions={"knativeerrordest": "http://ingest.auxip.svc/",
                                       "knativeerrorcode": "500",
                                       "knativeerrordata": base64.b64encode(b"boom").decode()})
    headers, body = bindings.to_http_binary(event)
    sink = client("deadletter", "cloudevent")
    for _ in range(2):
        assert sink.post("/", data=body, headers=headers).status_code == 200
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute("SELECT event_id, type, subject, subscriber, error, event"
                            " FROM dead_letters").fetchall()
    [(event_id, kind, subject, subscriber, error, stored)] = rows
    assert (event_id, kind, subject) == (event["id"], types.FILE_ARRIVED, "k.EOF")
    assert subscriber == "http://ingest.auxip.svc/" and error == "HTTP 500: boom"
    assert envelope.data_of(bindings.from_json(stored)).key == "k.EOF"


@pytest.mark.usefixtures("function_env")
def test_the_attempts_are_the_events_own_else_the_configured_policy(settings: Settings) -> None:
    """auxip's router says how many deliveries were made; Knative's Broker does not, and
    then AUXIP_DEAD_LETTER_ATTEMPTS (1 + its delivery.retry) stands in."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        for key, carried, configured, expected in (("a.EOF", "4", 9, 4), ("b.EOF", None, 6, 6),
                                                   ("c.EOF", None, None, None)):
            extensions = {"knativeerrordest": "http://package.auxip.svc/"}
            if carried:
                extensions[dead_letters.ATTEMPTS] = carried
            event = envelope.build(
                types.FILE_ARRIVED,
                FileArrived(bucket="b", key=key, size=1, arrived_at=datetime.now(UTC)),
                source="/test", subject=key, extensions=extensions)
            assert dead_letters.record(conn, event, configured)
            [stored] = conn.execute("SELECT attempts FROM dead_letters WHERE event_id = %s",
                                    (event["id"],)).fetchone()
            assert stored == expected, key
