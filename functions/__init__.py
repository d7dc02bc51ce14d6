"""The deployable functions: one folder each, `functions/<folder>/main.py`, target `handle`.

FUNCTIONS names their Knative Services (the folder with '-' for '_'), in the order the
local stack gives them ports; the deployment generator and the local stack both read it.
"""

from __future__ import annotations

FUNCTIONS: tuple[str, ...] = (
    "inbox-adapter",
    "ingest",
    "package",
    "publish",
    "prip",
    "notify",
    "route",
    "poll",
    "deadletter",
    "evict",
    "verify",
)


def folder_of(service: str) -> str:
    """The folder under functions/ of a Knative Service name."""
    return service.replace("-", "_")

