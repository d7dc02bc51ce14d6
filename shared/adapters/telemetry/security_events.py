"""Security events for a SIEM: one ECS event per refusal, attack, change of access or
operator action (docs/security-events.md is the catalogue), on the `auxip.security` logger.

Each is an ECS event (`event.kind: event`) with `event.category` / `event.type` from ECS's
allowed values, a stable dotted `event.action` (`auxip.token.refused`...), `event.outcome`,
`event.reason`, `user.name`, `source.ip` and what else ECS names (`file.name`,
`threat.software.name` for a virus), auxip's own fields under `auxip.*`.

Where they go is configuration (AUXIP_SECURITY_EVENTS):
- `stderr` (default): with the logs, told apart by `event.kind: event` and
  `log.logger: auxip.security`;
- `file:/var/log/auxip/security.jsonl`: a file of their own, reopened when logrotate moves
  it (WatchedFileHandler);
- `syslog://host:514` (UDP) or `syslog+tcp://host:514`: RFC 5424 syslog, facility authpriv,
  the ECS JSON as the message.
Writing goes through the same queue and writer thread as the logs (telemetry.logging): a
request never waits for the file or the syslog server, and `emit` never raises (a broken
collector must not fail a request). The file's lines are formatted and written by the log
writer process, as the logs are; syslog's by the writer thread.
"""

from __future__ import annotations

import ipaddress
import logging
import logging.handlers
import os
import socket
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from shared.adapters.telemetry.logging import ChannelHandler, EcsFormatter, channel

LOGGER = logging.getLogger("auxip.security")
log = logging.getLogger("auxip.telemetry")

Category = Literal["authentication", "iam", "file", "malware", "configuration", "network",
                   "intrusion_detection", "web", "database", "process"]
Outcome = Literal["success", "failure", "unknown"]

# ECS's event.type for each category when the caller gives none: what fits a refusal
# ("denied") or a change, within the category's allowed types.
_DEFAULT_TYPE = {"authentication": "start", "iam": "change", "file": "info", "malware": "info",
                 "configuration": "change", "network": "denied",
                 "intrusion_detection": "denied", "web": "access", "database": "change",
                 "process": "info"}

failures = 0  # emits that failed (a bug, never a collector: that is the listener's side)

_handler: ChannelHandler | None = None


def emit(action: str, category: Category | list[Category], outcome: Outcome, *,
         reason: str | None = None, user: str | None = None, source_ip: str | None = None,
         event_type: str | list[str] | None = None, message: str | None = None,
         file_name: str | None = None, threat: str | None = None,
         level: int = logging.WARNING, **auxip_fields: Any) -> None:
    """One security event; `action` is the stable name (`auxip.token.refused`)."""
    global failures
    try:
        if not LOGGER.isEnabledFor(level):
            return
        categories = [category] if isinstance(category, str) else list(category)
        types = ([event_type] if isinstance(event_type, str) else list(event_type)
                 if event_type else [_DEFAULT_TYPE[categories[0]]])
        fields: dict[str, Any] = {
            "event.kind": "event", "event.category": categories, "event.type": types,
            "event.action": action, "event.outcome": outcome, "event.module": "auxip",
            "event.dataset": "auxip.security",
        }
        if reason:
            fields["event.reason"] = reason
        if user:
            fields["user.name"] = user
        if source_ip:
            address = _ip(source_ip)
            if address:
                fields["source.ip"] = address
        if file_name:
            fields["file.name"] = file_name
        if threat:
            fields["threat.software.name"] = threat
            fields["threat.software.type"] = "Malware"
        for key, value in auxip_fields.items():
            if value is not None:
                fields[f"auxip.{key}"] = value
        text = message or f"{action} {outcome}" + (f": {reason}" if reason else "")
        LOGGER.log(level, text, extra=fields)
    except Exception:  # noqa: BLE001 - a security event must never fail the request it records
        failures += 1


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def parse_target(text: str) -> tuple[str, str | tuple[str, int] | None]:
    """`stderr` | `file:/path` | `syslog://host:port` | `syslog+tcp://host:port`, checked:
    ("stderr", None), ("file", path), ("syslog" | "syslog+tcp", (host, port))."""
    text = text.strip()
    if text == "stderr":
        return "stderr", None
    if text.startswith("file:"):
        path = text.removeprefix("file:").removeprefix("//")
        if not path.startswith("/"):
            raise ValueError(f"AUXIP_SECURITY_EVENTS {text!r}: file: needs an absolute path")
        return "file", path
    parts = urlsplit(text)
    if parts.scheme in ("syslog", "syslog+tcp") and parts.hostname:
        return parts.scheme, (parts.hostname, parts.port or 514)
    raise ValueError(f"AUXIP_SECURITY_EVENTS {text!r}: expected stderr, file:/path,"
                     " syslog://host:port or syslog+tcp://host:port")


class _Rfc5424(logging.Formatter):
    """`1 TIMESTAMP HOST APP PROCID MSGID - MSG` after the handler's `<PRI>` (RFC 5424);
    the message is the event's ECS line."""

    def __init__(self, service: str, framed: bool) -> None:
        super().__init__()
        self.app, self.framed = f"auxip-{service}", framed
        self.host = socket.gethostname() or "-"
        self.ecs = EcsFormatter(service)

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"
        msgid = str(getattr(record, "event.action", None) or "auxip.security")
        line = (f"1 {stamp} {self.host} {self.app} {os.getpid()} {msgid} - "
                f"{self.ecs.format(record)}")
        return line + "\n" if self.framed else line  # TCP: non-transparent framing (LF)


def _syslog_handler(service: str, kind: str, where: tuple[str, int]) -> logging.Handler:
    tcp = kind == "syslog+tcp"
    handler = logging.handlers.SysLogHandler(
        address=where, facility=logging.handlers.SysLogHandler.LOG_AUTHPRIV,
        socktype=socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
    handler.append_nul = False
    handler.setFormatter(_Rfc5424(service, framed=tcp))
    return handler


def configure(service: str, target: str = "stderr", *, fmt: str = "json") -> None:
    """Point `auxip.security` at `target`; idempotent: a second call replaces the first."""
    global _handler
    if _handler is not None:
        LOGGER.removeHandler(_handler)
        _handler.close()
        _handler = None
    LOGGER.setLevel(logging.INFO)
    kind, where = parse_target(target)
    if kind == "stderr":
        LOGGER.propagate = True  # the root logger's handler: the same stream as the logs
        return
    try:
        if kind == "file":
            _handler = channel(service, fmt, Path(str(where)))
        else:
            assert isinstance(where, tuple)
            _handler = channel(service, fmt, _syslog_handler(service, kind, where))
    except OSError as error:
        # A syslog server down at start must not stop the function: the events then go
        # with the logs, and this line says why.
        LOGGER.propagate = True
        log.error("security events: cannot open %s (%s); they go to stderr", target, error)
        return
    LOGGER.addHandler(_handler)
    LOGGER.propagate = False
