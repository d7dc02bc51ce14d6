"""Manifests -> topology: Knative semantics for filters and delivery, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.layout import Layout
from devstack.router import durations, filters
from devstack.router.manifests import ManifestError, load
from devstack.router.settings import REPOSITORY_ROOT
from devstack.router.topology import Defaults
from tests.devstack.router.conftest import broker, trigger

LAYOUT = Layout(8080)
DEFAULTS = Defaults(timeout=300.0, backoff_delay=1.0)


def load_text(tmp_path: Path, text: str, name: str = "m.yaml"):
    (tmp_path / name).write_text(text)
    return load(tmp_path, LAYOUT, DEFAULTS)


def test_repository_manifests_route_each_event_type_to_its_services():
    topology = load(REPOSITORY_ROOT / "knative" / "base", LAYOUT, DEFAULTS)
    (default,) = topology.brokers.values()
    assert default.key == "auxip/default" and topology.default_broker() is default
    routes = {
        event_type: sorted(s.url for s in topology.route("auxip/default", {"type": event_type}))
        for event_type in (
            "org.auxip.file.arrived.v1", "org.auxip.product.ingested.v1", "org.auxip.product.packaged.v1",
            "org.auxip.product.published.v1", "org.auxip.file.rejected.v1",
        )
    }
    assert routes == {
        "org.auxip.file.arrived.v1": [LAYOUT.function_url("ingest")],
        "org.auxip.product.ingested.v1": [LAYOUT.function_url("package")],
        "org.auxip.product.packaged.v1": [LAYOUT.function_url("publish")],
        "org.auxip.product.published.v1": sorted(
            LAYOUT.function_url(name) for name in ("notify", "route")
            # route joins once its function exists (routing is built after publication)
            if (REPOSITORY_ROOT / "functions" / name / "main.py").is_file()),
        "org.auxip.file.rejected.v1": [],
    }
    # A product ingest packaged itself (served as it arrived) has no package hop; any
    # other value, or none (an event journalled before the attribute existed), has one.
    ingested = "org.auxip.product.ingested.v1"
    for packaged, expected in (("true", []), ("false", [LAYOUT.function_url("package")])):
        assert [s.url for s in topology.route(
            "auxip/default", {"type": ingested, "auxippackaged": packaged})] == expected
    for trigger_ in topology.triggers.values():
        delivery = trigger_.subscription.delivery
        assert (delivery.retry, delivery.backoff_policy, delivery.backoff_delay) == (5, "exponential", 0.2)
        assert delivery.dead_letter and delivery.dead_letter.url == LAYOUT.function_url("deadletter")
        # Retries wait 0.4, 0.8, 1.6, 3.2 and 6.4 seconds.
        assert [round(delivery.backoff(n), 3) for n in range(1, 6)] == [0.4, 0.8, 1.6, 3.2, 6.4]


def test_trigger_delivery_is_merged_over_the_broker_delivery(tmp_path):
    text = broker("    retry: 4\n    backoffPolicy: linear\n    backoffDelay: PT2S\n    timeout: PT10S\n"
                  "    deadLetterSink:\n      ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: deadletter}")
    text += trigger("inherits", "http://127.0.0.1:9/a")
    text += trigger("overrides", "http://127.0.0.1:9/b",
                    delivery="  delivery:\n    retry: 0\n    backoffDelay: PT0.5S")
    topology = load_text(tmp_path, text)
    inherits = topology.triggers["test/inherits"].subscription.delivery
    overrides = topology.triggers["test/overrides"].subscription.delivery
    assert (inherits.retry, inherits.backoff_policy, inherits.backoff_delay, inherits.timeout) == (4, "linear", 2.0, 10.0)
    assert (overrides.retry, overrides.backoff_policy, overrides.backoff_delay) == (0, "linear", 0.5)
    assert overrides.dead_letter == inherits.dead_letter
    assert [inherits.backoff(n) for n in (1, 2, 3)] == [2.0, 4.0, 6.0]
    assert topology.lease_seconds() == 40.0


def test_unset_delivery_means_no_retries_and_router_defaults(tmp_path):
    topology = load_text(tmp_path, broker() + trigger("t", "http://127.0.0.1:9/"))
    delivery = topology.triggers["test/t"].subscription.delivery
    assert (delivery.retry, delivery.backoff_policy, delivery.timeout, delivery.dead_letter) == (
        0, "exponential", 300.0, None)


def test_subscriber_refs_resolve_to_the_local_stack(tmp_path):
    text = broker() + """---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: with-path, namespace: test}
spec:
  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: prip}
    uri: /hooks/events
