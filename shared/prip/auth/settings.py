"""Authentication settings (env prefix AUXIP_), kept apart from the shared Settings
(shared.adapters.settings) so that only the processes that check credentials read them.

- AUXIP_AUTH_ISSUER: the expected `iss`, exactly as the realm writes it (a Keycloak realm
  URL). Unset: bearer tokens are refused (Basic users or an anonymous catalogue only).
- AUXIP_AUTH_AUDIENCE (`auxip`): the accepted audiences, comma-separated (e.g.
  `auxip,auxip-production`); a token is accepted when its `aud` holds one of them, or its
  `azp` is one of them (see tokens.py).
- AUXIP_AUTH_JWKS_URL: where the signing keys are. Default: the `jwks_uri` of
  `<issuer>/.well-known/openid-configuration`, discovered once.
- AUXIP_AUTH_ALGORITHMS (`RS256,ES256`): accepted signature algorithms; `none` and HS*
  are refused at start.
- AUXIP_AUTH_LEEWAY_S (`30`): clock skew allowed on `exp`, `nbf`, `iat`.
- AUXIP_AUTH_JWKS_MAX_AGE_S (`600`): keys older than this are refetched (key rotation).
- AUXIP_AUTH_JWKS_MIN_INTERVAL_S (`30`): an unknown `kid` refetches at most this often.
- AUXIP_AUTH_HTTP_TIMEOUT_S (`5`): discovery and JWKS requests.
- AUXIP_AUTH_BASIC_USERS (empty: Basic disabled): legacy HTTP Basic users, see basic.py.
- AUXIP_ANONYMOUS_CATALOGUE (`false`): catalogue queries without credentials; downloads
  always need a reader.
"""

from __future__ import annotations

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.adapters.settings import SettingsError

# Asymmetric only: with an HMAC algorithm the "key" a verifier holds is also a signing key,
# and a public key fed to HS256 is the classic key-confusion forgery.
SAFE_ALGORITHMS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUXIP_", extra="ignore")

    auth_issuer: str | None = None
    auth_audience: str = "auxip"
    auth_jwks_url: str | None = None
    auth_algorithms: str = "RS256,ES256"
    auth_leeway_s: float = 30.0
    auth_jwks_max_age_s: float = 600.0
    auth_jwks_min_interval_s: float = 30.0
    auth_http_timeout_s: float = 5.0
    auth_basic_users: SecretStr = SecretStr("")
    anonymous_catalogue: bool = False

    @field_validator("auth_algorithms")
    @classmethod
    def _only_asymmetric(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        unsafe = [name for name in names if name not in SAFE_ALGORITHMS]
        if not names or unsafe:
            raise ValueError(
                f"AUXIP_AUTH_ALGORITHMS must name asymmetric algorithms among "
                f"{sorted(SAFE_ALGORITHMS)}; refused: {unsafe or 'empty list'}"
            )
        return ",".join(names)

    @field_validator("auth_audience")
    @classmethod
    def _some_audience(cls, value: str) -> str:
        names = list(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))
        if not names:
            raise ValueError("AUXIP_AUTH_AUDIENCE must name at least one audience")
        return ",".join(names)

    @field_validator("auth_leeway_s", "auth_jwks_min_interval_s", "auth_http_timeout_s")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must not be negative")
        return value

    @property
    def issuer(self) -> str | None:
        # Exactly as configured: `iss` is compared as a string, trailing slash included.
        return self.auth_issuer or None

    def require_some_access(self) -> None:
        """Stop a prip that could let nobody in (no issuer, no Basic users, no anonymous
        catalogue): a deployment mistake, not a state to serve 401s from."""
        if not (self.issuer or self.auth_basic_users.get_secret_value()
                or self.anonymous_catalogue):
            raise SettingsError(
                "prip has no way to authenticate anyone: set AUXIP_AUTH_ISSUER (the OIDC "
                "realm, e.g. https://keycloak.example.org/realms/auxip), AUXIP_AUTH_BASIC_USERS,"
                " or AUXIP_ANONYMOUS_CATALOGUE=true")

    @property
    def audiences(self) -> tuple[str, ...]:
        return tuple(self.auth_audience.split(","))

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(self.auth_algorithms.split(","))
