"""A local or mounted directory: written as `.<name>.part`, flushed to disk, renamed."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from shared.core.checksums import Checksums, Digest
from shared.pipeline.routing.config import DirectoryTarget as DirectoryTargetConfig
from shared.pipeline.routing.targets.base import (
    CHECKSUM_MISMATCH,
    TARGET_REFUSED,
    TransferError,
    render,
)

CHUNK = 1024 * 1024


class DirectoryTarget:
    def __init__(self, config: DirectoryTargetConfig) -> None:
        self.config = config

    def _final(self, product: Mapping[str, Any]) -> Path:
        return Path(render(self.config.path, product)) / (product["name"]
                                                         or product["logical_name"])

    def where(self, product: Mapping[str, Any]) -> str:
        return f"file://{self._final(product)}"

    def deliver(self, product: Mapping[str, Any], body: IO[bytes],
                checksums: Checksums) -> None:
        final = self._final(product)
        partial = final.with_name(f".{final.name}.part")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            body.seek(0)
            with open(partial, "wb") as out:
                shutil.copyfileobj(body, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, final)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise TransferError(TARGET_REFUSED, f"{final}: {error.strerror or error}") from None
        size = final.stat().st_size
        if size != checksums.size:
            raise TransferError(CHECKSUM_MISMATCH,
                                f"{final}: {size} bytes stored, {checksums.size} sent")
        if self.config.verify == "readback":
            digest = Digest()
            with open(final, "rb") as stored:
                for chunk in iter(lambda: stored.read(CHUNK), b""):
                    digest.update(chunk)
            if digest.result().md5 != checksums.md5:
                raise TransferError(CHECKSUM_MISMATCH, f"{final}: MD5 differs after writing")

    def close(self) -> None:
        pass
