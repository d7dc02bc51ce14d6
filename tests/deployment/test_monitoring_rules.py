"""The monitoring that ships in knative/: the alerting rules pass `promtool check rules` and
their unit tests (`promtool test rules`), every alert has a case where it fires, the rules
name only metrics auxip exports, and the scrape configuration is one Prometheus accepts, as
production has it and as the local stack runs it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from devstack.layout import FUNCTIONS, Layout
from devstack.stack import prometheus
from shared.adapters.telemetry import metrics

GRAFANA = Path(__file__).parents[2] / "knative" / "grafana"
RULES = GRAFANA / "auxip-rules.yaml"
RULE_TESTS = GRAFANA / "auxip-rules.test.yaml"
METRIC = re.compile(r"\b(auxip_[a-z0-9_]+|up)\b")


def promtool(*args: str, cwd: Path = GRAFANA) -> str:
    binary = shutil.which("promtool") or "/usr/bin/promtool"
    assert Path(binary).is_file(), "promtool is missing: make system-deps (Debian's prometheus)"
    result = subprocess.run([binary, *args], capture_output=True, text=True, cwd=cwd,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def alerts() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"]
            for rule in group["rules"] if "alert" in rule]


def test_the_rules_are_valid():
    assert f"SUCCESS: {len(alerts())} rules found" in promtool("check", "rules", RULES.name)


def test_the_rules_pass_their_unit_tests():
    assert "SUCCESS" in promtool("test", "rules", RULE_TESTS.name)


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_does_not():
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
             for case in test.get("alert_rule_test", [])]
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    names = {alert["alert"] for alert in alerts()}
    assert names == fires == quiet
    # What operators are paged for (the list), each by its alert.
    assert {"AuxipTimelinessBreach", "AuxipRejectionsSpike", "AuxipDeadLetters",
            "AuxipTransferFailures", "AuxipFunctionDown"} <= names


def test_the_rules_name_only_metrics_auxip_exports():
    exported = metrics.sample_names() | {"up"}
    for alert in alerts():
        named = set(METRIC.findall(alert["expr"]))
        assert named and named <= exported, (alert["alert"], named - exported)
        assert alert["labels"]["severity"] == "page"
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]


def test_the_production_scrape_configuration_is_valid(tmp_path):
    # Debian's Prometheus is built without Kubernetes discovery: the pod discovery is put
    # aside; the relabelling, paths and rule files are checked as written.
    config = yaml.safe_load(prometheus.SHIPPED.read_text())
    (job,) = config["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["auxip"]}}]
    del job["kubernetes_sd_configs"]
    job["static_configs"] = [{"targets": []}]
    config["rule_files"] = [str((prometheus.SHIPPED.parent / f).resolve())
                            for f in config["rule_files"]]
    assert config["rule_files"] == [str(RULES)]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    assert "SUCCESS" in promtool("check", "config", str(path))
    relabelled = {r.get("target_label") for r in yaml.safe_load(
        prometheus.SHIPPED.read_text())["scrape_configs"][0]["relabel_configs"]}
    assert {"service", "namespace", "__metrics_path__", "__address__"} <= relabelled


def test_the_local_configuration_scrapes_every_function(tmp_path):
    layout = Layout(41000)
    config = prometheus.local_config(layout, FUNCTIONS)
    (job,) = config["scrape_configs"]
    assert "kubernetes_sd_configs" not in job and "relabel_configs" not in job
    targets = {c["labels"]["service"]: c["targets"] for c in job["static_configs"]}
    assert targets == {f: [f"127.0.0.1:{layout.function_port(f)}"] for f in FUNCTIONS}
    assert job["metrics_path"] == metrics.ROUTE
    assert config["rule_files"] == [str(RULES)]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    assert "SUCCESS" in promtool("check", "config", str(path))
    assert prometheus.argv(tmp_path, layout, path)[-1] == (
        f"--web.listen-address=127.0.0.1:{layout.prometheus_port}")


def test_the_services_carry_what_the_scrape_configuration_reads():
    # The production job keeps pods annotated prometheus.io/scrape on their `function`
    # container and labels them with app.kubernetes.io/name (knative/base/services.yaml).
    documents = [d for d in yaml.safe_load_all((prometheus.SHIPPED.parents[1] / "base" /
                                                "services.yaml").read_text()) if d]
    for service in (d for d in documents if d["kind"] == "Service"):
        template = service["spec"]["template"]
        assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        name = service["metadata"]["name"]
        assert template["metadata"]["labels"]["app.kubernetes.io/name"] == name
        assert template["spec"]["containers"][0]["name"] == "function"
