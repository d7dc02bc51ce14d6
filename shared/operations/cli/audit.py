"""`auxip audit`: the audit trail (downloads, subscription changes), newest first;
`auxip audit verify` proves its hash chain; `auxip audit export` writes it as ECS JSON
lines for an archive or a SIEM."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from shared.adapters.catalogue import audit_chain
from shared.adapters.catalogue.audit import search
from shared.core.s1time import format_odata
from shared.operations import audit_export
from shared.operations.cli import session

_AGO = re.compile(r"([0-9]+)\s*([smhdw])", re.ASCII)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`2h`, `3d`, `45m` ago, or an ISO date/time (UTC when no zone is given)."""
    match = _AGO.fullmatch(text.strip())
    if match is not None:
        amount, unit = match.groups()
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is neither a duration (2h, 3d) nor an ISO"
                                 " date/time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


app = typer.Typer(add_completion=False)


@app.callback(invoke_without_command=True)
def listing(
    context: typer.Context,
    user: str | None = typer.Option(None, "--user", "-u", help="only this actor"),
    since: str | None = typer.Option(None, "--since", "-s",
                                     help="2h, 3d, or 2024-01-01T00:00:00Z"),
    action: str | None = typer.Option(None, "--action", "-a",
                                      help="download, subscription, subscription.create, ..."),
    limit: int = typer.Option(100, "--limit", "-n", min=1, max=100_000),
) -> None:
    """The audit trail (downloads, subscription changes), newest first; `verify` proves its
    hash chain, `export` writes it as ECS JSON lines."""
    if context.invoked_subcommand is None:
        audit(user=user, since=since, action=action, limit=limit)


def audit(*, user: str | None, since: str | None, action: str | None, limit: int) -> None:
    """The audit trail (downloads, subscription changes), newest first."""
    when = parse_since(since) if since else None
    url = session.settings().database_url
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            rows = search(conn, actor=user, action=action, since=when, limit=limit)
    except psycopg.OperationalError as error:
        print(f"cannot connect: {error}".strip())
        raise typer.Exit(1) from None
    table = Table("at (UTC)", "actor", "action", "outcome", "bytes", "range", "client")
    # Product names are long and operators copy them: full width, on a line of their own.
    table.add_column("product / subscription", overflow="fold")
    for row in rows:
        target = row["product_id"] or row["subscription_id"] or ""
        name = row["details"].get("name") if isinstance(row["details"], dict) else None
        table.add_row(format_odata(row["at"]), row["actor"], row["action"], row["outcome"],
                      "" if row["bytes_sent"] is None else f"{row['bytes_sent']:,}",
                      row["range_spec"] or "", row["client_address"] or "", f"{name or target}")
    Console().print(table)
    print(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}")


@app.command()
def verify(
    anchor: str | None = typer.Option(
        None, "--anchor",
        help="seq:hash printed by an earlier verify or export, kept elsewhere: that row must"
             " still be there, unchanged (catches rows cut off the end)"),
) -> None:
    """Walk the hash chain; name the first row altered, removed or reordered (exit 1)."""
    try:
        anchored = audit_chain.parse_anchor(anchor) if anchor else None
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--anchor") from None
    try:
        with psycopg.connect(session.settings().database_url, connect_timeout=5) as conn:
            report = audit_chain.verify(conn, anchor=anchored)
    except psycopg.OperationalError as error:
        print(f"cannot connect: {error}".strip())
        raise typer.Exit(1) from None
    problems = report.problems or []
    for problem in problems:
        print(f"{problem.kind}: {problem.message}")
    if report.unchained:
        print(f"{report.unchained} row(s) from before the chain (migration 0008) not covered")
    print(f"{report.checked} chained row(s) checked; head {report.anchor}")
    if problems:
        print(f"chain BROKEN: {len(problems)} problem(s), the first: {problems[0].message}")
        raise typer.Exit(1)
    print("chain intact")


@app.command()
def export(
    since: str | None = typer.Option(None, "--since", "-s",
                                     help="2h, 3d, or 2024-01-01T00:00:00Z (default: all)"),
    format: str = typer.Option("ecs", "--format", "-f", help="ecs: ECS JSON lines"),
    output: Path | None = typer.Option(None, "--output", "-o",
                                       help="file to write (default: standard output)"),
) -> None:
    """The audit rows as ECS JSON lines, in chain order; the last one's anchor to stderr."""
    if format != "ecs":
        raise typer.BadParameter(f"{format!r}: the only format is ecs", param_hint="--format")
    when = parse_since(since) if since else None
    try:
        with psycopg.connect(session.settings().database_url, connect_timeout=5) as conn:
            if output is None:
                count, anchor = audit_export.write(conn, sys.stdout, when)
            else:
                partial = output.with_name(output.name + ".partial")
                with partial.open("w", encoding="utf-8") as out:
                    count, anchor = audit_export.write(conn, out, when)
                partial.replace(output)  # an archive never holds half an export
    except psycopg.OperationalError as error:
        print(f"cannot connect: {error}".strip(), file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"{count} row(s) exported; last chained row (anchor) {anchor or 'none'}",
          file=sys.stderr)
