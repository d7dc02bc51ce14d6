"""`auxip deadletters list | show | replay | purge`: events the broker gave up delivering
after its retries (recorded by the deadletter function), for operators: inspect, fix the
cause, replay, then purge."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from shared.operations import replay as replays
from shared.operations.cli import operator_events
from shared.operations.cli.events import moment
from shared.operations.cli.replay import print_failures, progress
from shared.operations.cli.session import connect, function_url, settings

app = typer.Typer(no_args_is_help=True,
                  help="Events the broker gave up delivering: list, show, replay, purge.")
console = Console()


@app.command("list")
def list_dead_letters(
    include_replayed: bool = typer.Option(False, "--all", help="replayed ones too"),
    event_type: str = typer.Option(None, "--type", "-t", help="only this event type"),
    limit: int = typer.Option(100),
) -> None:
    """Dead letters not replayed yet, oldest first."""
    with connect(settings()) as conn:
        rows = replays.dead_letters(conn, include_replayed=include_replayed,
                                    event_type=event_type, limit=limit)
    table = Table("id", "received", "type", "subject", "subscriber", "attempts", "error",
                  "replayed")
    for row in rows:
        table.add_row(str(row["id"]), f"{row['received_at']:%Y-%m-%d %H:%M:%S}",
                      row["type"].removeprefix("org.auxip."), row["subject"] or "",
                      row["subscriber"] or "",
                      str(row["attempts"]) if row["attempts"] is not None else "?",
                      (row["error"] or "")[:80],
                      f"{row['replayed_at']:%Y-%m-%d %H:%M}" if row["replayed_at"] else "")
    console.print(table)
    console.print(f"{len(rows)} dead letter(s)")


@app.command()
def show(dead_letter_id: int) -> None:
    """One dead letter: why it failed, and the whole event."""
    with connect(settings()) as conn:
        row = replays.dead_letter(conn, dead_letter_id)
    if row is None:
        console.print(f"no dead letter {dead_letter_id}")
        raise typer.Exit(1)
    console.print_json(json.dumps(row, default=str))


@app.command()
def replay(
    ids: list[int] = typer.Argument(None, help="dead letter ids (see `list`)"),
    everything: bool = typer.Option(False, "--all", help="every dead letter not replayed yet"),
    to: str = typer.Option(None, help="'broker', a function name or a URL (default: the"
                                      " subscriber that failed)"),
    dry_run: bool = typer.Option(False, "--dry-run"),
) -> None:
    """Send dead letters again, after fixing their cause; those accepted are marked replayed."""
    s = settings()
    with connect(s) as conn:
        if everything:
            ids = [row["id"] for row in replays.dead_letters(conn, limit=1_000_000)]
        if not ids:
            console.print("nothing to replay: give ids or --all")
            raise typer.Exit(2)
        try:
            with progress() as bar:
                task = bar.add_task("replaying", total=len(ids))
                report = replays.replay_dead_letters(
                    conn, ids, s, to, dry_run=dry_run, on_sent=lambda _: bar.advance(task),
                    function_url=lambda name: function_url(s, name))
        except replays.ReplayError as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(2) from None
    if dry_run:
        for sent in report.sent:
            console.print(f"would send {sent.type} {sent.event_id} ({sent.subject or '-'})")
        return
    print_failures(report)
    operator_events.done("deadletters.replay",
                         outcome="failure" if report.failed else "success",
                         dead_letters=ids[:100], events=len(report.sent),
                         failed=len(report.failed), target=to)
    console.print(f"{len(report.sent) - len(report.failed)} of {len(report.sent)} replayed")
    if report.failed:
        raise typer.Exit(1)


@app.command()
def purge(
    ids: list[int] = typer.Argument(None, help="dead letter ids"),
    replayed: bool = typer.Option(False, "--replayed", help="only those already replayed"),
    before: str = typer.Option(None, help="received before (ISO, or an age: 30d)"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask"),
) -> None:
    """Delete dead letters (criteria combine)."""
    if not (ids or replayed or before):
        console.print("purge what? give ids, --replayed or --before")
        raise typer.Exit(2)
    if not yes and not typer.confirm("delete the matching dead letters?"):
        raise typer.Exit(1)
    with connect(settings()) as conn:
        count = replays.purge_dead_letters(conn, ids=ids or (), replayed=replayed,
                                           before=moment(before))
    operator_events.done("deadletters.purge", event_type="deletion", deleted=count,
                         dead_letters=list(ids or ())[:100] or None, replayed=replayed,
                         before=before)
    console.print(f"{count} dead letter(s) deleted")
