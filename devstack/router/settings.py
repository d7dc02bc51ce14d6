"""The router's configuration: the stack's settings plus what only the router reads.

Same rules as `shared.adapters.settings`: environment variables with the AUXIP_ prefix, read
once by the entry point (`python -m devstack.router`), handed down from there.
"""

from __future__ import annotations

from pathlib import Path

from devstack.settings import StackSettings

# The manifests ship with the source tree; a relative AUXIP_KNATIVE_DIR is looked up from
# the working directory first, then from the repository root.
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


class RouterSettings(StackSettings):
    knative_dir: Path = Path("knative/base")
    router_workers: int = 16
    # Longest idle wait between checks of the deliveries table (LISTEN/NOTIFY and in-process
    # wake-ups cover new events; this catches retries scheduled by other router processes).
    router_poll_s: float = 1.0
    # Per-attempt HTTP timeout when neither the Trigger nor the Broker sets `timeout`.
    router_attempt_timeout_s: float = 300.0
    # Retry delay base when `retry` is set but `backoffDelay` is not.
    router_backoff_delay_s: float = 1.0
    router_max_body_bytes: int = 16 * 1024 * 1024
    router_db_pool: int = 12
    # Delivered events are purged from the router's tables after this long; failed ones stay.
    router_retention_hours: float = 24.0
    # KafkaSources: a member joins its group ~half this after it starts (Knative: 10000);
    # done records' offsets are committed this often (Knative: every 5 s).
    router_kafka_session_timeout_ms: int = 6000
    router_kafka_commit_interval_s: float = 1.0

    def manifests_dir(self) -> Path:
        path = self.knative_dir
        if path.is_absolute() or path.exists():
            return path
        candidate = REPOSITORY_ROOT / path
        return candidate if candidate.exists() else path
