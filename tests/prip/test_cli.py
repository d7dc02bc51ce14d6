"""`auxip audit` and `auxip subscriptions` against the test catalogue, mounted the way
shared/operations/cli/main.py mounts them."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
import typer
from pydantic import SecretStr
from typer.testing import CliRunner

from shared.adapters import endpoint_secrets
from shared.operations.cli import audit, operator_events, subscriptions
from tests.prip.catalogue import audit_rows, last_audit_id, pid

pytestmark = pytest.mark.usefixtures("seeded")

app = typer.Typer(no_args_is_help=True)
app.add_typer(audit.app, name="audit")
app.add_typer(subscriptions.app, name="subscriptions")


def run(*args: str, columns: int = 250) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


def test_audit_lists_downloads_with_filters(api, settings):
    before = last_audit_id(settings)
    assert api.get(f"Products({pid(19)})/$value", "bob").status_code == 200
    # The stream's row is written as the server closes it: wait for it before asking.
    assert len(audit_rows(settings, actor="bob", since_id=before, wait_for=1)) == 1
    output = run("audit", "--user", "bob", "--action", "download", "--since", "1h")
    assert "S1A_OPER_MPL_ORBPRE" in output and "completed" in output and "7,000" in output
    assert "1 entry" in output
    narrow = run("audit", "--user", "bob", "--action", "download", columns=80)
    assert "S1A_OPER_MPL_ORBPRE" in "".join(line.strip(" │┃") for line in narrow.splitlines())
    assert "0 entries" in run("audit", "--user", "nobody")
    assert "0 entries" in run("audit", "--since", "2999-01-01T00:00:00Z")


def test_subscriptions_list_pause_resume_cancel(api, security_events):
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
    changes = security_events.events("auxip.operator.subscriptions.status",
                                     auxip__subscription_id=key)
    assert [c["auxip.status"] for c in changes] == ["paused", "running", "cancelled"]
    assert {c["user.name"] for c in changes} == {operator_events.operator()}
    assert key in run("subscriptions", "list", "--status", "cancelled")
    assert "cli:" in run("audit", "--action", "subscription.update")


def test_subscriptions_reseal_rotates_the_key_and_seals_clear_text(api, settings,
                                                                  security_events):
    made = api.request("POST", "Subscriptions", "bob", json={
        "NotificationEndpoint": "https://cli.example.org/sealed",
        "NotificationEpUsername": "u", "NotificationEpPassword": "rotate-me"}).json()
    legacy = uuid.uuid4()  # a row from before passwords were sealed
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO subscriptions (id, owner, notification_endpoint,"
                     " notification_username, notification_password)"
                     " VALUES (%s, 'bob', 'https://cli.example.org/old', 'u', 'clear-pw')",
                     (legacy,))

        def stored(sid: object) -> str:
            return conn.execute("SELECT notification_password FROM subscriptions"
                                " WHERE id = %s", (sid,)).fetchone()[0]

        current = settings.secret_keys.get_secret_value()
        new = endpoint_secrets.new_key()
        result = CliRunner().invoke(app, ["subscriptions", "reseal"],
                                    env={"AUXIP_SECRET_KEYS": f"{new},{current}"})
        assert result.exit_code == 0, result.output
        assert "endpoint password(s) sealed under the first key" in result.output
        only_new = SecretStr(new)
        assert endpoint_secrets.unseal(stored(uuid.UUID(made["Id"])), only_new) == "rotate-me"
        assert endpoint_secrets.unseal(stored(legacy), only_new) == "clear-pw"
        assert endpoint_secrets.is_sealed(stored(legacy))

        # Without the key that sealed them, nothing is changed.
        refused = CliRunner().invoke(app, ["subscriptions", "reseal"],
                                     env={"AUXIP_SECRET_KEYS": current})
        assert refused.exit_code == 1 and "no key" in refused.output
        assert endpoint_secrets.unseal(stored(legacy), only_new) == "clear-pw"

        # Back under the stack's key, which the notify function of later tests holds.
        back = CliRunner().invoke(app, ["subscriptions", "reseal"],
                                  env={"AUXIP_SECRET_KEYS": f"{current},{new}"})
        assert back.exit_code == 0, back.output
        assert endpoint_secrets.unseal(stored(legacy), settings.secret_keys) == "clear-pw"
    reseals = security_events.events("auxip.operator.subscriptions.reseal")
    assert [r["event.outcome"] for r in reseals] == ["success", "failure", "success"]
    assert all(current not in json.dumps(r) and new not in json.dumps(r) for r in reseals)
