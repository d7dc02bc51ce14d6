"""`auxip replay`: send journalled events again, selected by id, type, product or time
range, to the broker or straight to one function. Handlers are idempotent: a replay
re-does only missing work. `--dry-run` lists what would be sent."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.adapters.outbox import event_from_row
from shared.operations import replay as journal_replay
from shared.operations.cli import operator_events
from shared.operations.cli.events import moment
from shared.operations.cli.session import connect, function_url, settings

console = Console()


def register(app: typer.Typer) -> None:
    app.command("replay", help="Send journalled events again (by id, type, product, time),"
                " to the broker or one function; --dry-run lists them.")(replay)


def replay(
    ids: list[str] = typer.Option([], "--id", help="event id (repeatable)"),
    types: list[str] = typer.Option([], "--type", "-t", help="event type (repeatable)"),
    products: list[str] = typer.Option([], "--product", "-p", help="product name (repeatable)"),
    since: str = typer.Option(None, help="event time from (ISO, or an age: 24h, 7d)"),
    until: str = typer.Option(None, help="event time before (ISO, or an age)"),
    everything: bool = typer.Option(False, "--all", help="the whole journal (no criterion)"),
    to: str = typer.Option(journal_replay.BROKER, help="'broker', a function name, or a URL"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list what would be sent, send nothing"),
    limit: int = typer.Option(100_000, help="at most this many events"),
) -> None:
    s = settings()
    selection = journal_replay.Selection(ids=ids, types=types, products=products,
                                         since=moment(since), until=moment(until),
                                         everything=everything, limit=limit)
    try:
        target = journal_replay.resolve_target(s, to, lambda name: function_url(s, name))
        with connect(s) as conn:
            rows = journal_replay.journal_rows(conn, selection)
        with progress() as bar:
            task = bar.add_task("listing" if dry_run else "replaying", total=len(rows))
            report = journal_replay.send_events(
                (event_from_row(row) for row in rows), target, dry_run=dry_run,
                on_sent=lambda _: bar.advance(task))
    except journal_replay.ReplayError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    if dry_run:
        table = Table("type", "subject", "id", title=f"would send to {target}")
        for sent in report.sent:
            table.add_row(sent.type.removeprefix("org.auxip."), sent.subject or "", sent.event_id)
        console.print(table)
        console.print(f"{len(report.sent)} event(s); nothing sent (dry run)")
        return
    print_failures(report)
    operator_events.done("replay", outcome="failure" if report.failed else "success",
                         target=str(target), events=len(report.sent),
                         failed=len(report.failed), products=products or None,
                         types=types or None, ids=ids[:100] or None)
    console.print(f"{len(report.sent) - len(report.failed)} of {len(report.sent)} event(s)"
                  f" accepted by {target}")
    if report.failed:
        raise typer.Exit(1)


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True)


def print_failures(report: journal_replay.Report) -> None:
    if not report.failed:
        return
    table = Table("type", "subject", "id", "status", "error", title="not accepted")
    for sent in report.failed:
        table.add_row(sent.type.removeprefix("org.auxip."), sent.subject or "", sent.event_id,
                      str(sent.status or "-"), (sent.error or "")[:120])
    console.print(table)
