"""What the prip function holds for its life: the runtime (pool, S3), its settings, the
authenticator, the download slots and the presigning client; built on first use."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from shared.adapters import runtime, storage
from shared.adapters.runtime import Runtime
from shared.prip.auth import Authenticator, AuthSettings
from shared.prip.quotas import DownloadSlots
from shared.prip.settings import PripSettings


@dataclass(frozen=True)
class Service:
    runtime: Runtime
    settings: PripSettings
    auth: Authenticator
    slots: DownloadSlots

    @cached_property
    def presigner(self) -> Any:
        """An S3 client for the endpoint clients reach (presigning is local); built on the
        first redirect: catalogue queries need no S3 client."""
        if self.settings.download_s3_endpoint:
            return storage.client(self.runtime.settings.model_copy(
                update={"s3_endpoint": self.settings.download_s3_endpoint}))
        return self.runtime.s3

    @classmethod
    def build(cls, rt: Runtime, settings: PripSettings, auth: AuthSettings) -> Service:
        slots = DownloadSlots(rt.settings.database_url, per_user=settings.max_parallel_downloads,
                              streams=settings.download_streams_per_process)
        return cls(rt, settings, Authenticator.from_settings(auth), slots)

    def close(self) -> None:
        self.slots.close()


@cache
def current() -> Service:
    """The process-wide service, from the environment (read here and in runtime.current)."""
    return Service.build(runtime.current(), PripSettings(), AuthSettings())


def check_environment() -> None:
    """At prip's start: the catalogue and S3 settings, and some way to let users in."""
    runtime.check_environment()
    AuthSettings().require_some_access()
