"""The outbound policy (shared.adapters.endpoint_policy) applied to routing targets: the
hosts an HTTP, S3 or SFTP target names are judged when a route is loaded (IP literals and
`localhost` names: `auxip routes load` refuses the route) and again when a transfer
connects (the HTTP and SFTP targets connect only to the addresses they judged; the S3
target's endpoint is resolved and judged before each transfer, and botocore resolves it
once more to connect: a DNS answer changed in that window is not caught).

A target on auxip's own S3 (no `endpoint`) and a directory are not judged: the operator's
own storage."""

from __future__ import annotations

from urllib.parse import urlsplit

from shared.adapters import endpoint_policy
from shared.adapters.endpoint_policy import EndpointPolicy, EndpointRefused
from shared.adapters.telemetry import security_events
from shared.pipeline.routing import config
from shared.pipeline.routing.targets.base import TARGET_DENIED, TransferError


def endpoints(target: object) -> list[tuple[str, int | None]]:
    """(host, port) a target connects to, as far as the configuration says before its
    ${AUXIP_...} references and {placeholders} are filled in (those hosts are left to the
    send-time check)."""
    if isinstance(target, config.HttpTarget):
        return _of_url(target.url)
    if isinstance(target, config.S3Target) and target.endpoint:
        return _of_url(target.endpoint)
    if isinstance(target, config.SftpTarget):
        host = target.login.host
        return [] if _templated(host) else [(host, target.login.port)]
    return []


def _of_url(url: str) -> list[tuple[str, int | None]]:
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return []
    if not host or _templated(host):
        return []
    return [(host, port or {"http": 80, "https": 443}.get(parts.scheme))]


def _templated(text: str) -> bool:
    return "{" in text or "$" in text


def check_route(route: config.Route, policy: EndpointPolicy | None = None) -> None:
    """At load: ConfigError when the route's target is an address the policy refuses."""
    for host, port in endpoints(route.target):
        try:
            endpoint_policy.check_literal_host(host, port, policy or endpoint_policy.current())
        except EndpointRefused as refused:
            raise config.ConfigError(
                f"route {route.name}: target host {host} refused ({refused.code}):"
                f" {refused.reason}; allow it with AUXIP_OUTBOUND_ALLOWED_NETWORKS") from None


def check_before_send(target: object, policy: EndpointPolicy | None = None) -> None:
    """At send, for a target whose client cannot connect to a judged address (S3): the
    host resolved and judged; TransferError(target_denied) when refused."""
    for host, port in endpoints(target):
        try:
            endpoint_policy.resolve_host(host, port, policy or endpoint_policy.current())
        except EndpointRefused as refused:
            raise denied(f"{host}", refused) from None
        except OSError:
            pass  # does not resolve: the client fails the same way, as unreachable


def denied(what: str, refused: EndpointRefused) -> TransferError:
    # The SIEM hears of it like a refused notification endpoint: a route configured (or a
    # DNS answer changed) to reach an internal address is worth an operator's look.
    security_events.emit("auxip.endpoint.refused", "network", "failure", event_type="denied",
                         reason=refused.reason, code=refused.code, via="routing",
                         endpoint=what)
    return TransferError(TARGET_DENIED, f"{what}: refused ({refused.code}): {refused.reason}")
