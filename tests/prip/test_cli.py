"""`auxip audit` and `auxip subscriptions` against the test catalogue, mounted the way
shared/cli/main.py mounts them."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from shared.cli import audit, subscriptions
from tests.prip.catalogue import pid

pytestmark = pytest.mark.usefixtures("seeded")

app = typer.Typer(no_args_is_help=True)
app.command("audit")(audit.audit)
app.add_typer(subscriptions.app, name="subscriptions")


def run(*args: str, columns: int = 250) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


def test_audit_lists_downloads_with_filters(api):
    assert api.get(f"Products({pid(19)})/$value", "bob").status_code == 200
    output = run("audit", "--user", "bob", "--action", "download", "--since", "1h")
    assert "S1A_OPER_MPL_ORBPRE" in output and "completed" in output and "7,000" in output
    assert "1 entry" in output
    narrow = run("audit", "--user", "bob", "--action", "download", columns=80)
    assert "S1A_OPER_MPL_ORBPRE" in "".join(line.strip(" │┃") for line in narrow.splitlines())
    assert "0 entries" in run("audit", "--user", "nobody")
    assert "0 entries" in run("audit", "--since", "2999-01-01T00:00:00Z")


def test_subscriptions_list_pause_resume_cancel(api):
    created = api.request("POST", "Subscriptions", "bob", json={
        "NotificationEndpoint": "https://cli.example.org/hook",
        "FilterParam": "contains(Name,'AUX_CAL')"}).json()
    key = created["Id"]
    assert key in run("subscriptions", "list", "--status", "running")
    assert "running -> paused" in run("subscriptions", "pause", key)
    assert api.get(f"Subscriptions({key})", "bob").json()["Status"] == "paused"
    assert "paused -> running" in run("subscriptions", "resume", key)
    assert "running -> cancelled" in run("subscriptions", "cancel", key)
    refused = CliRunner().invoke(app, ["subscriptions", "resume", key])
    assert refused.exit_code == 1 and "cancelled" in refused.output
    assert key in run("subscriptions", "list", "--status", "cancelled")
    assert "cli:" in run("audit", "--action", "subscription.update")
