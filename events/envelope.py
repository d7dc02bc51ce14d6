"""Build auxip CloudEvents and read their `data` back into the contract's models.

Transport bindings (HTTP binary/structured, Kafka) are in `events.bindings`; this module
knows nothing of transports.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TypeVar

from cloudevents.http import CloudEvent

from events.base import EventData
from events.registry import model_for

M = TypeVar("M", bound=EventData)

# Extensions auxip carries on every event it emits (lower-case alphanumerics only, per spec).
TRACEPARENT = "traceparent"
# On `product.ingested` only: "true" when ingest packaged the product itself (an EOF kept
# as .EOF, a zipped SAFE built from the bytes it held) and journalled its `product.packaged`
# in the same transaction, so there is nothing left to package; package's Trigger leaves
# such events out (knative/functions.yaml).
PACKAGED = "auxippackaged"
# On `product.packaged` only: "true" when ingest published the product in that same
# transaction too (its `product.published` journalled with it); publish's Trigger leaves
# such events out.
PUBLISHED = "auxippublished"


def build(
    event_type: str,
    data: EventData,
    *,
    source: str,
    subject: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
    extensions: dict[str, str] | None = None,
) -> CloudEvent:
    """A CloudEvent whose data is `data` as JSON; the type must be one of the contract's."""
    expected = model_for(event_type)
    if not isinstance(data, expected):
        raise TypeError(f"{event_type} carries {expected.__name__}, not {type(data).__name__}")
    attributes: dict[str, str] = {
        "type": event_type,
        "source": source,
        "id": event_id or str(uuid.uuid4()),
        "time": (time or datetime.now(UTC)).isoformat(),
        "datacontenttype": "application/json",
        "dataschema": f"urn:auxip:schema:{event_type}",
    }
    if subject:
        attributes["subject"] = subject
    attributes.update(extensions or {})
    return CloudEvent(attributes, data.model_dump(mode="json"))


def data_of(event: CloudEvent, expected: type[M] | None = None) -> M:
    """The event's `data` validated by the model of its type (pydantic errors propagate)."""
    model = model_for(event["type"])
    if expected is not None and model is not expected:
        raise TypeError(f"expected {expected.__name__}, event type is {event['type']}")
    payload = event.data
    if isinstance(payload, (bytes, str)):
        return model.model_validate_json(payload)  # type: ignore[return-value]
    return model.model_validate(payload)  # type: ignore[return-value]
