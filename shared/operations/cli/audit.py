"""`auxip audit`: the audit trail (downloads, subscription changes), newest first."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from shared.adapters.catalogue.audit import search
from shared.core.s1time import format_odata
from shared.operations.cli import session

_AGO = re.compile(r"([0-9]+)\s*([smhdw])", re.ASCII)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`2h`, `3d`, `45m` ago, or an ISO date/time (UTC when no zone is given)."""
    match = _AGO.fullmatch(text.strip())
    if match is not None:
        amount, unit = match.groups()
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is neither a duration (2h, 3d) nor an ISO"
                                 " date/time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def audit(
    user: str | None = typer.Option(None, "--user", "-u", help="only this actor"),
    since: str | None = typer.Option(None, "--since", "-s",
                                     help="2h, 3d, or 2024-01-01T00:00:00Z"),
    action: str | None = typer.Option(None, "--action", "-a",
                                      help="download, subscription, subscription.create, ..."),
    limit: int = typer.Option(100, "--limit", "-n", min=1, max=100_000),
) -> None:
    """The audit trail (downloads, subscription changes), newest first."""
    when = parse_since(since) if since else None
    url = session.settings().database_url
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            rows = search(conn, actor=user, action=action, since=when, limit=limit)
    except psycopg.OperationalError as error:
        print(f"cannot connect: {error}".strip())
        raise typer.Exit(1) from None
    table = Table("at (UTC)", "actor", "action", "outcome", "bytes", "range", "client")
    # Product names are long and operators copy them: full width, on a line of their own.
    table.add_column("product / subscription", overflow="fold")
    for row in rows:
        target = row["product_id"] or row["subscription_id"] or ""
        name = row["details"].get("name") if isinstance(row["details"], dict) else None
        table.add_row(format_odata(row["at"]), row["actor"], row["action"], row["outcome"],
                      "" if row["bytes_sent"] is None else f"{row['bytes_sent']:,}",
                      row["range_spec"] or "", row["client_address"] or "", f"{name or target}")
    Console().print(table)
    print(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}")
