"""The Grafana dashboard imports cleanly and every query names metrics auxip exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.adapters.telemetry import metrics

DASHBOARD = Path(__file__).parents[3] / "knative" / "grafana" / "auxip-dashboard.json"
METRIC = re.compile(r"\bauxip_[a-z0-9_]+\b")


def _panels(model: dict) -> list[dict]:
    found = []
    for panel in model["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def test_dashboard_model_is_importable() -> None:
    model = json.loads(DASHBOARD.read_text())
    assert model["uid"] and model["title"] and isinstance(model["schemaVersion"], int)
    assert "id" not in model or model["id"] is None  # an import must not collide with a saved id
    [variable] = model["templating"]["list"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    panels = _panels(model)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= grid.keys() and grid["x"] + grid["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"]


def test_every_query_names_existing_metrics() -> None:
    exposed = metrics.sample_names()
    model = json.loads(DASHBOARD.read_text())
    used = set()
    for panel in _panels(model):
        for target in panel.get("targets", []):
            names = set(METRIC.findall(target["expr"]))
            assert names, f"panel {panel['title']!r} queries no auxip metric"
            assert names <= exposed, f"panel {panel['title']!r}: unknown {names - exposed}"
            used |= names
    # Every family is on the dashboard (an unused metric is one nobody looks at).
    families = {n.rsplit("_", 1)[0] if n.endswith(("_bucket", "_sum", "_count", "_total"))
                else n for n in used}
    assert {"auxip_files_in", "auxip_files_out", "auxip_rejections", "auxip_timeliness_seconds",
            "auxip_stage_duration_seconds", "auxip_transfers", "auxip_downloads"} <= families
