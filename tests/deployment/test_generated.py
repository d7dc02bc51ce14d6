"""Generated files (knative/base/{services,triggers,sources,eventtypes}.yaml and
knative/rendered/*.yaml) are up to date, and generation follows knative/functions.yaml."""

from __future__ import annotations

import shutil

import pytest

from deployment import check, generate, spec
from deployment.paths import OVERLAYS, Tree
from deployment.yamldocs import load_all
from events.registry import DATA_MODELS


def test_generated_files_are_up_to_date():
    assert generate.drift(Tree()) == [], "run `make manifests`"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_overlays_are_up_to_date(overlay):
    tree = Tree()
    assert tree.rendered(overlay).read_text(encoding="utf-8") == check.rendered_text(tree, overlay), \
        "run `make manifests`"


def test_one_service_per_function_folder_in_pipeline_order():
    services = [d["metadata"]["name"] for d in load_all(Tree().base / "services.yaml")]
    assert sorted(services) == Tree().function_services()
    assert services == generate.service_order(services)


def test_one_event_type_per_data_model():
    documents = load_all(Tree().base / "eventtypes.yaml")
    types = [next(a["value"] for a in d["spec"]["attributes"] if a["name"] == "type") for d in documents]
    assert types == list(DATA_MODELS)
    assert all(d["apiVersion"] == "eventing.knative.dev/v1beta3" for d in documents)


def test_a_prepared_function_is_deployed_once_its_folder_exists(tree_copy):
    # evict as it was before its folder existed: an entry in functions.yaml only.
    shutil.rmtree(tree_copy.root / "functions" / "evict")
    generate.write(tree_copy)
    assert "evict" not in [d["metadata"]["name"] for d in load_all(tree_copy.base / "services.yaml")]
    (tree_copy.root / "functions" / "evict").mkdir()
    (tree_copy.root / "functions" / "evict" / "main.py").write_text("")
    assert tree_copy.base / "services.yaml" in generate.drift(tree_copy)
    generate.write(tree_copy)
    pings = {d["metadata"]["name"]: d for d in load_all(tree_copy.base / "sources.yaml")}
    assert pings["evict-tick"]["spec"]["sink"]["ref"]["name"] == "evict"
    assert "evict" in [d["metadata"]["name"] for d in load_all(tree_copy.base / "services.yaml")]
    assert generate.drift(tree_copy) == []


@pytest.mark.parametrize(("event_type", "name"), [
    ("org.auxip.file.arrived.v1", "ingest-file-arrived"),
    ("org.auxip.file.arrived.v2", "ingest-file-arrived-v2"),
    ("dev.knative.sources.ping", "ingest-dev-knative-sources-ping"),
])
def test_trigger_names(event_type, name):
    assert generate.trigger_name("ingest", event_type) == name


def test_function_spec_overrides_defaults_field_by_field():
    loaded = spec.load(Tree().spec_file)
    ingest, publish = loaded.function("ingest"), loaded.function("publish")
    assert (ingest.concurrency, ingest.timeout_seconds) == (2, 600)
    assert ingest.cpu == publish.cpu  # from the defaults
    assert ingest.subscribes[0].type == "org.auxip.file.arrived.v1"
    assert publish.subscribes[0].delivery is None


@pytest.mark.parametrize(("entry", "message"), [
    ("  publish: {concurency: 3}\n", "concurency"),
    ("  publish: {timeoutSeconds: 3600}\n", "timeout_seconds|timeoutSeconds"),
    ("  publish: {schedules: [{data: x}]}\n", "cron"),
])
def test_function_spec_mistakes_are_refused(tree_copy, entry, message):
    text = tree_copy.spec_file.read_text()
    # A duplicate key would be silently merged by YAML: write a fresh entry instead.
    tree_copy.spec_file.write_text(text.replace("functions:\n", "functions:\n" + entry.replace("publish", "canary"), 1))
    with pytest.raises(spec.SpecError, match=message):
        spec.load(tree_copy.spec_file)
