"""One delivery attempt as Knative's dispatchers make it: the POST, what counts as delivered
or retryable, and what a dead-lettered event carries (shared by the Broker's dispatcher and
the KafkaSource's)."""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from devstack.router import wire
from devstack.router.store import Failure
from shared.adapters.catalogue import dead_letters

RETRYABLE_STATUS = frozenset({404, 408, 409, 429})
ERROR_DATA_MAX = 1024


def is_retryable(status: int | None) -> bool:
    return status is None or status >= 500 or status in RETRYABLE_STATUS


def dead_letter_extensions(subscriber: str, code: int | None, data: bytes | None,
                           extra: Mapping[str, str] | None) -> dict[str, str]:
    """What an event carries to the dead-letter sink, as Knative's dispatchers set it."""
    extensions = {dead_letters.DESTINATION: subscriber}
    if code is not None:
        extensions[dead_letters.CODE] = str(code)
    if data:
        extensions[dead_letters.DATA] = base64.b64encode(data).decode("ascii")
    extensions.update(extra or {})
    return extensions


@dataclass(frozen=True)
class Response:
    status: int | None
    error: str | None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def failure(self) -> Failure:
        extensions = {
            name[4:]: value
            for name, value in self.headers.items()
            if name.startswith("kne-") and name[4:].isalnum() and name[4:].isascii()
        }
        return Failure(
            status=self.status,
            error=self.error or f"HTTP {self.status}",
            body=self.body[:ERROR_DATA_MAX] if self.body else None,
            extensions=extensions or None,
        )


def new_transport() -> httpx.BaseTransport:
    # A bare transport ignores HTTP(S)_PROXY: loopback deliveries must not go to a proxy.
    return httpx.HTTPTransport(limits=httpx.Limits(max_connections=64,
                                                   max_keepalive_connections=16))


def post(transport: httpx.BaseTransport, url: httpx.URL, event: wire.Event, timeout: float, *,
         prefer_reply: bool) -> Response:
    """One attempt: the event in binary mode, the answer read whole (or why there was none)."""
    headers, body = wire.binary(event)
    if prefer_reply:
        headers.append(("prefer", b"reply"))
    started = time.monotonic()
    try:
        request = httpx.Request(
            "POST", url, headers=headers, content=body,
            extensions={"timeout": {"connect": timeout, "read": timeout, "write": timeout,
                                    "pool": timeout}},
        )
        answer = transport.handle_request(request)
        try:
            content = answer.read()
        finally:
            answer.close()
    except httpx.TimeoutException:
        return Response(None, f"no answer within {timeout:g}s", seconds=time.monotonic() - started)
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        return Response(None, f"{type(error).__name__}: {error}", seconds=time.monotonic() - started)
    return Response(
        answer.status_code,
        None,
        content,
        wire.header_pairs(answer.headers.raw),
        time.monotonic() - started,
    )
