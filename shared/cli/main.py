"""`auxip`: one typer app; each module of shared/cli adds its commands."""

from __future__ import annotations

import typer

from shared.cli import audit, db, demo, stack, subscriptions

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
stack.register(app)
app.add_typer(db.app, name="db")
app.command("audit")(audit.audit)
app.command("demo")(demo.run)
app.add_typer(subscriptions.app, name="subscriptions")

if __name__ == "__main__":
    app()
