"""`auxip`: one typer app; each module of shared/cli adds its commands."""

from __future__ import annotations

import typer

from shared.cli import (
    audit, db, deadletters, demo, events, evict, kafka, kpi, products, replay, routes, sources,
    stack, subscriptions,
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
stack.register(app)
app.add_typer(db.app, name="db")
app.command("audit")(audit.audit)
app.command("demo")(demo.run)
app.add_typer(subscriptions.app, name="subscriptions")
app.add_typer(events.app, name="events")
app.add_typer(deadletters.app, name="deadletters")
app.add_typer(products.app, name="products")
replay.register(app)
kpi.register(app)
evict.register(app)
app.add_typer(routes.app, name="routes")
app.add_typer(sources.app, name="sources")
app.add_typer(kafka.app, name="kafka")

if __name__ == "__main__":
    app()
