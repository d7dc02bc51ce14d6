"""`auxip products list | show | restore | verify`: the catalogue as operators look at it,
with each product's story (its journalled events, rejections and dead letters), the rows a
lost catalogue can get back from the journal, and the scrub of catalogue against archive."""

from __future__ import annotations

import json
import os

import typer
from psycopg.rows import dict_row
from rich.console import Console
from rich.table import Table

from shared.adapters import runtime
from shared.adapters.catalogue import restore
from shared.operations import replay
from shared.operations.cli import operator_events
from shared.operations.cli.session import connect, settings
from shared.pipeline.integrity import repair, scrub

app = typer.Typer(no_args_is_help=True,
                  help="The catalogue: products, and each one's events, rejections, dead letters.")
console = Console()


@app.command("list")
def list_products(
    product_type: str = typer.Option(None, "--type", "-t", help="product type, e.g. AUX_CAL"),
    status: str = typer.Option(None, help="ingested | packaged | published | evicted"),
    name: str = typer.Option(None, help="name contains"),
    limit: int = typer.Option(50, help="the latest this many"),
) -> None:
    """Products, latest ingested first."""
    with connect(settings()) as conn:
        rows = conn.cursor(row_factory=dict_row).execute(
            "SELECT logical_name, name, product_type, status, content_length, origin_date,"
            " publication_date FROM products"
            " WHERE (%(type)s::text IS NULL OR product_type = %(type)s)"
            " AND (%(status)s::text IS NULL OR status = %(status)s)"
            " AND (%(name)s::text IS NULL OR strpos(coalesce(name, logical_name), %(name)s) > 0)"
            " ORDER BY ingestion_date DESC, id LIMIT %(limit)s",
            {"type": product_type, "status": status, "name": name, "limit": limit}).fetchall()
    table = Table("name", "type", "status", "bytes", "origin", "published", "timeliness")
    for row in rows:
        published = row["publication_date"]
        delay = (published - row["origin_date"]).total_seconds() if published else None
        table.add_row(row["name"] or row["logical_name"], row["product_type"], row["status"],
                      f"{row['content_length']:,}", f"{row['origin_date']:%Y-%m-%d %H:%M:%S}",
                      f"{published:%Y-%m-%d %H:%M:%S}" if published else "",
                      f"{delay:.1f} s" if delay is not None else "")
    console.print(table)
    console.print(f"{len(rows)} product(s)")


@app.command()
def show(name: str) -> None:
    """One product (by name, logical name or id): its row, events, rejections, dead letters."""
    logical = replay.logical_name(name)
    with connect(settings()) as conn:
        cursor = conn.cursor(row_factory=dict_row)
        row = cursor.execute(
            "SELECT * FROM products WHERE name = %s OR logical_name = %s OR id::text = %s",
            (name, logical, name)).fetchone()
        if row is not None:
            logical = row["logical_name"]
        events = replay.journal_rows(conn, replay.Selection(products=[logical]))
        rejected = cursor.execute(
            "SELECT rejected_at, reason, detail, quarantine_key FROM rejections"
            " WHERE name = %s OR name = %s ORDER BY rejected_at", (name, logical)).fetchall()
        dead = cursor.execute(
            "SELECT id, type, subscriber, error, received_at, replayed_at FROM dead_letters"
            " WHERE event_id = ANY(%s) ORDER BY id", ([e["id"] for e in events],)).fetchall()
    if row is None and not events and not rejected:
        console.print(f"nothing known about {name}")
        raise typer.Exit(1)
    if row is not None:
        console.print_json(json.dumps(row, default=str))
    table = Table("time", "type", "subject", "id", "sent", title="events")
    for event in events:
        table.add_row(f"{event['time']:%Y-%m-%d %H:%M:%S}",
                      event["type"].removeprefix("org.auxip."),
                      event["subject"] or "", event["id"],
                      "yes" if event["sent_at"] else "[yellow]no[/]")
    console.print(table)
    for rejection in rejected:
        console.print(f"[red]rejected[/red] {rejection['rejected_at']:%Y-%m-%d %H:%M:%S}"
                      f" {rejection['reason']}: {rejection['detail']}"
                      f" (quarantine: {rejection['quarantine_key']})")
    for letter in dead:
        state = "replayed" if letter["replayed_at"] else "waiting"
        console.print(f"[yellow]dead letter {letter['id']}[/yellow] {letter['type']}"
                      f" for {letter['subscriber']}: {letter['error']} ({state})")


