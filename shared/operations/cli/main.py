"""`auxip`: the operators' commands, one typer app; each module of shared/operations/cli
adds its own. Packages installed beside may add theirs through the `auxip.commands` entry
point (a development checkout adds the local stack's `up | down | status | env | demo`)."""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from shared.operations.cli import (
    audit,
    db,
    deadletters,
    events,
    evict,
    kpi,
    products,
    replay,
    routes,
    sources,
    subscriptions,
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(db.app, name="db")
app.add_typer(audit.app, name="audit")
app.add_typer(subscriptions.app, name="subscriptions")
app.add_typer(events.app, name="events")
app.add_typer(deadletters.app, name="deadletters")
app.add_typer(products.app, name="products")
replay.register(app)
kpi.register(app)
evict.register(app)
app.add_typer(routes.app, name="routes")
app.add_typer(sources.app, name="sources")


def _add_installed_commands(app: typer.Typer) -> None:
    for entry in entry_points(group="auxip.commands"):
        try:
            register = entry.load()
        except ModuleNotFoundError as error:
            # Declared by the project's metadata but not shipped (the image carries no
            # local stack): nothing to add. Any other failure is a bug and surfaces.
            if error.name and entry.module.split(".")[0] == error.name.split(".")[0]:
                continue
            raise
        register(app)


_add_installed_commands(app)

if __name__ == "__main__":
    app()
