"""The one exception a client mistake may raise: the HTTP layer turns it into a 400 body
`{"error": {"code": ..., "message": ...}}` (or `status` when another status fits)."""

from __future__ import annotations


class ODataError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


# Codes, one per query option, so clients can tell which part of the URL was refused.
INVALID_FILTER = "InvalidFilter"
INVALID_ORDERBY = "InvalidOrderBy"
INVALID_TOP = "InvalidTop"
INVALID_SKIP = "InvalidSkip"
INVALID_COUNT = "InvalidCount"
INVALID_EXPAND = "InvalidExpand"
INVALID_FORMAT = "InvalidFormat"
INVALID_SELECT = "InvalidSelect"
INVALID_OPTION = "InvalidQueryOption"
