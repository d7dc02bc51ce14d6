"""A real Prometheus (Debian's, as `auxip up --with-monitoring` runs it, with the scrape
configuration and rules of knative/) scraping the whole local pipeline: after a demo ingest
and what operators watch besides (a rejection, a route's transfers, a download, a dead
letter, an eviction), every query of the Grafana dashboard returns series with a value, and
the dead-letter alert fires."""

from __future__ import annotations

import json
import math
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from cloudevents.http import CloudEvent

from devstack import demo
from devstack.stack import processes, prometheus
from devstack.stack import up as stack_up
from events import bindings, types
from shared.adapters import storage
from shared.adapters.catalogue import routes as routes_table
from shared.adapters.settings import Settings
from shared.pipeline.routing import config
from tests.conftest import truncate_catalogue
from tests.e2e.conftest import ping
from tests.whole_pipeline import query, running, wait_until

pytestmark = pytest.mark.e2e

DASHBOARD = Path(__file__).parents[2] / "knative" / "grafana" / "auxip-dashboard.json"
# Grafana's $__rate_interval is at least four scrape intervals; five minutes hold this test.
RATE_INTERVAL = "5m"


def prom(info: stack_up.StackInfo, path: str, **params: str) -> dict:
    answer = httpx.get(prometheus.url(info.layout) + path, params=params, timeout=10)
    answer.raise_for_status()
    body = answer.json()
    assert body["status"] == "success", body
    return body["data"]


def instant(info: stack_up.StackInfo, expression: str) -> list[dict]:
    return prom(info, "/api/v1/query", query=expression)["result"]


def dashboard_queries() -> list[tuple[str, str]]:
    model = json.loads(DASHBOARD.read_text())
    panels = [p for top in model["panels"] for p in (top, *top.get("panels", []))]
    return [(panel["title"], target["expr"]) for panel in panels
            for target in panel.get("targets", [])]


@pytest.fixture(scope="module")
def monitored(stack: stack_up.StackInfo, settings: Settings) -> Iterator[stack_up.StackInfo]:
    with running(settings, {"AUXIP_ROUTE_INLINE_RETRY_S": "0"}):
        # A fresh time series database: counts of an earlier session would add up.
        processes.stop(settings.state_dir, prometheus.NAME)
        shutil.rmtree(settings.state_dir / prometheus.NAME / "data", ignore_errors=True)
        info = stack_up.up(settings, monitoring=True)
        try:
            yield info
        finally:
            processes.stop(settings.state_dir, prometheus.NAME)


