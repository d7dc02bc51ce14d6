"""Where routes deliver: one module per kind of target. A target receives the product's
bytes as a local file already checked against the catalogue, writes them, and checks what
the far side stored (read back, or HEAD/ETag, or size, as the target allows) before the
transfer may count as completed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.pipeline.routing import config
from shared.pipeline.routing.targets.base import (
    ARCHIVE_UNAVAILABLE,
    CHECKSUM_MISMATCH,
    CONFIG_INVALID,
    PRODUCT_UNAVAILABLE,
    TARGET_DENIED,
    TARGET_REFUSED,
    TARGET_UNREACHABLE,
    UNEXPECTED,
    Target,
    TransferError,
    render,
)

__all__ = ["ARCHIVE_UNAVAILABLE", "CHECKSUM_MISMATCH", "CONFIG_INVALID", "PRODUCT_UNAVAILABLE",
           "TARGET_DENIED", "TARGET_REFUSED", "TARGET_UNREACHABLE", "UNEXPECTED", "Target",
           "TransferError", "open_target", "render"]


def open_target(target: Any, settings: Any, environ: Mapping[str, str]) -> Target:
    """The Target for a configuration model (its ${AUXIP_...} references expanded here)."""
    resolved = config.expand(target, environ)
    if resolved.kind in ("s3", "auxip"):
        from shared.pipeline.routing.targets.s3 import BucketTarget
        return BucketTarget(resolved, settings)
    if resolved.kind == "http":
        from shared.pipeline.routing.targets.http import HttpPut
        return HttpPut(resolved)
    if resolved.kind == "sftp":
        from shared.pipeline.routing.targets.sftp import SftpTarget
        return SftpTarget(resolved)
    if resolved.kind == "directory":
        from shared.pipeline.routing.targets.directory import DirectoryTarget
        return DirectoryTarget(resolved)
    raise config.ConfigError(f"unknown target kind {resolved.kind!r}")
