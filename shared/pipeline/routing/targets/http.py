"""HTTP(S) PUT to a receiver (a URL template per product), with Basic, bearer or OAuth2
credentials. The request carries Content-Length and Content-MD5; the check afterwards is
the route's `verify` (see config.HttpTarget)."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import IO, Any

import httpx

from shared.adapters import outbound_http
from shared.adapters.endpoint_policy import EndpointRefused
from shared.core.checksums import Checksums, Digest
from shared.pipeline.routing.config import Basic, Bearer, HttpTarget, OAuth2
from shared.pipeline.routing.oauth import TokenClient, TokenError, token_client
from shared.pipeline.routing.targets.base import (
    CHECKSUM_MISMATCH,
    TARGET_REFUSED,
    TARGET_UNREACHABLE,
    TransferError,
    render,
)
from shared.pipeline.routing.targets.outbound import denied

_HEX_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")
CHUNK = 1024 * 1024


class HttpPut:
    def __init__(self, config: HttpTarget) -> None:
        self.config = config
        # Connects only to addresses the outbound policy allows; redirects not followed.
        self.http = outbound_http.client(timeout=httpx.Timeout(config.timeout_s, connect=10.0),
                                         headers={"User-Agent": "auxip-route"})
        self.tokens: TokenClient | None = None
        if isinstance(config.auth, OAuth2):
            self.tokens = token_client(config.auth)

    def where(self, product: Mapping[str, Any]) -> str:
        return render(self.config.url, product)

    def deliver(self, product: Mapping[str, Any], body: IO[bytes],
                checksums: Checksums) -> None:
        url = self.where(product)
        headers = {
            "Content-Type": product.get("content_type") or "application/octet-stream",
            "Content-Length": str(checksums.size),
            "Content-MD5": base64.b64encode(bytes.fromhex(checksums.md5)).decode(),
            **self.config.headers,
        }
        response = self._send("PUT", url, headers=headers, body=body)
        if response.is_redirect:
            # Not followed: the policy judged this URL's host, not the Location's.
            raise TransferError(TARGET_REFUSED, f"PUT {url}: HTTP {response.status_code},"
                                f" redirect to {response.headers.get('Location', '')[:200]}"
                                " not followed")
        if not 200 <= response.status_code < 300:
            raise TransferError(TARGET_REFUSED, f"PUT {url}: HTTP {response.status_code}")
        if self.config.verify == "readback":
            self._read_back(url, checksums)
        elif self.config.verify == "head":
            self._head(url, checksums)

    def _read_back(self, url: str, checksums: Checksums) -> None:
        digest = Digest()
        try:
            with self.http.stream("GET", url, headers=self._auth_headers()) as response:
                if response.status_code != 200:
                    raise TransferError(TARGET_REFUSED,
                                        f"GET {url} (read back): HTTP {response.status_code}")
                for chunk in response.iter_bytes(CHUNK):
                    digest.update(chunk)
        except httpx.HTTPError as error:
            raise TransferError(TARGET_UNREACHABLE, f"GET {url}: {error}") from None
        except EndpointRefused as refused:
            raise denied(f"GET {url}", refused) from None
        got = digest.result()
        if (got.size, got.md5) != (checksums.size, checksums.md5):
            raise TransferError(CHECKSUM_MISMATCH, f"{url} holds {got.size} bytes, MD5 "
                                                   f"{got.md5}; sent {checksums.size}, "
                                                   f"{checksums.md5}")

    def _head(self, url: str, checksums: Checksums) -> None:
        response = self._send("HEAD", url, headers={})
        if response.status_code != 200:
            raise TransferError(TARGET_REFUSED, f"HEAD {url}: HTTP {response.status_code}")
        length = response.headers.get("Content-Length")
        if length is None or int(length) != checksums.size:
            raise TransferError(CHECKSUM_MISMATCH, f"{url}: Content-Length {length}, "
                                                   f"{checksums.size} bytes sent")
        for announced in _announced_md5s(response.headers):
            if announced != checksums.md5:
                raise TransferError(CHECKSUM_MISMATCH,
                                    f"{url}: MD5 {announced}, sent {checksums.md5}")

    def _send(self, method: str, url: str, *, headers: dict[str, str],
              body: IO[bytes] | None = None) -> httpx.Response:
        for attempt in (1, 2):
            if body is not None:
                body.seek(0)
            try:
                response = self.http.request(method, url, content=body,
                                             headers={**headers, **self._auth_headers()})
            except httpx.HTTPError as error:
                raise TransferError(TARGET_UNREACHABLE,
                                    f"{method} {url}: {type(error).__name__}: {error}") from None
            except EndpointRefused as refused:
                raise denied(f"{method} {url}", refused) from None
            if response.status_code == 401 and self.tokens is not None and attempt == 1:
                self.tokens.invalidate()
                continue
            return response
        return response

    def _auth_headers(self) -> dict[str, str]:
        auth = self.config.auth
        if isinstance(auth, Basic):
            token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
            return {"Authorization": f"Basic {token}"}
        if isinstance(auth, Bearer):
            return {"Authorization": f"Bearer {auth.token}"}
        if self.tokens is not None:
            try:
                return {"Authorization": self.tokens.authorization()}
            except TokenError as error:
                raise TransferError(TARGET_REFUSED, str(error)) from None
        return {}

    def close(self) -> None:
        self.http.close()


def _announced_md5s(headers: httpx.Headers) -> list[str]:
    """MD5s a server states about what it holds, in the headers servers use for it."""
    found = []
    etag = headers.get("ETag", "").removeprefix("W/").strip('"')
    if _HEX_MD5.match(etag):
        found.append(etag.lower())
    for name in ("Content-MD5", "X-Checksum-MD5"):
        value = headers.get(name)
        if value:
            found.append(value.lower() if _HEX_MD5.match(value) else _b64_hex(value))
    for part in headers.get("Digest", "").split(","):
        algorithm, _, value = part.strip().partition("=")
        if algorithm.lower() == "md5" and value:
            found.append(_b64_hex(value))
    return found


def _b64_hex(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).hex()
    except ValueError:
        return value
