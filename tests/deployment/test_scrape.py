"""Prometheus finds every function: each Service's revision template carries the scrape
annotations, naming the container's own port and the path every function serves."""

from __future__ import annotations

import pytest

from deployment import kustomize
from deployment.paths import OVERLAYS, Tree
from deployment.yamldocs import load_all
from shared.adapters.telemetry import metrics


def services(documents: list[dict]) -> list[dict]:
    found = [d for d in documents if d["kind"] == "Service"]
    assert found
    return found


@pytest.mark.parametrize("overlay", [None, *OVERLAYS])
def test_every_service_is_scraped_on_its_container_port(overlay):
    tree = Tree()
    documents = (load_all(tree.base / "services.yaml") if overlay is None
                 else list(kustomize.render(tree.overlay(overlay))))
    for service in services(documents):
        template = service["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        (port,) = template["spec"]["containers"][0]["ports"]
        assert annotations["prometheus.io/scrape"] == "true", service["metadata"]["name"]
        assert annotations["prometheus.io/port"] == str(port["containerPort"]) == "8080"
        assert annotations["prometheus.io/path"] == metrics.ROUTE == "/metrics"
