"""`auxip kpi`: the service report for a period, from the catalogue's timestamps: products
per type, timeliness (publication - arrival) p50/p95/max, rejections by reason, transfer
success rate."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import typer
from rich.console import Console
from rich.table import Table

from shared.operations import kpi as figures
from shared.operations.cli.events import moment
from shared.operations.cli.session import connect, settings

console = Console()


def register(app: typer.Typer) -> None:
    app.command("kpi", help="Report for a period: products per type, timeliness p50/p95/max,"
                " rejections by reason, transfer success rate.")(kpi)


def kpi(
    since: str = typer.Option("24h", help="period start (ISO, or an age: 24h, 7d)"),
    until: str = typer.Option(None, help="period end, excluded (default: now)"),
    target: float = typer.Option(None, help="timeliness target in seconds: count those within"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    start = moment(since) or datetime.now(UTC) - timedelta(days=1)
    end = moment(until) or datetime.now(UTC)
    with connect(settings()) as conn:
        report = figures.report(conn, start, end, target)
    if as_json:
        document = asdict(report) | {"transfer_success_rate": report.transfer_success_rate}
        print(json.dumps(document, default=str, indent=2))
        return
    title = f"{start:%Y-%m-%d %H:%M} -> {end:%Y-%m-%d %H:%M} UTC"
    table = Table("product type", "arrived", "published", "p50", "p95", "max",
                  *(["within target"] if target is not None else []), title=title)
    for t in report.types:
        row = [t.product_type, str(t.arrived), str(t.published), duration(t.timeliness_p50_s),
               duration(t.timeliness_p95_s), duration(t.timeliness_max_s)]
        if target is not None:
            row.append(f"{t.within_target}/{t.published}" if t.within_target is not None else "")
        table.add_row(*row)
    console.print(table)
    if report.rejections:
        rejected = Table("reason", "files", title="rejections")
        for reason, count in report.rejections.items():
            rejected.add_row(reason, str(count))
        console.print(rejected)
    else:
        console.print("no rejection")
    if report.transfers:
        moved = Table("route", "completed", "failed", "success", title="transfers")
        for t in report.transfers:
            moved.add_row(t.route, str(t.completed), str(t.failed), percent(t.success_rate))
        console.print(moved)
        console.print(f"transfer success rate: {percent(report.transfer_success_rate)}")
    else:
        console.print("no transfer")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"
