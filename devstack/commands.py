"""The local stack's `auxip` commands (`up | down | status | env | clean | demo | kafka`),
into the operator CLI through the `auxip.commands` entry point of a development checkout;
they also point every operator command at the local stack (its addresses unless AUXIP_*
says)."""

from __future__ import annotations

import shlex

import typer
from rich.console import Console
from rich.table import Table

from devstack import demo_command, kafka_command
from devstack.layout import Layout
from devstack.settings import StackSettings, stack_settings
from devstack.stack import clean as forget
from devstack.stack import up as stack
from functions import FUNCTIONS
from shared.adapters.settings import Settings
from shared.operations.cli import session

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("down")(down)
    app.command("status")(status)
    app.command("env")(env)
    app.command("clean")(clean)
    app.command("demo")(demo_command.run)
    app.add_typer(kafka_command.app, name="kafka")
    session.use(settings=stack_settings, function_url=_function_url)


def _function_url(s: Settings, name: str) -> str | None:
    if name not in FUNCTIONS:
        return None
    port_base = s.port_base if isinstance(s, StackSettings) else StackSettings().port_base
    return Layout(port_base).function_url(name)


def up(
    services_only: bool = typer.Option(
        False, "--services-only", help="PostgreSQL, clamd and S3 only: no router, no functions"
    ),
    with_monitoring: bool = typer.Option(
        False, "--with-monitoring",
        help="also a Prometheus scraping every function, with the alerting rules of knative/",
    ),
) -> None:
    """Start the local stack in the background (what runs already is kept)."""
    try:
        info = stack.up(StackSettings(), services_only=services_only,
                        monitoring=with_monitoring)
    except Exception as error:  # every failure here is reported the same way: with its log
        console.print(f"[red]auxip up failed:[/red] {error}", markup=True, highlight=False)
        raise typer.Exit(1) from None
    table = Table("service", "pid", "endpoint", "")
    for service in info.services:
        table.add_row(service.name, str(service.pid or "-"), service.endpoint,
                      "started" if service.started else "kept")
    console.print(table)
    console.print(f"PostgreSQL ({info.database}): {info.settings.database_url}", highlight=False)
    for note in info.notes:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    console.print(f"ready in {info.seconds:.1f} s; `eval \"$(auxip env)\"` points a shell at it",
                  highlight=False)


def down() -> None:
    """Stop every process of the local stack; its data is kept for the next `up`."""
    settings = StackSettings()
    stopped = stack.down(settings)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}", highlight=False)
    console.print(f"catalogue and archive kept ({settings.state_dir}); `auxip up` starts them "
                  "again, `auxip clean` deletes them", highlight=False)


def clean() -> None:
    """Stop the local stack and delete its data: catalogue, archive and state folder."""
    settings = StackSettings()
    console.print(f"auxip clean: forgetting the local stack in {settings.state_dir.resolve()}",
                  highlight=False)
    forget.clean(settings, lambda line: console.print(f"  {line}", highlight=False))


def status() -> None:
    """What the local stack runs."""
    services = stack.status(StackSettings())
    if not services:
        console.print("nothing tracked: `auxip up` starts the stack")
        raise typer.Exit(1)
    table = Table("service", "pid", "endpoint", "state")
    for service in services:
        alive = service.pid is not None
        table.add_row(service.name, str(service.pid or "-"), service.endpoint,
                      "[green]running[/green]" if alive else "[red]stopped[/red]")
    console.print(table)
    if not all(s.pid for s in services):
        raise typer.Exit(1)


def env() -> None:
    """Print `export AUXIP_...=...` lines: eval "$(auxip env)"."""
    for name, value in stack.env(StackSettings()).items():
        print(f"export {name}={shlex.quote(value)}")
