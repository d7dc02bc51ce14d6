"""`auxip events list | show | send-pending`: the event journal (the outbox every function
writes its events to), for operators."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import typer
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from rich.console import Console
from rich.table import Table

from shared.adapters import outbox
from shared.operations import replay
from shared.operations.cli.session import connect, settings

app = typer.Typer(no_args_is_help=True,
                  help="The event journal (outbox): list, show, send the unsent.")
console = Console()

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def moment(text: str | None) -> datetime | None:
    """`2026-01-02T03:04:05Z` (UTC when no zone), `2026-01-02`, or an age: `90s`, `30m`,
    `24h`, `7d`, `2w` ago."""
    if not text:
        return None
    age = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw])", text.strip())
    if age:
        return datetime.now(UTC) - timedelta(seconds=float(age[1]) * _UNITS[age[2]])
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is no ISO date nor an age like 24h") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@app.command("list")
def list_events(
    types: list[str] = typer.Option([], "--type", "-t", help="event type (repeatable)"),
    products: list[str] = typer.Option([], "--product", "-p", help="product name (repeatable)"),
    since: str = typer.Option(None, help="event time from (ISO, or an age: 24h, 7d)"),
    until: str = typer.Option(None, help="event time before (ISO, or an age)"),
    unsent: bool = typer.Option(False, "--unsent", help="only events never sent to the broker"),
    limit: int = typer.Option(50, help="at most this many rows (the latest)"),
) -> None:
    """Journalled events, oldest first."""
    selection = replay.Selection(types=types, products=products, since=moment(since),
                                 until=moment(until), unsent=unsent, everything=True,
                                 limit=limit, newest=True)
    with connect(settings()) as conn:
        rows = replay.journal_rows(conn, selection)
    table = Table("recorded", "type", "subject", "id", "sent", "trace")
    for row in rows:
        trace = (row["extensions"] or {}).get("traceparent", "")
        table.add_row(f"{row['recorded_at']:%Y-%m-%d %H:%M:%S}", _short_type(row["type"]),
                      row["subject"] or "", row["id"],
                      f"{row['sent_at']:%H:%M:%S}" if row["sent_at"] else "[yellow]unsent[/]",
                      trace.split("-")[1] if trace.count("-") == 3 else "")
    console.print(table)
    console.print(f"{len(rows)} event(s)")


@app.command()
def show(event_id: str) -> None:
    """One journalled event: the CloudEvent and its delivery bookkeeping."""
    with connect(settings()) as conn:
        row = conn.cursor(row_factory=dict_row).execute(
            "SELECT * FROM event_journal WHERE id = %s", (event_id,)).fetchone()
    if row is None:
        console.print(f"no event {event_id} in the journal")
        raise typer.Exit(1)
    console.print_json(json.dumps(row, default=str))


@app.command("send-pending")
def send_pending(
    older_than: float = typer.Option(0.0, help="only rows unsent for this many seconds"),
) -> None:
    """Send the journal rows never sent to the broker (a crash, a broker that was down)."""
    s = settings()
    if not s.broker_url:
        console.print("no broker: set AUXIP_BROKER_URL")
        raise typer.Exit(1)
    with ConnectionPool(s.database_url, min_size=1, max_size=1, kwargs={"autocommit": True},
                        name="auxip-cli") as pool:
        sent = outbox.send_pending(pool, s.broker_url, older_than_s=older_than, limit=100_000)
    console.print(f"{sent} event(s) sent to {s.broker_url}")


def _short_type(event_type: str) -> str:
    return event_type.removeprefix("org.auxip.")
