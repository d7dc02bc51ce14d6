"""What every target shares: the reason codes of failed transfers, TransferError, the
Target protocol, and the rendering of target paths."""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import datetime
from typing import IO, Any, Protocol

from shared.core.checksums import Checksums
from shared.pipeline.routing import config

# Reason codes of transfer failures (transfers.reason, transfer.failed events, metrics).
TARGET_UNREACHABLE = "target_unreachable"
TARGET_REFUSED = "target_refused"
# The target's address is one the outbound policy refuses (loopback, private, ...): not
# retried, the configuration or AUXIP_OUTBOUND_ALLOWED_NETWORKS must change.
TARGET_DENIED = "target_denied"
CHECKSUM_MISMATCH = "checksum_mismatch"
ARCHIVE_UNAVAILABLE = "archive_unavailable"
CONFIG_INVALID = "config_invalid"
PRODUCT_UNAVAILABLE = "product_unavailable"
UNEXPECTED = "unexpected_error"  # a failure no target foresaw: logged with its traceback


class TransferError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Target(Protocol):
    def where(self, product: Mapping[str, Any]) -> str:
        """The destination, for records and events (no credentials in it)."""

    def deliver(self, product: Mapping[str, Any], body: IO[bytes],
                checksums: Checksums) -> None:
        """Write and verify; TransferError when it did not end with the right bytes."""

    def close(self) -> None: ...


def render(template: str, product: Mapping[str, Any]) -> str:
    """A target path from its template: {name}, {product_type}, {platform_serial},
    {start} and {published} (datetimes: `{start:%Y/%m}`)."""
    values: dict[str, Any] = {
        "name": product["name"] or product["logical_name"],
        "product_type": product["product_type"],
        "platform_serial": product["platform_serial"],
        "start": product["content_start"],
        "published": product.get("publication_date") or datetime.min,
    }
    for _, field, _, _ in string.Formatter().parse(template):
        # Plain names only: "{name.__class__}" and the like have no business in a path.
        if field is not None and field not in values:
            raise config.ConfigError(f"unknown placeholder {{{field}}} in {template!r}")
    rendered = template.format_map(values)
    if ".." in rendered.split("/"):
        raise config.ConfigError(f"{template!r} gives a path with '..': {rendered!r}")
    return rendered
