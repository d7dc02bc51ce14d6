"""The local realm's addresses: where the stand-in Keycloak realm serves on this machine."""

from __future__ import annotations

from devstack.layout import Layout

LOCAL_REALM = "auxip"


def local_issuer(port_base: int, host: str = "127.0.0.1") -> str:
    """The issuer URL of the local stack's token issuer (what AUXIP_AUTH_ISSUER is set to)."""
    return f"http://{host}:{Layout(port_base, host).token_port}/realms/{LOCAL_REALM}"


def local_token_url(port_base: int, host: str = "127.0.0.1") -> str:
    """What `auxip env` prints as AUXIP_TOKEN_URL."""
    return f"{local_issuer(port_base, host)}/protocol/openid-connect/token"
