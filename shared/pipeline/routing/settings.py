"""Settings of the route function only (env prefix AUXIP_).

- AUXIP_ROUTE_INLINE_RETRY_S (`10`): a failed attempt is retried within the same
  invocation while the waits add up to at most this; longer waits are left to the route
  sweep (a PingSource), so a target that is down for hours holds no function instance.
- AUXIP_ROUTE_SWEEP_LIMIT (`50`): due transfers one sweep retries.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RoutingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUXIP_", extra="ignore")

    route_inline_retry_s: float = Field(10.0, ge=0)
    route_sweep_limit: int = Field(50, ge=1)