"""
    subscription = load_text(tmp_path, text).triggers["test/with-path"].subscription
    assert subscription.url == LAYOUT.function_url("prip") + "/hooks/events"
    assert subscription.broker == "test/default"  # no spec.broker: Knative's "default"


def test_other_kinds_and_non_manifest_yaml_are_ignored(tmp_path):
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\n")
    (tmp_path / "service.yml").write_text(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: ingest}\n---\n# empty\n")
    (tmp_path / "notes.txt").write_text("not yaml: [")
    topology = load_text(tmp_path, broker() + trigger("t", "http://127.0.0.1:9/"))
    assert list(topology.triggers) == ["test/t"]


def test_broker_ingress_paths(tmp_path):
    text = broker() + "---\n" + broker().replace("name: default", "name: other")
    topology = load_text(tmp_path, text)
    assert topology.broker_for_path("/").key == "test/default"
    assert topology.broker_for_path("/test/other/").key == "test/other"
    assert topology.broker_for_path("/test/missing") is None
    assert topology.broker_for_path("/a/b/c") is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("  filters:\n    - exactly: {type: x}", "spec.filters[0]: unknown filter dialect 'exactly'"),
        ("  filters:\n    - exact: {type: x}\n      prefix: {type: y}", "spec.filters[0]: one dialect per filter"),
        ("  filters:\n    - exact: {type: x, source: y}", "spec.filters[0].exact: multiple items found"),
        ("  filters:\n    - prefix: {Type: x}", "spec.filters[0].prefix.Type: attribute name"),
        ("  filters:\n    - all:\n      - not: {sql: 'a ='}", "spec.filters[0].all[0].not.sql: invalid CESQL"),
        ("  filters:\n    - cesql: 'NOPE(type)'", "unknown function NOPE"),
        ("  filters: {exact: {type: x}}", "spec.filters: must be a list"),
        ("  filter:\n    attributes: {type: 3}", "spec.filter.attributes.type: value must be a string"),
        ("  delivery:\n    backoffPolicy: fibonacci", "spec.delivery.backoffPolicy: must be linear or exponential"),
        ("  delivery:\n    backoffDelay: 5s",
         "spec.delivery.backoffDelay: '5s' is not an ISO 8601 duration"),
        ("  delivery:\n    retry: -1", "spec.delivery.retry: must be a non-negative integer"),
        ("  delivery:\n    retries: 3", "spec.delivery.retries: unknown field"),
        ("  delivery:\n    deadLetterSink: {}", "spec.delivery.deadLetterSink: needs `ref` or `uri`"),
    ],
)
def test_bad_triggers_are_reported_with_file_object_and_field(tmp_path, spec, message):
    text = broker() + trigger("bad", "http://127.0.0.1:9/", spec)
    with pytest.raises(ManifestError) as raised:
        load_text(tmp_path, text)
    assert str(raised.value).startswith(f"{tmp_path / 'm.yaml'}: Trigger test/bad: ")
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (trigger("t", "http://127.0.0.1:9/"), "spec.broker: no Broker test/default"),
        (broker() + trigger("t", "ftp://x/"), "spec.subscriber.uri: 'ftp://x/' is not an absolute http(s) URL"),
        (broker() + trigger("t", "http://x/").replace("    uri: http://x/\n",
                                                      "    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: nosuch}\n"),
         "spec.subscriber.ref.name: Service 'nosuch' is not a function of the local stack"),
        (broker() + trigger("t", "http://x/") + trigger("t", "http://y/"), "Trigger test/t is defined twice"),
        (broker().replace("eventing.knative.dev/v1", "eventing.knative.dev/v1beta1"), "apiVersion"),
        ("kind: Trigger\nmetadata: {namespace: x}\n", "Trigger without metadata.name"),
        ("a: [", "not valid YAML"),
        (broker() + "---\napiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: p}\n"
         "spec: {schedule: '0 0 30 2 *', sink: {uri: 'http://x/'}}\n", "does not fire"),
        (broker() + "---\napiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: p}\n"
         "spec: {schedule: '* * * * *', data: a, dataBase64: YQ==, sink: {uri: 'http://x/'}}\n",
         "spec.data: set either data or dataBase64"),
        (broker() + "---\napiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: p}\n"
         "spec: {schedule: '* * * * *', timezone: Mars/Olympus, sink: {uri: 'http://x/'}}\n",
         "spec.schedule: unknown time zone"),
    ],
)
def test_bad_manifests_are_reported(tmp_path, text, message):
    with pytest.raises(ManifestError) as raised:
        load_text(tmp_path, text)
    assert message in str(raised.value)
    assert str(tmp_path / "m.yaml") in str(raised.value)


def test_filter_dialects_follow_knative():
    event = {"type": "org.auxip.file.arrived.v1", "source": "/inbox", "subject": "S1A_X.SAFE"}
    cases = [
        ([{"exact": {"type": "org.auxip.file.arrived.v1"}}], True),
        ([{"exact": {"type": "org.auxip.file"}}], False),
        ([{"prefix": {"type": "org.auxip."}}], True),
        ([{"suffix": {"subject": ".SAFE"}}], True),
        ([{"suffix": {"missing": ""}}], False),  # a missing attribute never matches
        ([{"exact": {"type": "org.auxip.file.arrived.v1"}}, {"exact": {"source": "/other"}}], False),
        ([{"all": [{"prefix": {"type": "org."}}, {"suffix": {"type": ".v1"}}]}], True),
        ([{"any": [{"exact": {"type": "x"}}, {"exact": {"source": "/inbox"}}]}], True),
        ([{"not": {"exact": {"type": "x"}}}], True),
        ([{"not": {}}], False),  # `not` of the match-everything filter
        ([{"sql": "subject LIKE 'S1A%'"}], True),
        ([{"cesql": "subject LIKE 'S1B%'"}], False),
        ([{}], True),
        ([{"exact": {}}], True),
    ]
    for spec, expected in cases:
        assert filters.from_list(spec, "spec.filters")(event) is expected, spec
    legacy = filters.legacy({"type": "org.auxip.file.arrived.v1", "subject": ""}, "spec.filter.attributes")
    assert legacy(event) and not legacy({"type": "org.auxip.file.arrived.v1"})


@pytest.mark.parametrize(
    ("text", "seconds"),
    # isodate parses; years and months count as Knative's Go `period` package counts them.
    [("PT0.2S", 0.2), ("PT1M30S", 90.0), ("P1DT1H", 90000.0), ("P1M", 365.2425 * 86400 / 12),
     ("P1Y", 365.2425 * 86400)],
)
def test_iso8601_durations(text, seconds):
    assert durations.parse_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1S", "PT-1S", "-PT1S", "5s", "P1H", None, 5])
def test_invalid_durations(text):
    with pytest.raises(ValueError):
        durations.parse_seconds(text)
