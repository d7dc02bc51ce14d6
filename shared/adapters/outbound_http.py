"""The HTTP client for addresses someone else chose (notify's NotificationEndpoints, the
routing HTTP target): every connection it opens goes to an address the outbound policy
(endpoint_policy.py) judged, resolved once, so DNS rebinding cannot slip a loopback or
private address in between the check and the connection.

It never follows redirects (a 3xx is the answer, its Location not called: the callers
record it as a failure) and ignores HTTP(S)_PROXY: through a proxy, the proxy would choose
the address. TLS still checks the certificate against the URL's host name.

The pinning sits in httpcore's network backend, which httpx 0.2x builds its transport on;
httpx exposes no setting for it, so the backend of the transport's pool is replaced (the
tests of the refused connections fail if a release renames it).
"""

from __future__ import annotations

import socket
import typing

import httpcore
import httpx
from httpcore._backends.sync import SyncStream

from shared.adapters import endpoint_policy
from shared.adapters.endpoint_policy import EndpointPolicy


class _JudgedBackend(httpcore.SyncBackend):
    def __init__(self, policy: EndpointPolicy) -> None:
        self.policy = policy

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: typing.Iterable[typing.Any] | None = None,
                    ) -> httpcore.NetworkStream:
        # EndpointRefused goes through httpx unchanged: the callers tell it from a failure.
        try:
            sock = endpoint_policy.connect_judged(host, port, self.policy, timeout)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(str(error)) from error
        except endpoint_policy.EndpointRefused:
            raise
        except OSError as error:
            raise httpcore.ConnectError(str(error)) from error
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for option in socket_options or ():
            sock.setsockopt(*option)
        return SyncStream(sock)


def transport(policy: EndpointPolicy) -> httpx.HTTPTransport:
    judged = httpx.HTTPTransport()
    pool = getattr(judged, "_pool", None)
    if not hasattr(pool, "_network_backend"):
        raise RuntimeError("httpx/httpcore changed: no network backend to judge connections")
    pool._network_backend = _JudgedBackend(policy)  # type: ignore[union-attr]
    return judged


def client(policy: EndpointPolicy | None = None, **options: typing.Any) -> httpx.Client:
    """An httpx.Client whose connections the policy judges (default: the environment's)."""
    return httpx.Client(transport=transport(policy or endpoint_policy.current()),
                        follow_redirects=False, trust_env=False, **options)
