"""Where pollers find files: one module per kind of source, each listing `Item`s and
opening them as streams of bytes. `open_source` builds the one a configuration names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.pipeline.routing import config
from shared.pipeline.routing.sources.base import Item, Source, SourceError

__all__ = ["Item", "Source", "SourceError", "open_source"]


def open_source(source: Any, settings: Any, environ: Mapping[str, str]) -> Source:
    """The Source for a configuration model (its ${AUXIP_...} references expanded here)."""
    resolved = config.expand(source, environ)
    if resolved.kind == "odata":
        from shared.pipeline.routing.sources.odata import ODataFiles
        return ODataFiles(resolved)
    if resolved.kind == "s3":
        from shared.pipeline.routing.sources.s3 import BucketFiles
        return BucketFiles(resolved, settings)
    if resolved.kind == "directory":
        from shared.pipeline.routing.sources.directory import DirectoryFiles
        return DirectoryFiles(resolved)
    if resolved.kind == "sftp":
        from shared.pipeline.routing.sources.sftp import SftpFiles
        return SftpFiles(resolved)
    raise config.ConfigError(f"unknown source kind {resolved.kind!r}")
