"""What only telemetry reads, from the environment (prefix AUXIP_), once per process.

Kept apart from `shared.adapters.settings.Settings` so a function can log and trace before (or
without) the catalogue's configuration being valid.
"""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.adapters.telemetry.security_events import parse_target


class TelemetrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUXIP_", extra="ignore")

    # OTLP/HTTP collector base URL (spans go to <endpoint>/v1/traces); unset: spans are made
    # (trace ids still travel and reach the logs) but exported nowhere.
    otlp_endpoint: str | None = None
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    # Where security events go (see security_events): stderr | file:/path |
    # syslog://host:port | syslog+tcp://host:port.
    security_events: str = "stderr"

    @field_validator("security_events")
    @classmethod
    def _known_target(cls, value: str) -> str:
        parse_target(value)
        return value.strip()
