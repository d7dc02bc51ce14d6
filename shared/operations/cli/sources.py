"""`auxip sources list | load | enable | disable | poll`: the sources pollers fetch from."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from shared.adapters import runtime
from shared.adapters.catalogue import sources as sources_table
from shared.operations.cli import routing_file
from shared.operations.cli.session import connect, settings
from shared.pipeline.routing import config, polling

app = typer.Typer(no_args_is_help=True, help=__doc__)
console = Console()



@app.command("list")
def list_sources() -> None:
    """Sources, their window and what their last poll did."""
    with connect() as conn:
        rows = sources_table.all_sources(conn)
        seen = {r["name"]: sources_table.seen_count(conn, r["name"]) for r in rows}
    table = Table("name", "kind", "enabled", "fetched", "window", "last run", "last error",
                  "failing")
    for row in rows:
        state = row["state"] or {}
        failing = sum(1 for f in (state.get("failures") or {}).values())
        table.add_row(row["name"], row["kind"], "yes" if row["enabled"] else "no",
                      str(seen[row["name"]]), state.get("since") or "-",
                      state.get("last_run") or "-", (state.get("last_error") or "")[:60],
                      str(failing or ""))
    console.print(table)


@app.command()
def load(
    path: Path = typer.Argument(..., help="the routing file (YAML), e.g. config/routing.yaml"),
    prune: bool = typer.Option(False, "--prune", help="delete sources the file no longer has"),
) -> None:
    """Create or update the file's sources (their poll state is kept)."""
    with connect() as conn:
        routing_file.load(conn, console, path, table=sources_table,
                          entries=lambda document: document.sources,
                          row_of=config.source_row, existing=sources_table.all_sources, prune=prune,
                          kind="source")


@app.command()
def enable(name: str) -> None:
    """Poll this source again."""
    _set_enabled(name, True)


@app.command()
def disable(name: str) -> None:
    """Stop polling this source (its window and what it fetched are kept)."""
    _set_enabled(name, False)


def _set_enabled(name: str, enabled: bool) -> None:
    with connect() as conn:
        routing_file.set_enabled(conn, console, table=sources_table, kind="source", name=name,
                                 enabled=enabled)


@app.command()
def poll(names: list[str] = typer.Argument(None, help="sources (default: every enabled one)")
         ) -> None:
    """Poll now, in the foreground, whether due or not."""
    rt = runtime.build(settings())
    try:
        results = polling.poll_all(rt, os.environ, only=names or None, force=True)
    finally:
        rt.close()
    failed = False
    for result in results:
        failed |= result.status in ("error", "unknown")
        console.print(f"{result.source}: {result.status}, {result.fetched} fetched, "
                      f"{result.skipped} already seen, {result.failed} failed "
                      f"{result.detail}".rstrip(), highlight=False)
    if failed:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
