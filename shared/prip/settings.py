"""Settings of the prip function only (env prefix AUXIP_), apart from `shared.adapters.settings`
like `shared.prip.auth.settings`: no other process reads them.

- AUXIP_DOWNLOAD_REDIRECT (`false`): `$value` answers `307` to a presigned URL of the
  archive object instead of streaming the bytes through prip.
- AUXIP_DOWNLOAD_ZERO_COPY (`true`): a streamed `$value` of a large product is relayed
  from the S3 connection to the client's by splice(2), without passing through prip's
  memory, when both are plain TCP and the server is gunicorn's sync or gthread worker
  over HTTP/1.x (shared.adapters.zero_copy); `false`: always through prip's buffers.
- AUXIP_DOWNLOAD_URL_TTL_S (`300`): lifetime of those presigned URLs.
- AUXIP_DOWNLOAD_S3_ENDPOINT (the S3 endpoint): the S3 address clients can reach, when it
  differs from the one prip uses (presigned URLs name it, and the signature covers it).
- AUXIP_MAX_PARALLEL_DOWNLOADS (`4`): parallel streamed downloads per user, across every
  prip process; one more gets `429` with `Retry-After`.
- AUXIP_DOWNLOAD_STREAMS_PER_PROCESS (`32`): streamed downloads one prip process serves at
  once (each holds a PostgreSQL session for its quota slot); past it, `503`.
- AUXIP_PRIP_PUBLIC_URL (from each request): the service root as clients see it, e.g.
  `https://auxip.example.org/odata/v1`, for `@odata.nextLink` behind a TLS proxy.
- AUXIP_MAX_SUBSCRIPTIONS_PER_USER (`100`): subscriptions one user may hold.
"""

from __future__ import annotations

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class PripSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUXIP_", extra="ignore")

    download_redirect: bool = False
    download_zero_copy: bool = True
    download_url_ttl_s: int = 300
    download_s3_endpoint: str | None = None
    max_parallel_downloads: int = 4
    download_streams_per_process: int = 32
    prip_public_url: str | None = None
    max_subscriptions_per_user: int = 100

    @field_validator("download_url_ttl_s", "max_parallel_downloads",
                     "download_streams_per_process", "max_subscriptions_per_user")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator("prip_public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None
