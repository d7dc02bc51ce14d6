"""What a running function holds for its whole life: settings, a connection pool, an S3
client and the virus scanner, built once on first use (not at import: cold start and tests
stay cheap) and shared by every request the process serves. The S3 client is built on its
first use only: publish, notify, deadletter and the inbox adapter never touch S3, and
botocore plus a client cost them ~0.3 s and ~17 MB of cold start."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

from psycopg_pool import ConnectionPool

from shared.adapters import storage
from shared.adapters.db_sessions import check_session
from shared.adapters.settings import Settings, load_settings
from shared.adapters.virus_scan import ClamdScanner


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    pool: ConnectionPool
    # A client handed in (tests share theirs); None: `s3` builds one on first use.
    given_s3: Any = None
    _s3_lock: threading.Lock = field(default_factory=threading.Lock, repr=False,
                                     compare=False)

    @cached_property
    def s3(self) -> Any:
        # cached_property takes no lock (3.12+): the request threads would race to build
        # several clients.
        with self._s3_lock:
            cached = self.__dict__.get("s3")
            if cached is not None:
                return cached
            return self.given_s3 if self.given_s3 is not None else storage.client(self.settings)

    def scanner(self) -> ClamdScanner:
        s = self.settings
        return ClamdScanner(
            host=None if s.clamd_socket else s.clamd_host,
            port=None if s.clamd_socket else s.clamd_port,
            unix_socket=s.clamd_socket,
            timeout=s.clamd_timeout_s,
            chunk_size=1024 * 1024,
        )

    def close(self) -> None:
        self.pool.close()


def build(settings: Settings) -> Runtime:
    # `check`: a pooled session may have died since its last use (PostgreSQL restarted
    # or failed over); without it the next request that takes it fails.
    pool = ConnectionPool(
        settings.database_url, min_size=1, max_size=settings.db_pool_max, open=True,
        kwargs={"autocommit": True}, name="auxip", check=check_session,
    )
    return Runtime(settings=settings, pool=pool)


@cache
def current() -> Runtime:
    """The process-wide runtime, from the environment (the one place it is read)."""
    return build(load_settings())


def check_environment(*, scanner: bool = False) -> None:
    """At a function's start: stop the process now, naming the missing AUXIP_* variables,
    rather than fail every event it is sent (SettingsError)."""
    settings = load_settings()
    settings.require_s3()
    if scanner:
        settings.require_scanner()
