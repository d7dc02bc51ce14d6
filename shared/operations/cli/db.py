"""`auxip db upgrade | status`: the catalogue's schema migrations."""

from __future__ import annotations

import psycopg
import typer

from shared.adapters.catalogue import migrations
from shared.operations.cli import session

app = typer.Typer(no_args_is_help=True, help=__doc__)


def _url() -> str:
    return session.settings().database_url


@app.command()
def upgrade() -> None:
    """Apply the pending migrations."""
    try:
        done = migrations.upgrade(_url())
    except psycopg.OperationalError as error:
        print(f"cannot connect: {error}".strip())
        raise typer.Exit(1) from None
    if not done:
        print("up to date")
    for migration in done:
        print(f"applied {migration.version:04d}_{migration.name}")


@app.command()
def status() -> None:
    """List the migrations, applied or pending."""
    url = _url()
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            present = set(migrations.applied(conn))
    except psycopg.OperationalError as error:
        print(f"cannot connect: {error}".strip())
        raise typer.Exit(1) from None
    pending = 0
    for migration in migrations.available():
        state = "applied" if migration.version in present else "pending"
        pending += state == "pending"
        print(f"{migration.version:04d}_{migration.name}  {state}")
    print(f"{pending} pending" if pending else "up to date")
