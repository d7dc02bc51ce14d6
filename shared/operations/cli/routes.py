"""`auxip routes list | load | enable | disable | transfers | retry`: where published
products go."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from shared.adapters.catalogue import routes as routes_table
from shared.adapters.catalogue import transfers as transfers_table
from shared.operations.cli import routing_file
from shared.operations.cli.session import connect
from shared.pipeline.routing import config
from shared.pipeline.routing.targets import outbound

app = typer.Typer(no_args_is_help=True, help=__doc__)
console = Console()



@app.command("list")
def list_routes() -> None:
    """Routes, what they match and where they send it."""
    with connect() as conn:
        rows = routes_table.all_routes(conn)
        counts = dict(((r, s), n) for r, s, n in conn.execute(
            "SELECT route, status, count(*) FROM transfers GROUP BY route, status").fetchall())
    table = Table("name", "enabled", "match", "target", "completed", "pending", "failed")
    for row in rows:
        try:
            route = config.route_from_row(row)
            match = _describe_match(route)
            target = f"{route.target.kind}: {_target_text(route)}"
        except config.ConfigError as error:
            match, target = "(invalid)", str(error)
        name = row["name"]
        table.add_row(name, "yes" if row["enabled"] else "no", match, target,
                      *(str(counts.get((name, s), 0)) for s in ("completed", "pending", "failed")))
    console.print(table)


def _describe_match(route: config.Route) -> str:
    parts = [f"{k}={v}" for k, v in route.match.model_dump(exclude_defaults=True).items()]
    if route.exclude is not None:
        parts += [f"not {k}={v}" for k, v in route.exclude.model_dump(exclude_defaults=True)
                  .items()]
    return ", ".join(parts) or "everything"


def _target_text(route: config.Route) -> str:
    target = route.target
    for field in ("url", "bucket", "path"):
        if hasattr(target, field):
            value = getattr(target, field)
            if field == "path" and hasattr(target, "login"):
                value = f"{target.login.host}:{value}"  # type: ignore[union-attr]
            return str(value)
    return ""


@app.command()
def load(
    path: Path = typer.Argument(..., help="the routing file (YAML), e.g. config/routing.yaml"),
    prune: bool = typer.Option(False, "--prune", help="delete routes the file no longer has"),
) -> None:
    """Create or update the file's routes."""
    with connect() as conn:
        routing_file.load(conn, console, path, table=routes_table,
                          entries=lambda document: document.routes,
                          row_of=config.route_row, existing=routes_table.all_routes, prune=prune,
                          kind="route", vet=outbound.check_route)


@app.command()
def enable(name: str) -> None:
    """Route products along this route again (pending transfers resume)."""
    _set_enabled(name, True)


@app.command()
def disable(name: str) -> None:
    """Stop routing along this route (pending transfers wait)."""
    _set_enabled(name, False)


def _set_enabled(name: str, enabled: bool) -> None:
    with connect() as conn:
        routing_file.set_enabled(conn, console, table=routes_table, kind="route", name=name,
                                 enabled=enabled)


@app.command()
def transfers(
    route: str = typer.Option(None, "--route"),
    status: str = typer.Option(None, "--status", help="pending | completed | failed"),
    limit: int = typer.Option(50, "--limit"),
) -> None:
    """Recent transfers, newest first."""
    with connect() as conn:
        rows = transfers_table.recent(conn, route=route, status=status, limit=limit)
    table = Table("updated", "route", "product", "status", "attempts", "bytes", "ms", "error")
    for row in rows:
        table.add_row(row["updated_at"].strftime("%Y-%m-%d %H:%M:%S"), row["route"],
                      row["product_name"] or str(row["product_id"]), row["status"],
                      str(row["attempts"]), str(row["bytes"] or ""),
                      str(row["duration_ms"] or ""),
                      f"{row['reason'] or ''} {row['error'] or ''}".strip()[:60])
    console.print(table)


@app.command()
def retry(route: str, product: UUID = typer.Option(None, "--product")) -> None:
    """Failed transfers of a route back to pending (the next sweep attempts them)."""
    with connect() as conn:
        count = transfers_table.retry_failed(conn, route, product)
    console.print(f"{count} transfer(s) pending again", highlight=False)


if __name__ == "__main__":
    app()
