"""What only telemetry reads, from the environment (prefix AUXIP_), once per process.

Kept apart from `shared.adapters.settings.Settings` so a function can log and trace before (or
without) the catalogue's configuration being valid.
"""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class TelemetrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUXIP_", extra="ignore")

    # OTLP/HTTP collector base URL (spans go to <endpoint>/v1/traces); unset: spans are made
    # (trace ids still travel and reach the logs) but exported nowhere.
    otlp_endpoint: str | None = None
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
