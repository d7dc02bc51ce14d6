"""A directory on an SFTP server (e.g. Mission Planning's inbox on the MPIP). The file is
written as `.<name>.part` and renamed once whole; `verify: readback` reads it back (SFTP
has no checksum request most servers answer), `size` compares sizes only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

import paramiko

from shared.adapters import endpoint_policy
from shared.core.checksums import Checksums, Digest
from shared.pipeline.routing import sftp
from shared.pipeline.routing.config import SftpTarget as SftpTargetConfig
from shared.pipeline.routing.targets.base import (
    CHECKSUM_MISMATCH,
    TARGET_REFUSED,
    TARGET_UNREACHABLE,
    TransferError,
    render,
)
from shared.pipeline.routing.targets.outbound import denied

CHUNK = 256 * 1024


class SftpTarget:
    def __init__(self, config: SftpTargetConfig) -> None:
        self.config = config

    def _paths(self, product: Mapping[str, Any]) -> tuple[str, str, str]:
        folder = render(self.config.path, product).rstrip("/") or "/"
        name = product["name"] or product["logical_name"]
        return folder, f"{folder}/.{name}.part", f"{folder}/{name}"

    def where(self, product: Mapping[str, Any]) -> str:
        login = self.config.login
        return f"sftp://{login.host}:{login.port}{self._paths(product)[2]}"

    def deliver(self, product: Mapping[str, Any], body: IO[bytes],
                checksums: Checksums) -> None:
        folder, partial, final = self._paths(product)
        try:
            with sftp.session(self.config.login, endpoint_policy.current()) as client:
                try:
                    sftp.makedirs(client, folder)
                    body.seek(0)
                    client.putfo(body, partial, file_size=checksums.size, confirm=False)
                    sftp.replace(client, partial, final)
                    self._verify(client, final, checksums)
                except OSError as error:
                    raise TransferError(TARGET_REFUSED, f"sftp {final}: {error}") from None
        except sftp.SftpError as error:
            raise TransferError(TARGET_UNREACHABLE, str(error)) from None
        except endpoint_policy.EndpointRefused as refused:
            raise denied(f"sftp://{self.config.login.host}:{self.config.login.port}",
                         refused) from None
        except (paramiko.SSHException, EOFError) as error:
            raise TransferError(TARGET_UNREACHABLE, f"sftp {final}: {error}") from None

    def _verify(self, client: paramiko.SFTPClient, path: str, checksums: Checksums) -> None:
        size = client.stat(path).st_size
        if size != checksums.size:
            raise TransferError(CHECKSUM_MISMATCH,
                                f"sftp {path}: {size} bytes stored, {checksums.size} sent")
        if self.config.verify != "readback":
            return
        digest = Digest()
        with client.open(path, "rb") as stored:
            stored.prefetch(size)
            for chunk in iter(lambda: stored.read(CHUNK), b""):
                digest.update(chunk)
        got = digest.result()
        if got.md5 != checksums.md5:
            raise TransferError(CHECKSUM_MISMATCH,
                                f"sftp {path}: MD5 {got.md5} read back, {checksums.md5} sent")

    def close(self) -> None:
        pass
