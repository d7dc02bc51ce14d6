"""The real deployment: both overlays render and validate, agree with functions/, events/
and the settings, and the local router accepts the base it shares with them."""

from __future__ import annotations

from functools import cache

import pytest

from deployment import check, kustomize, selection
from deployment.paths import OVERLAYS, REPOSITORY_ROOT, Tree
from deployment.references import trigger_types
from devstack.layout import Layout
from devstack.router.manifests import load
from devstack.router.topology import Defaults
from events.registry import DATA_MODELS, TERMINAL


@cache
def rendered(overlay: str) -> tuple[dict, ...]:
    return tuple(kustomize.render(Tree().overlay(overlay)))


def of_kind(overlay: str, kind: str) -> list[dict]:
    return [d for d in rendered(overlay) if d["kind"] == kind]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates(overlay):
    assert check.validate(list(rendered(overlay)), Tree()) == []


def test_whole_check_passes():
    report = check.run(Tree())
    assert report.ok, report.text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_function_folder_has_its_service_and_every_service_its_folder(overlay):
    services = sorted(d["metadata"]["name"] for d in of_kind(overlay, "Service"))
    assert services == Tree().function_services()
    for service in services:
        source = next(e["value"] for d in of_kind(overlay, "Service") if d["metadata"]["name"] == service
                      for e in d["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] == "FUNCTION_SOURCE")
        assert (REPOSITORY_ROOT / source).is_file()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_produced_event_type_is_consumed_or_terminal(overlay):
    consumed = {t for trigger in of_kind(overlay, "Trigger") for t in trigger_types(trigger)}
    assert {t for t in DATA_MODELS if t not in TERMINAL} <= consumed
    assert not consumed & TERMINAL


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_scale_to_zero_and_take_the_broker_from_the_sink_binding(overlay):
    (binding,) = of_kind(overlay, "SinkBinding")
    wanted = binding["spec"]["subject"]["selector"]["matchLabels"]
    assert binding["spec"]["sink"]["ref"] == {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                                              "name": "default"}
    for service in of_kind(overlay, "Service"):
        annotations = service["spec"]["template"]["metadata"]["annotations"]
        assert {"autoscaling.knative.dev/max-scale", "autoscaling.knative.dev/target"} <= set(annotations)
        if service["metadata"]["name"] != "prip":
            assert annotations["autoscaling.knative.dev/min-scale"] == "0"
        assert wanted.items() <= service["metadata"]["labels"].items()


def test_overlays_differ_where_they_should():
    local = {d["metadata"]["name"]: d for d in of_kind("local", "Service")}
    production = {d["metadata"]["name"]: d for d in of_kind("production", "Service")}
    image = lambda d: d["spec"]["template"]["spec"]["containers"][0]["image"]  # noqa: E731
    assert image(local["ingest"]) == "dev.local/auxip:dev"
    assert image(production["ingest"]) == "registry.example.org/auxip:0.1.0"
    assert local["ingest"]["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"] == "1"
    assert production["prip"]["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] == "1"
    # Production never ships the Secret; the local overlay ships placeholders.
    assert of_kind("production", "Secret") == []
    (secret,) = of_kind("local", "Secret")
    assert all("change-me" in value for value in secret["stringData"].values())


def test_the_local_router_accepts_the_base():
    topology = load(REPOSITORY_ROOT / "knative" / "base", Layout(8080), Defaults(timeout=300.0, backoff_delay=1.0))
    assert topology.default_broker() is not None and topology.default_broker().key == "auxip/default"
    subscribers = {t.subscription.destination.description for t in topology.triggers.values()}
    assert subscribers == {f"Service/{t['spec']['subscriber']['ref']['name']}"
                           for t in of_kind("production", "Trigger")}
    pings = {d["metadata"]["name"] for d in of_kind("production", "PingSource")}
    assert {p.name for p in topology.ping_sources} == pings


def test_one_function_selection():
    documents = selection.of_function(list(rendered("production")), "ingest")
    assert sorted((d["kind"], d["metadata"]["name"]) for d in documents) == [
        ("PingSource", "ingest-sweep"), ("Service", "ingest"), ("Trigger", "ingest-file-arrived")]
    with pytest.raises(selection.SelectionError):
        selection.of_function(list(rendered("production")), "nothing")
