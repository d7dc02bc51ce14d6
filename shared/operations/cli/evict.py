"""`auxip evict [--dry-run]`: the published products past their EvictionDate, evicted now
as the hourly evict function would (offline, bytes deleted, `product.evicted` sent), or
only listed."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table

from shared.adapters import runtime
from shared.adapters.catalogue import eviction as due_products
from shared.operations.cli import operator_events
from shared.operations.cli.session import connect, settings
from shared.pipeline import eviction

console = Console()


def register(app: typer.Typer) -> None:
    app.command("evict", help="Evict the published products past their EvictionDate"
                " (--dry-run: only list them).")(evict)


def evict(
    dry_run: bool = typer.Option(False, "--dry-run", help="list what is due, change nothing"),
    limit: int = typer.Option(eviction.DEFAULT_LIMIT, help="at most this many products"),
) -> None:
    s = settings()
    now = datetime.now(UTC)
    if dry_run:
        with connect(s) as conn:
            rows = due_products.due(conn, now, limit)
        table = Table("name", "type", "eviction date", "bytes", title="due for eviction")
        for row in rows:
            table.add_row(row["name"] or row["logical_name"], row["product_type"],
                          f"{row['eviction_date']:%Y-%m-%d %H:%M:%S}",
                          f"{row['content_length']:,}")
        console.print(table)
        console.print(f"{len(rows)} product(s) due; dry run: nothing changed")
        return
    connect(s).close()  # a clear message now rather than a pool timeout later
    rt = runtime.build(s)
    try:
        done = eviction.evict_due(rt, now, limit)
    finally:
        rt.close()
    table = Table("name", "type", "eviction date", "evicted at", title="evicted")
    for item in done:
        table.add_row(item.name, item.product_type, f"{item.eviction_date:%Y-%m-%d %H:%M:%S}",
                      f"{item.evicted_at:%Y-%m-%d %H:%M:%S}")
    console.print(table)
    operator_events.done("evict", event_type="deletion",
                         evicted=[item.name for item in done][:100], count=len(done))
    console.print(f"{len(done)} product(s) evicted")
