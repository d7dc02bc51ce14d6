"""The security event of an operator's command (`auxip.operator.<action>`): who ran what
that changes the interface point, and how it ended (docs/security-events.md). Dry runs and
read-only commands emit nothing."""

from __future__ import annotations

import getpass
import logging
import os
from typing import Any

from shared.adapters.telemetry import security_events


def operator() -> str:
    """The person at the terminal: sudo's caller before the account sudo switched to."""
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (a container's arbitrary user)
        return f"uid:{os.getuid()}"


def done(action: str, *, outcome: str = "success", reason: str | None = None,
         event_type: str = "change", **fields: Any) -> None:
    security_events.emit(f"auxip.operator.{action}", "configuration",
                         outcome,  # type: ignore[arg-type]
                         event_type=event_type, reason=reason, user=operator(),
                         level=logging.INFO if outcome == "success" else logging.WARNING,
                         via="cli", **fields)
