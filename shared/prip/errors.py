"""OData error bodies: `{"error": {"code": ..., "message": ...}}` for every refusal, with the
status that fits. The query engine's own refusals are `shared.odata.ODataError` already;
the codes below are those of the rest of the interface."""

from __future__ import annotations

from shared.odata import ODataError

NOT_FOUND = "NotFound"
INVALID_KEY = "InvalidKey"
METHOD_NOT_ALLOWED = "MethodNotAllowed"
PRODUCT_OFFLINE = "ProductOffline"
PRODUCT_UNAVAILABLE = "ProductUnavailable"
RANGE_NOT_SATISFIABLE = "RangeNotSatisfiable"
TOO_MANY_DOWNLOADS = "TooManyParallelDownloads"
BUSY = "ServiceBusy"
INVALID_BODY = "InvalidBody"
BODY_TOO_LARGE = "PayloadTooLarge"
UNSUPPORTED_MEDIA_TYPE = "UnsupportedMediaType"
CONFLICT = "Conflict"
TOO_MANY_SUBSCRIPTIONS = "TooManySubscriptions"
UNAVAILABLE = "ServiceUnavailable"
INTERNAL = "InternalError"


def not_found(what: str) -> ODataError:
    return ODataError(NOT_FOUND, f"{what} not found", 404)


def body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


class Refusal(ODataError):
    """An OData error whose response carries headers of its own (Retry-After,
    Content-Range)."""

    def __init__(self, code: str, message: str, status: int, headers: dict[str, str]) -> None:
        super().__init__(code, message, status)
        self.headers = headers
