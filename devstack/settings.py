"""The local stack's settings: production's (shared.adapters.settings), with every address
derived from AUXIP_PORT_BASE unless set, the stack's own S3 user, and what only the
stack reads (its state folder, port base, object store size, demo URLs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from devstack.layout import Layout
from devstack.token_issuer.realm import local_issuer, local_token_url
from shared.adapters.settings import Settings

STATE_FILE = "stack.json"
SECRET_KEYS_FILE = "secret-keys"


class StackSettings(Settings):
    # Empty: derived from the port base by stack_settings() unless AUXIP_* sets them.
    database_url: str = "postgresql://postgres@127.0.0.1:5432/auxip"
    s3_endpoint: str = ""
    # The local RGW's own user, made by `up`: not a secret of any real deployment.
    s3_access_key: str = "AUXACCESSKEY"
    s3_secret_key: SecretStr = SecretStr("AUXSECRETKEY12345")
    # Size of the S3 server's store (BlueStore on a sparse file; default 100 GiB).
    s3_store_bytes: int | None = None
    prip_url: str = ""
    token_url: str = ""
    auth_issuer: str = ""
    state_dir: Path = Path(".local")
    port_base: int = 8080
    # The Kafka the router's KafkaSources read and `auxip kafka` writes to ("host:port,...";
    # derived: the stack's own broker, Layout(port_base).kafka_bootstrap).
    kafka_bootstrap_servers: str = ""
    # How the inbox bucket announces new objects: "webhook" (RGW POSTs them to inbox-adapter)
    # or "kafka" (no webhook: MinIO-format records on the KafkaSource's topic announce them,
    # as production's MinIO writes them; RGW cannot write to Kafka, `auxip kafka put` can).
    inbox_notifications: Literal["webhook", "kafka"] = "webhook"


def recorded(state: Path) -> dict:
    """What `up` wrote down about the running stack (its database URL)."""
    try:
        return json.loads((state / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def wired(found: dict, settings: StackSettings) -> str | None:
    """How `up` last wired this inbox bucket's notifications (None: not this bucket)."""
    if found.get("inbox_bucket") == settings.inbox_bucket:
        return found.get("inbox_notifications")
    return None


def stack_settings(settings: StackSettings | None = None) -> StackSettings:
    """`settings` (default: from the environment) with every address the user did not set
    explicitly taken from the layout of AUXIP_PORT_BASE (and the database URL `up` chose,
    once it ran)."""
    settings = settings if settings is not None else StackSettings()
    layout = Layout(settings.port_base)
    state = settings.state_dir.resolve()
    derived: dict[str, object] = {
        "s3_endpoint": layout.s3_endpoint,
        "clamd_host": layout.host,
        "clamd_port": layout.clamd_port,
        "prip_url": layout.function_url("prip") + "/odata/v1",
        "broker_url": layout.router_url,
        "token_url": local_token_url(settings.port_base, layout.host),
        "auth_issuer": local_issuer(settings.port_base, layout.host),
        "kafka_bootstrap_servers": layout.kafka_bootstrap,
    }
    update = {k: v for k, v in derived.items() if k not in settings.model_fields_set}
    sealing = state / SECRET_KEYS_FILE
    if "secret_keys" not in settings.model_fields_set and sealing.exists():
        update["secret_keys"] = SecretStr(sealing.read_text().strip())
    # The URL `up` settled on (maybe a private cluster) stands for the one it was asked for.
    found = recorded(state)
    if found.get("database_url") and (
        "database_url" not in settings.model_fields_set
        or settings.database_url == found.get("requested_url")
    ):
        update["database_url"] = found["database_url"]
    # How `up` wired the inbox holds for every later command on this stack.
    wired_as = wired(found, settings)
    if wired_as and "inbox_notifications" not in settings.model_fields_set:
        update["inbox_notifications"] = wired_as
    update["state_dir"] = state
    return settings.model_copy(update=update)
