"""`auxip subscriptions list | pause | resume | cancel | reseal | new-key`: operators' view of
Subscriptions. Changes follow the API's rules (cancelled is final) and are audited as
`cli:<user>`; `reseal` and `new-key` rotate the keys sealing endpoint passwords."""

from __future__ import annotations

import getpass
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from shared.adapters import endpoint_secrets
from shared.adapters.catalogue import subscriptions as table
from shared.adapters.catalogue.audit import AuditEntry, record
from shared.core.s1time import format_odata
from shared.operations.cli import operator_events
from shared.operations.cli.session import connect, settings

app = typer.Typer(no_args_is_help=True, help=__doc__)



@app.command("list")
def list_(
    owner: str | None = typer.Option(None, "--owner", help="the owner's subject"),
    status: str | None = typer.Option(None, "--status", help="running, paused or cancelled"),
) -> None:
    """Every subscription, with its delivered and failed notification attempts."""
    if status is not None and status not in table.STATUSES:
        raise typer.BadParameter(f"--status must be one of {', '.join(table.STATUSES)}")
    with connect() as conn:
        rows = table.overview(conn, owner=owner, status=status)
    out = Table("id", "owner", "status", "event", "filter", "endpoint", "submitted",
                "last notified", "delivered", "failed")
    for row in rows:
        last = row["last_notification_date"]
        out.add_row(str(row["id"]), row["owner"], row["status"], row["subscription_event"],
                    _short(row["filter_param"] or "(all)"), row["notification_endpoint"],
                    format_odata(row["submission_date"]), format_odata(last) if last else "",
                    str(row["delivered"]), str(row["failed"]))
    Console().print(out)
    print(f"{len(rows)} subscription{'' if len(rows) == 1 else 's'}")


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _change(subscription_id: str, status: str) -> None:
    try:
        key = UUID(subscription_id)
    except ValueError:
        raise typer.BadParameter(f"{subscription_id!r} is not a subscription id") from None
    with connect() as conn, conn.transaction():
        conn.execute("SELECT 1 FROM subscriptions WHERE id = %s FOR UPDATE", (key,))
        row = table.get(conn, key, None)
        if row is None:
            print(f"no subscription {key}")
            raise typer.Exit(1)
        before = row["status"]
        if before == table.CANCELLED and status != table.CANCELLED:
            print(f"subscription {key} is cancelled: it cannot be {status} again")
            raise typer.Exit(1)
        if before == status:
            print(f"subscription {key} is {status} already")
            return
        table.set_status(conn, key, status)
        record(conn, AuditEntry(
            actor=f"cli:{getpass.getuser()}", action="subscription.update", outcome="ok",
            subscription_id=key,
            details={"owner": row["owner"], "status_before": before, "status": status,
                     "via": "auxip subscriptions"}))
    operator_events.done("subscriptions.status", subscription_id=str(key), owner=row["owner"],
                         status_before=before, status=status)
    print(f"subscription {key}: {before} -> {status}")


@app.command()
def pause(subscription_id: str) -> None:
    """Stop notifying (nothing is replayed on resume)."""
    _change(subscription_id, table.PAUSED)


@app.command()
def resume(subscription_id: str) -> None:
    """Notify again, from the next publication on."""
    _change(subscription_id, table.RUNNING)


@app.command()
def cancel(subscription_id: str) -> None:
    """Stop for good (the owner can still list and delete it)."""
    _change(subscription_id, table.CANCELLED)


@app.command()
def reseal() -> None:
    """Seal every stored endpoint password under the first key of AUXIP_SECRET_KEYS: after
    a new key is put first (rotation), or for passwords stored before sealing."""
    keys = settings().secret_keys
    changed = 0
    with connect() as conn, conn.transaction():
        rows = conn.execute("SELECT id, notification_password FROM subscriptions"
                            " WHERE notification_password IS NOT NULL FOR UPDATE").fetchall()
        for subscription_id, stored in rows:
            try:
                sealed = endpoint_secrets.reseal(stored, keys)
            except endpoint_secrets.SecretsUnavailable as error:
                operator_events.done("subscriptions.reseal", outcome="failure",
                                     reason=str(error)[:200])
                print(f"subscription {subscription_id}: {error}; nothing changed")
                raise typer.Exit(1) from None
            conn.execute("UPDATE subscriptions SET notification_password = %s WHERE id = %s",
                         (sealed, subscription_id))
            changed += 1
    operator_events.done("subscriptions.reseal", resealed=changed)
    print(f"{changed} endpoint password(s) sealed under the first key")


@app.command("new-key")
def new_key() -> None:
    """Print a new key for AUXIP_SECRET_KEYS (put it first to rotate, then `reseal`)."""
    operator_events.done("subscriptions.new_key", event_type="creation")
    print(endpoint_secrets.new_key())
