"""Eviction against the test stack: due products go offline with their bytes and one
`product.evicted` each; products not due, kept for ever or offline are untouched; a second
run changes nothing; two instances never evict the same product; the API stops listing
what was evicted; the CLI's dry run only lists."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

import functions_framework
import pytest
import typer
from botocore.exceptions import ClientError
from cloudevents.http import CloudEvent
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from events import bindings, envelope, types
from events.products import ProductEvicted
from shared.adapters import runtime
from shared.adapters.runtime import Runtime
from shared.core.s1time import OPEN_END
from shared.operations.cli import evict as evict_cli
from shared.pipeline import eviction
from tests.pipeline.eviction.conftest import (
    NOW,
    PAST,
    SOON,
    Seeded,
    archive_keys,
    evicted_events,
    present,
    product,
    rows,
    seed,
)

REPO = Path(__file__).resolve().parents[3]
RESORB = "S1A_OPER_AUX_RESORB_OPOD_20240101T000000_V20231231T211500_20240101T005000.EOF"
RESORB_LATER = "S1B_OPER_AUX_RESORB_OPOD_20240102T000000_V20240101T211500_20240102T005000.EOF"
PREORB = "S1A_OPER_AUX_PREORB_OPOD_20240101T003000_V20240101T000000_20240101T060000.EOF"
CAL = "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"
CAL_KEPT = "S1A_AUX_CAL_V20190514T090000_G20190513T102030.SAFE"
INS = "S1A_AUX_INS_V20171017T080000_G20171013T101216.SAFE"


def catalogue(rt: Runtime) -> dict[str, Seeded]:
    """Three due products (a file, a SAFE folder, a SAFE zip), one due tomorrow, one kept
    for ever beside the SAFE folder, and one due but already offline."""
    return {
        "file": seed(rt, RESORB, "AUX_RESORB", PAST - timedelta(hours=2)),
        "folder": seed(rt, CAL, "AUX_CAL", PAST - timedelta(hours=1), layout="safe-folder"),
        "zip": seed(rt, INS, "AUX_INS", PAST, layout="safe-archive"),
        "tomorrow": seed(rt, RESORB_LATER, "AUX_RESORB", SOON),
        "kept": seed(rt, CAL_KEPT, "AUX_CAL", OPEN_END, layout="safe-folder"),
        "offline": seed(rt, PREORB, "AUX_PREORB", PAST, online=False),
    }


def evictions_counted(product_type: str) -> float:
    return REGISTRY.get_sample_value("auxip_products_evicted_total",
                                     {"product_type": product_type}) or 0.0


def test_due_products_go_offline_with_their_bytes_and_one_event_each(rt, broker) -> None:
    seeded = catalogue(rt)
    due = [seeded[k] for k in ("file", "folder", "zip")]
    untouched = [seeded[k] for k in ("tomorrow", "kept", "offline")]
    before = {s.id: product(rt, s) for s in untouched}
    counted = evictions_counted("AUX_CAL")

    done = eviction.evict_due(rt)

    # Earliest eviction date first.
    assert [e.product_id for e in done] == [s.id for s in due]
    for item, s in zip(done, due, strict=True):
        row = product(rt, s)
        assert (row["status"], row["online"]) == ("evicted", False)
        assert row["modification_date"] == item.evicted_at
        assert present(rt, s.objects) == [], s.name
    # The file product's two keys are one object; the folder's prefix held three.
    assert len(seeded["file"].objects) == 1 and len(seeded["folder"].objects) == 4
    for s in untouched:
        assert product(rt, s) == before[s.id]
        assert present(rt, s.objects) == s.objects
    assert archive_keys(rt) == sorted(k for s in untouched for k in s.objects)

    events = evicted_events(rt)
    assert [e["id"] for e in events] == [item.event_id for item in done]
    for event, s, item in zip(events, due, done, strict=True):
        assert (event["source"], event["subject"]) == ("/auxip/evict", s.name)
        data = ProductEvicted.model_validate(event["data"])
        assert (data.product_id, data.name, data.product_type) == (s.id, s.name,
                                                                     s.product_type)
        assert data.evicted_at == item.evicted_at
        assert event["sent_at"] is not None
    assert broker[1].ids == [item.event_id for item in done]
    assert evictions_counted("AUX_CAL") == counted + 1


def test_a_second_run_evicts_and_journals_nothing_more(rt, broker) -> None:
    catalogue(rt)
    first = eviction.evict_due(rt)
    journal = rows(rt, "SELECT id, sent_at FROM event_journal ORDER BY id")
    assert len(first) == 3
    assert eviction.evict_due(rt) == []
    assert rows(rt, "SELECT id, sent_at FROM event_journal ORDER BY id") == journal
    assert len(broker[1].ids) == 3


def test_the_cutoff_and_the_limit_decide_what_is_due(rt) -> None:
    seeded = catalogue(rt)
    [first] = eviction.evict_due(rt, limit=1)
    assert first.product_id == seeded["file"].id
    later = eviction.evict_due(rt, now=SOON + timedelta(seconds=1))
    assert [e.product_id for e in later] == [seeded[k].id for k in ("folder", "zip", "tomorrow")]
    # Kept for ever: not even due at the end of time's last year.
    assert eviction.evict_due(rt, now=datetime(9999, 12, 31, tzinfo=NOW.tzinfo)) == []
    assert product(rt, seeded["kept"])["status"] == "published"
    assert product(rt, seeded["offline"])["status"] == "published"


def test_two_instances_never_evict_the_same_product(rt, settings, broker) -> None:
    seeded = [seed(rt, f"S1A_OPER_AUX_RESORB_OPOD_20240101T{n:06d}_V20231231T211500_20240101"
                       f"T005000.EOF", "AUX_RESORB", PAST - timedelta(minutes=n))
              for n in range(30)]
    # Two processes' worth: each instance its own pool and S3 client.
    other = runtime.build(settings.model_copy(update={"broker_url": broker[0]}))
    start = threading.Barrier(2)
    results: dict[str, list[eviction.Evicted]] = {}

    def run(name: str, instance: Runtime) -> None:
        start.wait()
        results[name] = eviction.evict_due(instance)

    try:
        threads = [threading.Thread(target=run, args=(n, i)) for n, i in (("a", rt), ("b", other))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        other.close()
    a, b = ({e.product_id for e in results[n]} for n in ("a", "b"))
    assert not a & b
    assert a | b == {s.id for s in seeded}
    events = evicted_events(rt)
    assert sorted(e["data"]["product_id"] for e in events) == sorted(str(s.id) for s in seeded)
    assert sorted(broker[1].ids) == sorted(e["id"] for e in events)
    assert archive_keys(rt) == []


def test_bytes_left_when_their_deletion_fails_but_the_eviction_stands(rt, broker) -> None:
    seeded = seed(rt, RESORB, "AUX_RESORB", PAST)
    broken = runtime.build(rt.settings.model_copy(update={"archive_bucket": "auxip-nowhere"}))
    try:
        with pytest.raises(ClientError):
            eviction.evict_due(broken)
    finally:
        broken.close()
    # The documented order: committed, then deletion; the event still goes.
    assert product(rt, seeded)["status"] == "evicted"
    assert present(rt, seeded.objects) == seeded.objects
    [event] = evicted_events(rt)
    assert broker[1].ids == [event["id"]] and event["sent_at"] is not None
    assert eviction.evict_due(rt) == []  # orphans are not swept (module docstring)


def test_a_damaged_folder_prefix_deletes_no_other_product(rt) -> None:
    kept = seed(rt, CAL_KEPT, "AUX_CAL", OPEN_END, layout="safe-folder")
    damaged = seed(rt, CAL, "AUX_CAL", PAST, layout="safe-folder", archive_key="ingested/")
    [done] = eviction.evict_due(rt)
    assert done.product_id == damaged.id
    assert present(rt, kept.objects) == kept.objects
    # Its distribution object went; its files stay for an operator (the prefix was wrong).
    assert not present(rt, [damaged.objects[-1]])
    assert present(rt, damaged.objects[:-1]) == damaged.objects[:-1]


def test_the_api_no_longer_lists_an_evicted_product(rt, api) -> None:
    seeded = catalogue(rt)

    def listed() -> list[str]:
        answer = api.products(filter="contains(Name,'AUX_')", top="100")
        return sorted(p["Name"] for p in answer.json()["value"])

    assert listed() == sorted(s.name for s in seeded.values())
    assert api.get(f"Products({seeded['file'].id})").status_code == 200
    eviction.evict_due(rt)
    assert listed() == sorted(seeded[k].name for k in ("tomorrow", "kept", "offline"))
    assert api.get(f"Products({seeded['file'].id})").status_code == 404
    assert api.get(f"Products({seeded['file'].id})/$value").status_code == 404


def cli() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)
    evict_cli.register(app)
    app.command("noop", hidden=True)(lambda: None)  # a group, so `evict` is a subcommand
    return app


def run_cli(*args: str) -> str:
    result = CliRunner().invoke(cli(), list(args), env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_dry_run_lists_without_changing_anything(rt, broker, security_events) -> None:
    seeded = catalogue(rt)
    before = rows(rt, "SELECT * FROM products ORDER BY id")
    keys = archive_keys(rt)
    output = run_cli("evict", "--dry-run")
    for k in ("file", "folder", "zip"):
        assert seeded[k].name in output
    for k in ("tomorrow", "kept", "offline"):
        assert seeded[k].name not in output
    assert "3 product(s) due; dry run: nothing changed" in output
    assert rows(rt, "SELECT * FROM products ORDER BY id") == before
    assert archive_keys(rt) == keys and evicted_events(rt) == [] and broker[1].ids == []
    assert security_events.events() == []  # a dry run is no operator action
    output = run_cli("evict")
    assert "3 product(s) evicted" in output and seeded["zip"].name in output
    assert product(rt, seeded["zip"])["status"] == "evicted"
    event = security_events.one("auxip.operator.evict")
    assert event["auxip.count"] == 3 and seeded["zip"].name in event["auxip.evicted"]
    assert event["event.category"] == ["configuration"] and event["user.name"]
    assert "0 product(s) due" in run_cli("evict", "--dry-run")


def test_the_function_evicts_on_its_tick_and_ignores_other_events(rt, broker,
                                                                 monkeypatch) -> None:
    seeded = catalogue(rt)
    monkeypatch.setenv("AUXIP_BROKER_URL", broker[0])
    runtime.current.cache_clear()
    app = functions_framework.create_app(target="handle",
                                         source=str(REPO / "functions" / "evict" / "main.py"))
    client = app.test_client()
    try:
        other = envelope.build(types.PRODUCT_EVICTED,
                               ProductEvicted(product_id=seeded["file"].id, name="x",
                                              product_type="AUX_RESORB", evicted_at=NOW),
                               source="/test")
        headers, body = bindings.to_http_binary(other)
        assert client.post("/", headers=headers, data=body).status_code == 200
        assert product(rt, seeded["file"])["status"] == "published"

        ping = CloudEvent({"type": types.PING,
                           "source": "/apis/v1/namespaces/auxip/pingsources/evict-tick"},
                          {"evict": "due"})
        headers, body = bindings.to_http_binary(ping)
        assert client.post("/", headers=headers, data=body).status_code == 200
        assert [product(rt, seeded[k])["status"] for k in ("file", "folder", "zip", "kept")] == [
            "evicted", "evicted", "evicted", "published"]
        assert len(broker[1].ids) == 3
        assert b"auxip_products_evicted_total" in client.get("/metrics").data
    finally:
        if runtime.current.cache_info().currsize:
            runtime.current().close()
        runtime.current.cache_clear()