@app.command("restore")
def restore_products(
    dry_run: bool = typer.Option(False, "--dry-run", help="list them, restore nothing"),
    limit: int = typer.Option(None, help="at most this many"),
) -> None:
    """Put back, from the journal, the products it saw ingested that the catalogue lacks
    (after a database restore from an older backup, or rows deleted by hand). No event is
    sent: subscribers and routes already had theirs; `auxip replay` redoes work instead."""
    with connect(settings()) as conn:
        lost = restore.missing(conn, limit)
        table = Table("logical name", "type", "ingested", "restored as",
                      title="missing from the catalogue")
        restored = 0
        for row in lost:
            outcome = "(dry run)"
            if not dry_run:
                with conn.transaction():
                    done = restore.restore(conn, row["id"])
                status = conn.execute("SELECT status FROM products WHERE id = %s",
                                      (row["id"],)).fetchone()
                outcome = status[0] if done and status else "restored meanwhile"
                restored += done
            table.add_row(row["logical_name"], row["product_type"],
                          f"{row['ingested']:%Y-%m-%d %H:%M:%S}", outcome)
    console.print(table)
    if dry_run:
        console.print(f"{len(lost)} product(s) missing; nothing restored (dry run)")
    else:
        operator_events.done("products.restore", event_type="creation", missing=len(lost),
                             restored=restored)
        console.print(f"{restored} of {len(lost)} missing product(s) restored")


@app.command("verify")
def verify(
    full: bool = typer.Option(False, "--full", help="read every product's bytes (checksums)"),
    sample: int = typer.Option(100, help="products whose bytes are read, at random"),
    grace: float = typer.Option(scrub.DEFAULT_GRACE_S,
                                help="seconds an unclaimed object may be in flight"),
    mark_offline: bool = typer.Option(
        False, "--mark-offline", help="products whose bytes are gone answer 410, not 503"),
    fix: bool = typer.Option(False, "--repair",
                             help="bring bytes back: package again, fetch from the source"),
) -> None:
    """Compare the catalogue with the archive: each product's objects there (and their
    size), checksums of a sample (all with --full), objects no product claims. Exits 1
    when they disagree."""
    rt = runtime.build(settings())
    try:
        report = scrub.scrub(rt, full=full, sample=sample, grace_s=grace)
        repairs = (repair.repair(rt, report, os.environ, bring_back=fix,
                                 mark_offline=mark_offline) if fix or mark_offline else [])
    finally:
        rt.close()
    if fix or mark_offline:
        operator_events.done("products.repair" if fix else "products.mark_offline",
                             findings=len(report.findings),
                             repaired=[f"{d.action}:{d.name}" for d in repairs][:100],
                             offline=[d.name for d in repairs if d.offline][:100])
    # One line each, never wrapped: keys are long, and operators grep them.
    for f in report.findings:
        product = f" [{f.name}, {f.status}]" if f.product_id else ""
        console.print(f"{f.kind:<8} {f.key}{product}: {f.detail}", highlight=False,
                      soft_wrap=True, markup=False)
    for done in repairs:
        offline = "; taken offline" if done.offline else ""
        console.print(f"{done.action}: {done.name}: {done.detail}{offline}", highlight=False,
                      soft_wrap=True, markup=False)
    console.print(f"{report.products} product(s), {report.objects} archive object(s), "
                  f"{report.objects_read} read ({report.bytes_read:,} bytes) in "
                  f"{report.seconds:.1f} s: {len(report.findings)} disagreement(s)",
                  highlight=False, soft_wrap=True)
    if report.findings:
        raise typer.Exit(1)
