"""Configuration: one object, read from the environment (prefix AUXIP_) once at start.

Every entry point (function, CLI) builds it with `load_settings()` and hands it down;
nothing below reads the environment itself. Nothing here points at a machine by default:
the catalogue must be given, and the S3 server with its credentials wherever objects are
touched (the local stack gives its own, see devstack/settings.py). A function checks what
it needs when it starts and stops, naming what is missing.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(RuntimeError):
    """Configuration a process cannot start with; the message names the variables."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUXIP_", extra="ignore")

    # Catalogue
    database_url: str
    db_pool_max: int = 8

    # Object storage (S3 API: MinIO in production, Ceph RGW locally)
    s3_endpoint: str | None = None  # required where objects are touched (require_s3)
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    s3_region: str = "us-east-1"
    inbox_bucket: str = "auxip-inbox"
    archive_bucket: str = "auxip-archive"
    quarantine_bucket: str = "auxip-quarantine"

    # Checks on arrival
    # ClamAV cannot scan more than 2 GiB in one stream: a larger file could never get a verdict.
    max_file_bytes: int = 2000 * 1024**2
    clamd_host: str | None = None  # or clamd_socket; ingest needs one of them
    clamd_port: int = 3310
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
    # Where `auxip replay --to <function>` sends: `{name}` is the Knative Service name,
    # e.g. http://{name}.auxip.svc.cluster.local (unset: give a URL instead).
    function_url_template: str | None = None

    # Publication
    eof_distribution: str = "plain"  # "plain" keeps .EOF as is, "zip" publishes .EOF.zip
    # A product of one object (a zipped SAFE...) up to this size, as it arrived and what it
    # holds uncompressed, is packaged by ingest from the bytes it holds; larger ones by
    # package, which reads them again.
    package_in_ingest_bytes: int = Field(default=16 * 1024**2, ge=0)
    default_retention_days: int | None = None  # None: kept (EvictionDate 9999-12-31)
    retention_days: str = ""  # per type, e.g. "AUX_RESORB=90,AUX_PREORB=30"
    # A product this long in `ingested` or `packaged` gets the event of its next step
    # resent (its consumer failed past the Broker's retries), at most this many times.
    stalled_after_s: float = 900.0
    stalled_resends: int = 3
    # Deliveries the Broker makes before dead-lettering (1 + delivery.retry): what the
    # deadletter function records when the event does not say (Knative's never does).
    dead_letter_attempts: int | None = None
    # The verify function's scrub, a slice a tick: at most this many of the catalogue's
    # objects (one S3 listing page), from where the last tick stopped.
    verify_budget: int = Field(default=1000, ge=1)
    # Archive objects of the slice whose bytes each tick reads (a random sample).
    verify_sample: int = 5
    # Fernet keys sealing subscription endpoint passwords (adapters/endpoint_secrets.py).
    secret_keys: SecretStr | None = None

    def require_s3(self) -> tuple[str, str, str]:
        """(endpoint, access key, secret key), or SettingsError naming what is unset."""
        missing = [name for name, value in (("AUXIP_S3_ENDPOINT", self.s3_endpoint),
                                            ("AUXIP_S3_ACCESS_KEY", self.s3_access_key),
                                            ("AUXIP_S3_SECRET_KEY", self.s3_secret_key))
                   if not value]
        if missing or not (self.s3_endpoint and self.s3_access_key and self.s3_secret_key):
            raise SettingsError(f"{', '.join(missing)} not set: the S3 server of the archive")
        return self.s3_endpoint, self.s3_access_key, self.s3_secret_key.get_secret_value()

    def require_scanner(self) -> None:
        """Stop a process that scans files but has no scanner to ask."""
        if not (self.clamd_host or self.clamd_socket):
            raise SettingsError("no virus scanner configured: set AUXIP_CLAMD_HOST (and "
                                "AUXIP_CLAMD_PORT, default 3310) or AUXIP_CLAMD_SOCKET")


def load_settings() -> Settings:
    """Settings from the environment; SettingsError naming every variable that is missing
    or invalid (instead of pydantic's field names)."""
    try:
        return Settings()  # type: ignore[call-arg]  # the required fields come from the env
    except ValidationError as error:
        raise SettingsError(describe(error, Settings)) from None


def describe(error: ValidationError, model: type[BaseSettings]) -> str:
    """`AUXIP_X is not set; AUXIP_Y: <why>` for a settings class's validation error."""
    prefix = str(model.model_config.get("env_prefix") or "")
    problems = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        name = f"{prefix}{field}".upper()
        if item["type"] == "missing":
            problems.append(f"{name} is not set")
        else:
            problems.append(f"{name}: {item['msg']}")
    return "; ".join(problems)