@pytest.fixture(scope="module")
def activity(monitored: stack_up.StackInfo, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What happened, once every target was scraped (so the series starting at zero are
    in Prometheus before the first event)."""
    info, s = monitored, monitored.settings
    functions = len(stack_up.function_folders())
    wait_until("every function scraped up", lambda: len(_up(info)) == functions, timeout_s=60,
               report=lambda: prom(info, "/api/v1/targets")["activeTargets"])
    truncate_catalogue(s.database_url)
    with psycopg.connect(s.database_url, autocommit=True) as conn:
        route = config.Route.model_validate({
            "name": "archive-copy", "target": {"kind": "directory",
                                               "path": str(tmp_path_factory.mktemp("copies"))}})
        routes_table.upsert(conn, config.route_row(route))
    # The route's minute tick, as its PingSource sends it: the route's series start at zero.
    ping(info, "route")
    wait_until("the route's series scraped", lambda: bool(instant(
        info, 'auxip_transfers_total{route="archive-copy"}')), timeout_s=30)
    s3 = storage.client(s)
    for bucket in (s.inbox_bucket, s.archive_bucket, s.quarantine_bucket):
        storage.delete_prefix(s3, bucket)
    report = demo.run(s, timeout_s=180)
    assert report.published and not report.missing, report
    storage.put_bytes(s3, s.inbox_bucket, "not-a-sentinel-1-file.txt", b"hello")
    names = [row["name"] for row in report.published]
    wait_until("the rejection and every transfer", lambda: bool(query(
        s, "SELECT 1 FROM rejections WHERE name = 'not-a-sentinel-1-file.txt'")) and len(query(
        s, "SELECT 1 FROM transfers WHERE status = 'completed'")) == len(names), timeout_s=120)
    # A download, as a PRIP client makes it.
    token = httpx.post(s.token_url, data={"grant_type": "password", "username": "alice",
                                          "password": "alice-pw", "client_id": "auxip"},
                       timeout=10).json()["access_token"]
    product = report.published[0]
    download = httpx.get(f"{s.prip_url}/Products({product['id']})/$value", timeout=30,
                         headers={"Authorization": f"Bearer {token}"})
    assert download.status_code == 200 and download.content
    # An event the Broker gave up on, delivered to its dead-letter sink.
    dead = CloudEvent({"type": types.PRODUCT_INGESTED, "source": "/auxip/ingest",
                       "id": str(uuid.uuid4()), "subject": names[0]}, {"name": names[0]})
    headers, body = bindings.to_http_binary(dead)
    answer = httpx.post(info.layout.function_url("deadletter") + "/", headers=headers,
                        content=body, timeout=30)
    assert answer.status_code < 300, answer.text
    # A product past its EvictionDate, and the evict PingSource's tick.
    evicted = report.published[-1]
    with psycopg.connect(s.database_url, autocommit=True) as conn:
        conn.execute("UPDATE products SET eviction_date = now() - interval '1 second'"
                     " WHERE id = %s", (evicted["id"],))
    ping(info, "evict")
    wait_until("the eviction", lambda: not query(
        s, "SELECT 1 FROM products WHERE id = %s AND online", evicted["id"]), timeout_s=60)
    # Two scrapes after the last event: every increase above is in Prometheus.
    settled = time.monotonic()
    wait_until("the last events scraped",
               lambda: _value(info, "sum(auxip_products_evicted_total)") >= 1
               and time.monotonic() - settled > 3 * _seconds(prometheus.LOCAL_INTERVAL),
               timeout_s=60)
    return {"published": len(names), "evicted_type": evicted["product_type"]}


def _up(info: stack_up.StackInfo) -> list[dict]:
    return [t for t in prom(info, "/api/v1/targets")["activeTargets"]
            if t["labels"].get("job") == "auxip-functions" and t["health"] == "up"]


def _value(info: stack_up.StackInfo, expression: str) -> float:
    result = instant(info, expression)
    return float(result[0]["value"][1]) if result else 0.0


def _seconds(interval: str) -> float:
    number, unit = re.fullmatch(r"(\d+)([sm])", interval).groups()
    return int(number) * (60 if unit == "m" else 1)


@pytest.mark.parametrize(("title", "expression"), dashboard_queries())
def test_every_dashboard_query_returns_series(activity: dict, monitored: stack_up.StackInfo,
                                              title: str, expression: str) -> None:
    result = instant(monitored, expression.replace("$__rate_interval", RATE_INTERVAL))
    assert result, f"panel {title!r}: no series for {expression}"
    values = [float(series["value"][1]) for series in result]
    assert any(not math.isnan(v) for v in values), f"panel {title!r}: only NaN: {result}"


def test_the_counts_are_what_happened(activity: dict, monitored: stack_up.StackInfo) -> None:
    # Counters started at zero before the first event: the counter itself is exact. What a
    # panel shows, increase(), extrapolates a young series towards the window's edges (by up
    # to half its sampled span, more when few scrapes hold it): bounded, not exact.
    assert _value(monitored, "sum(auxip_files_out_total)") == activity["published"]
    published = _value(monitored, "sum(increase(auxip_files_out_total[1h]))")
    assert activity["published"] <= published <= activity["published"] * 1.5
    assert _value(monitored, 'sum(auxip_rejections_total{reason="name_invalid"})') == 1
    assert _value(monitored, 'sum(auxip_transfers_total{route="archive-copy",'
                             ' outcome="completed"})') == activity["published"]
    assert _value(monitored, 'sum(auxip_downloads_total)') >= 1
    assert _value(monitored, 'sum(auxip_dead_letters_total{type="%s"})'
                  % types.PRODUCT_INGESTED) == 1
    assert _value(monitored, 'sum(auxip_products_evicted_total{product_type="%s"})'
                  % activity["evicted_type"]) == 1


def test_the_dead_letter_alert_fires_on_the_real_metrics(activity: dict,
                                                         monitored: stack_up.StackInfo) -> None:
    def firing() -> list[dict]:
        return [a for a in prom(monitored, "/api/v1/alerts")["alerts"]
                if a["labels"]["alertname"] == "AuxipDeadLetters" and a["state"] == "firing"]

    wait_until("AuxipDeadLetters firing", lambda: bool(firing()), timeout_s=30)
    assert {a["labels"]["type"] for a in firing()} == {types.PRODUCT_INGESTED}
    names = {r["name"] for g in prom(monitored, "/api/v1/rules")["groups"] for r in g["rules"]}
    assert {"AuxipTimelinessBreach", "AuxipRejectionsSpike", "AuxipTransferFailures",
            "AuxipFunctionDown"} <= names
    others = {a["labels"]["alertname"] for a in prom(monitored, "/api/v1/alerts")["alerts"]
              if a["state"] == "firing"} - {"AuxipDeadLetters"}
    assert not others, f"alerts a healthy demo should not raise: {others}"
