"""The routing file: what it accepts and refuses (never a literal secret), and the
`auxip sources|routes` commands that load it into the catalogue and manage it; the route
function's entry point."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from functions_framework import create_app
from psycopg.rows import dict_row
from typer.testing import CliRunner

from events import bindings, envelope, types
from shared.adapters import runtime
from shared.adapters.runtime import Runtime
from shared.adapters.settings import Settings
from shared.operations.cli import routes as routes_cli
from shared.operations.cli import sources as sources_cli
from shared.pipeline.routing import config, rules
from tests.adapters.telemetry.ecs_lines import SecurityStream
from tests.pipeline.routing.conftest import add_route, orbit_name, publish, published_event, rows

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "config" / "routing.yaml"


def _document(**extra: Any) -> dict[str, Any]:
    return {"sources": [{"name": "drop", "kind": "directory", "path": "/srv/drop"}],
            "routes": [{"name": "all", "target": {"kind": "directory", "path": "/srv/out"}}],
            **extra}


def _write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_the_shipped_example_loads() -> None:
    document = config.load_file(SHIPPED)
    assert {s.name for s in document.sources} >= {"adgs", "mission-planning", "sra"}
    orbits = next(r for r in document.routes if r.name == "orbits-to-mission-planning")
    facts = rules.Facts(name=orbit_name(1), logical_name=orbit_name(1),
                        product_type="AUX_RESORB", platform_serial="A", origin="inbox")
    assert rules.applies(orbits, facts)
    assert not rules.applies(orbits, rules.Facts(**{**facts.__dict__,
                                                   "origin": "poll:mission-planning"}))


@pytest.mark.parametrize("where", ["source", "route"])
def test_a_literal_secret_is_refused_and_not_repeated(tmp_path: Path, where: str) -> None:
    document = _document()
    if where == "source":
        document["sources"] = [{"name": "sra", "kind": "s3", "bucket": "b",
                                "access_key": "AK", "secret_key": "hunter2-literal"}]
    else:
        document["routes"][0]["target"] = {
            "kind": "http", "url": "https://x/{name}",
            "auth": {"type": "basic", "username": "u", "password": "hunter2-literal"}}
    with pytest.raises(config.ConfigError) as refused:
        config.load_file(_write(tmp_path, document))
    assert "${AUXIP_...}" in str(refused.value)
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("change, message", [
    ({"routes": [{"name": "r", "target": {"kind": "ftp", "path": "/"}}]}, "kind"),
    ({"routes": [{"name": "r", "match": {"name_regex": "("},
                  "target": {"kind": "directory", "path": "/"}}]}, "name_regex"),
    ({"routes": [{"name": "r", "target": {"kind": "directory", "path": "/"}, "colour": 1}]},
     "colour"),
    ({"sources": [{"name": "a", "kind": "directory", "path": "/"},
                  {"name": "a", "kind": "directory", "path": "/x"}]}, "unique"),
    ({"sources": [{"name": "x", "kind": "odata", "url": "https://x/odata/v1",
                   "auth": {"type": "oauth2", "grant": "password", "token_url": "https://t",
                            "client_id": "c"}}]}, "username and password"),
])
def test_mistakes_are_named(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(config.ConfigError, match=message):
        config.load_file(_write(tmp_path, _document(**change)))


def test_references_are_expanded_from_the_environment_given() -> None:
    route = config.Route.model_validate({
        "name": "r", "target": {"kind": "http", "url": "${AUXIP_TEST_URL}/{name}",
                                "auth": {"type": "bearer", "token": "${AUXIP_TEST_TOKEN}"}}})
    expanded = config.expand(route.target, {"AUXIP_TEST_URL": "https://rx",
                                            "AUXIP_TEST_TOKEN": "t0k3n"})
    assert expanded.url == "https://rx/{name}" and expanded.auth.token == "t0k3n"
    assert "t0k3n" not in repr(expanded)
    with pytest.raises(config.ConfigError, match="AUXIP_TEST_TOKEN is not set"):
        config.expand(route.target, {"AUXIP_TEST_URL": "https://rx"})


def test_the_commands_load_list_and_switch(settings: Settings, clean_catalogue: None,
                                           tmp_path: Path,
                                           security_events: SecurityStream) -> None:
    cli = CliRunner()
    loaded = cli.invoke(sources_cli.app, ["load", str(SHIPPED)])
    assert loaded.exit_code == 0, loaded.output
    assert "adgs: created" in loaded.output
    loaded = cli.invoke(routes_cli.app, ["load", str(SHIPPED)])
    assert loaded.exit_code == 0 and "orbits-to-mission-planning: created" in loaded.output, \
        loaded.output
    assert "adgs: unchanged" in cli.invoke(sources_cli.app, ["load", str(SHIPPED)]).output

    # The catalogue holds the references, never a value.
    with_secrets = _query(settings, "SELECT config::text AS c FROM sources"
                          " UNION ALL SELECT target::text FROM routes")
    assert any("${AUXIP_ADGS_PASSWORD}" in r["c"] for r in with_secrets)

    assert cli.invoke(sources_cli.app, ["disable", "adgs"]).exit_code == 0
    assert cli.invoke(routes_cli.app, ["disable", "orbits-to-sra"]).exit_code == 0
    assert cli.invoke(routes_cli.app, ["enable", "mirror"]).exit_code == 0
    assert cli.invoke(routes_cli.app, ["disable", "no-such-route"]).exit_code == 1
    # Each change is one operator event; a name that does not exist, a failed one.
    assert len(security_events.events("auxip.operator.sources.load")) == 2
    assert "orbits-to-sra" in security_events.one("auxip.operator.routes.load")["auxip.loaded"]
    assert security_events.one("auxip.operator.sources.disable")["auxip.name"] == "adgs"
    assert security_events.one("auxip.operator.routes.enable")["auxip.name"] == "mirror"
    assert [e["event.outcome"] for e in security_events.events(
        "auxip.operator.routes.disable")] == ["success", "failure"]
    enabled = {r["name"]: r["enabled"] for r in _query(settings,
                                                         "SELECT name, enabled FROM sources")}
    assert enabled["adgs"] is False and enabled["mission-planning"] is True
    # Short names: a table narrower than the terminal may wrap the long ones.
    listing = cli.invoke(sources_cli.app, ["list"])
    assert listing.exit_code == 0 and "adgs" in listing.output, listing.output
    listing = cli.invoke(routes_cli.app, ["list"])
    assert listing.exit_code == 0 and "mirror" in listing.output, listing.output

    smaller = _write(tmp_path, {"sources": [{"name": "adgs", "kind": "directory",
                                             "path": "/srv/adgs"}]})
    pruned = cli.invoke(sources_cli.app, ["load", str(smaller), "--prune"])
    assert pruned.exit_code == 0 and "sra: deleted" in pruned.output, pruned.output
    assert [r["kind"] for r in _query(settings, "SELECT kind FROM sources")] == ["directory"]
    bad = cli.invoke(routes_cli.app, ["load", str(_write(tmp_path, {"routes": [{"name": "x"}]}))])
    assert bad.exit_code == 1


def test_the_route_function_handles_published_events(rt: Runtime, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """functions-framework's own app, configured through the environment."""
    product = publish(rt, orbit_name(1), os.urandom(1000), "AUX_RESORB")
    add_route(rt, name="to-disk", target={"kind": "directory", "path": str(tmp_path)})
    monkeypatch.setenv("AUXIP_DATABASE_URL", rt.settings.database_url)
    monkeypatch.delenv("AUXIP_BROKER_URL", raising=False)
    monkeypatch.delenv("K_SINK", raising=False)
    runtime.current.cache_clear()
    try:
        app = create_app("handle", str(REPO / "functions" / "route" / "main.py"), "cloudevent")
        client = app.test_client()
        event = envelope.build(types.PRODUCT_PUBLISHED, published_event(rt, product),
                               source="/auxip/publish")
        for _ in range(2):  # delivered twice: transferred once
            headers, body = bindings.to_http_binary(event)
            assert client.post("/", headers=headers, data=body).status_code == 200
        headers, body = bindings.to_http_binary(_ping())
        assert client.post("/", headers=headers, data=body).status_code == 200
    finally:
        runtime.current().close()
        runtime.current.cache_clear()
    assert (tmp_path / product.name).read_bytes() == product.body
    [transfer] = rows(rt, "SELECT status, attempts FROM transfers")
    assert (transfer["status"], transfer["attempts"]) == ("completed", 1)


def _ping() -> Any:
    from cloudevents.http import CloudEvent

    return CloudEvent({"type": types.PING,
                       "source": "/apis/v1/namespaces/auxip/pingsources/route-sweep"},
                      {"sweep": "transfers"})


def _query(settings: Settings, sql: str) -> list[dict]:
    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        return conn.execute(sql).fetchall()
