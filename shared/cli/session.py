"""What every `auxip` command that reads the catalogue starts with: the settings (the local
stack's addresses unless AUXIP_* says otherwise) and a catalogue connection that fails
with one clear line instead of a traceback."""

from __future__ import annotations

import psycopg
import typer
from rich.console import Console

from shared.settings import Settings
from shared.stack.up import stack_settings

_console = Console(stderr=True)


def settings() -> Settings:
    # The local stack may run its own cluster and router: theirs, unless AUXIP_* says.
    return stack_settings(Settings())


def connect(s: Settings | None = None) -> psycopg.Connection:
    url = (s or settings()).database_url
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        _console.print(f"[red]cannot connect to the catalogue:[/red] {error}".strip())
        raise typer.Exit(1) from None
