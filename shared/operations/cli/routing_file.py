"""What `auxip routes` and `auxip sources` share: loading their half of the routing file
into the catalogue, and switching one entry on or off."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import psycopg
import typer
from rich.console import Console

from shared.operations.cli import operator_events
from shared.pipeline.routing import config


class Table(Protocol):
    """A catalogue table of named routing entries (shared.adapters.catalogue.routes / sources)."""

    def upsert(self, conn: psycopg.Connection, row: Mapping[str, Any]) -> str: ...
    def delete(self, conn: psycopg.Connection, name: str) -> bool: ...
    def set_enabled(self, conn: psycopg.Connection, name: str, enabled: bool) -> bool: ...


def load(conn: psycopg.Connection, console: Console, path: Path, *, table: Table,
         entries: Callable[[Any], Iterable[Any]], row_of: Callable[[Any], Mapping[str, Any]],
         existing: Callable[[psycopg.Connection], list[dict]], prune: bool,
         kind: str, vet: Callable[[Any], None] | None = None) -> None:
    """Create or update the file's entries; with `prune`, delete those it no longer has.
    `vet` refuses an entry (ConfigError) before anything is written."""
    try:
        document = config.load_file(path)
        wanted = list(entries(document))
        for entry in wanted:
            if vet is not None:
                vet(entry)
    except config.ConfigError as error:
        console.print(f"[red]{error}[/red]", highlight=False)
        raise typer.Exit(1) from None
    deleted: list[str] = []
    with conn.transaction():
        for entry in wanted:
            console.print(f"{entry.name}: {table.upsert(conn, row_of(entry))}", highlight=False)
        if prune:
            names = {entry.name for entry in wanted}
            for row in existing(conn):
                if row["name"] not in names:
                    table.delete(conn, row["name"])
                    deleted.append(row["name"])
                    console.print(f"{row['name']}: deleted", highlight=False)
    operator_events.done(f"{kind}s.load", file_path=str(path),
                         loaded=[entry.name for entry in wanted], deleted=deleted or None)


def set_enabled(conn: psycopg.Connection, console: Console, *, table: Table, kind: str,
                name: str, enabled: bool) -> None:
    action = f"{kind}s.{'enable' if enabled else 'disable'}"
    if not table.set_enabled(conn, name, enabled):
        operator_events.done(action, outcome="failure", reason="unknown_name", name=name)
        console.print(f"no {kind} named {name}", highlight=False)
        raise typer.Exit(1)
    operator_events.done(action, name=name)
    console.print(f"{name}: {'enabled' if enabled else 'disabled'}", highlight=False)
