"""`auxip`: the operators' commands, one typer app; each module of shared/operations/cli
adds its own. Packages installed beside may add theirs through the `auxip.commands` entry
point (a development checkout adds the local stack's `up | down | status | env | demo`)."""

from __future__ import annotations

import logging
import os
from importlib.metadata import entry_points

import typer
from pydantic import ValidationError

from shared.adapters.telemetry import logging as ecs_logs
from shared.adapters.telemetry import security_events
from shared.adapters.telemetry.settings import TelemetrySettings
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


@app.callback()
def _observed(ctx: typer.Context) -> None:
    """Logs (ECS lines on stderr) and security events (AUXIP_SECURITY_EVENTS) of a command,
    written out when it ends."""
    try:
        s = TelemetrySettings()
    except ValidationError as error:
        typer.echo(f"auxip is not configured: {error}", err=True)
        raise typer.Exit(2) from None
    handler = ecs_logs.configure("auxip-cli", level=s.log_level, fmt=s.log_format)
    if "AUXIP_LOG_LEVEL" not in os.environ:
        # A terminal's command: its own output is the report; INFO lines only when asked.
        handler.setLevel(logging.WARNING)
    security_events.configure("auxip-cli", s.security_events, fmt=s.log_format)
    ctx.call_on_close(ecs_logs.flush_all)
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
