"""Which `data` model each auxip event type carries."""

from __future__ import annotations

from events import types
from events.base import EventData
from events.files import FileArrived, FileRejected
from events.products import ProductEvicted, ProductIngested, ProductPackaged, ProductPublished
from events.transfers import TransferCompleted, TransferFailed

DATA_MODELS: dict[str, type[EventData]] = {
    types.FILE_ARRIVED: FileArrived,
    types.FILE_REJECTED: FileRejected,
    types.PRODUCT_INGESTED: ProductIngested,
    types.PRODUCT_PACKAGED: ProductPackaged,
    types.PRODUCT_PUBLISHED: ProductPublished,
    types.PRODUCT_EVICTED: ProductEvicted,
    types.TRANSFER_COMPLETED: TransferCompleted,
    types.TRANSFER_FAILED: TransferFailed,
}

# Events nobody inside auxip consumes: they exist for operators, audit and external
# subscribers (the Knative deployment checks every other type has a Trigger).
TERMINAL = frozenset({types.FILE_REJECTED, types.TRANSFER_COMPLETED,
                      types.TRANSFER_FAILED})


def model_for(event_type: str) -> type[EventData]:
    try:
        return DATA_MODELS[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None


class UnknownEventType(ValueError):
    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type
