"""Configuration: one object, read from the environment (prefix AUXIP_) once at start.

Every entry point (function, CLI, router) builds it with `Settings()` and hands it down;
nothing below reads the environment itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUXIP_", extra="ignore")

    # Catalogue
    database_url: str = "postgresql://postgres@127.0.0.1:5432/auxip"
    db_pool_max: int = 8

    # Object storage (S3 API: Ceph RGW locally, MinIO in production)
    s3_endpoint: str = "http://127.0.0.1:8110"  # Layout(8080).s3_endpoint
    s3_access_key: str = "AUXACCESSKEY"
    s3_secret_key: SecretStr = SecretStr("AUXSECRETKEY12345")
    s3_region: str = "us-east-1"
    s3_memstore_bytes: int | None = None  # local stack: RGW's in-memory store (default 2 GiB)
    inbox_bucket: str = "auxip-inbox"
    archive_bucket: str = "auxip-archive"
    quarantine_bucket: str = "auxip-quarantine"

    # Checks on arrival
    # ClamAV cannot scan more than 2 GiB in one stream: a larger file could never get a verdict.
    max_file_bytes: int = 2000 * 1024**2
    clamd_host: str = "127.0.0.1"
    clamd_port: int = 8112  # Layout(8080).clamd_port
    clamd_socket: str | None = None
    clamd_timeout_s: float = 330.0  # above clamd MaxScanTime (300 s): a slow verdict is no failure
    extra_product_types: str | None = None
    safe_folder_grace_s: float = 600.0  # a SAFE folder incomplete this long is quarantined
    # An inbox object this old with no event (its notification was lost) is announced anew.
    inbox_reconcile_age_s: float = 300.0

    # Eventing: where functions send the events they emit (Knative injects K_SINK).
    broker_url: str | None = Field(
        default=None, validation_alias=AliasChoices("K_SINK", "AUXIP_BROKER_URL")
    )
    event_source: str = "/auxip"

    # Publication
    prip_url: str = "http://127.0.0.1:8085/odata/v1"
    token_url: str | None = None
    eof_distribution: str = "plain"  # "plain" keeps .EOF as is, "zip" publishes .EOF.zip
    default_retention_days: int | None = None  # None: kept (EvictionDate 9999-12-31)
    retention_days: str = ""  # per type, e.g. "AUX_RESORB=90,AUX_PREORB=30"
    # A product this long in `ingested` or `packaged` gets the event of its next step
    # resent (its consumer failed past the Broker's retries), at most this many times.
    stalled_after_s: float = 900.0
    stalled_resends: int = 3
    # Deliveries the Broker makes before dead-lettering (1 + delivery.retry): what the
    # deadletter function records when the event does not say (Knative's never does).
    dead_letter_attempts: int | None = None
    # Fernet keys sealing subscription endpoint passwords (shared/endpoint_secrets.py).
    secret_keys: SecretStr | None = None

    # Local stack
    state_dir: Path = Path(".local")
    port_base: int = 8080
    # The Kafka the router's KafkaSources read and `auxip kafka` writes to ("host:port,...";
    # default: the stack's own broker, Layout(port_base).kafka_bootstrap).
    kafka_bootstrap_servers: str | None = None
    # How the inbox bucket announces new objects: "webhook" (RGW POSTs them to inbox-adapter)
    # or "kafka" (no webhook: MinIO-format records on the KafkaSource's topic announce them,
    # as production's MinIO writes them; RGW cannot write to Kafka, `auxip kafka put` can).
    inbox_notifications: Literal["webhook", "kafka"] = "webhook"
