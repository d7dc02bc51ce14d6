"""The local stack's Prometheus (`auxip up --with-monitoring`): Debian's server with the
scrape configuration production uses (knative/prometheus/prometheus.yml) and the alerting
rules beside the Grafana dashboard, scraping every local function.

The shipped file is taken as it is, but for what only a cluster has: each job that
discovers pods in Kubernetes scrapes the local functions instead (static targets labelled
as the pods' relabelling would label them: `service`, `namespace`), rule files are resolved
to the repository's, and the stack scrapes and evaluates every LOCAL_INTERVAL, so a demo
ingest shows on the dashboard's queries within seconds. Its own configuration, time series
database (`<state>/prometheus/`) and loopback port (Layout.prometheus_port): it never meets a
system Prometheus.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from devstack.layout import Layout
from devstack.stack import processes

NAME = "prometheus"
REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "knative" / "prometheus" / "prometheus.yml"
LOCAL_INTERVAL = "2s"
NAMESPACE = "auxip"  # the Knative namespace the pods' `namespace` label names


class PrometheusError(RuntimeError):
    pass


def binary() -> str:
    found = shutil.which("prometheus") or ("/usr/bin/prometheus"
                                           if Path("/usr/bin/prometheus").is_file() else None)
    if found is None:
        raise PrometheusError("no prometheus binary: scripts/install-system-deps.sh installs "
                              "Debian's package (make system-deps)")
    return found


def local_config(layout: Layout, services: Sequence[str], shipped: Path = SHIPPED) -> dict:
    """The shipped configuration, pointed at the local stack's `services`."""
    config: dict[str, Any] = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    config.setdefault("global", {}).update(scrape_interval=LOCAL_INTERVAL,
                                           evaluation_interval=LOCAL_INTERVAL)
    config["rule_files"] = [str((shipped.parent / rule).resolve())
                            for rule in config.get("rule_files") or []]
    for job in config.get("scrape_configs") or []:
        if "kubernetes_sd_configs" in job:
            # The relabelling only reads Kubernetes' discovery labels: dropped with it.
            del job["kubernetes_sd_configs"]
            job.pop("relabel_configs", None)
            job["static_configs"] = [
                {"targets": [f"{layout.host}:{layout.function_port(service)}"],
                 "labels": {"service": service, "namespace": NAMESPACE}}
                for service in services
            ]
    return config


def argv(state: Path, layout: Layout, config_file: Path) -> list[str]:
    return [
        binary(),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={state / NAME / 'data'}",
        "--storage.tsdb.retention.time=7d",
        f"--web.listen-address={layout.host}:{layout.prometheus_port}",
    ]


def start(state: Path, layout: Layout, services: Sequence[str]) -> bool:
    """Write the configuration and start Prometheus unless it runs; True when started now.
    A running one rereads the configuration (SIGHUP) when the services changed."""
    folder = state / NAME
    folder.mkdir(parents=True, exist_ok=True)
    config_file = folder / "prometheus.yml"
    text = yaml.safe_dump(local_config(layout, services), sort_keys=False)
    changed = not config_file.exists() or config_file.read_text(encoding="utf-8") != text
    config_file.write_text(text, encoding="utf-8")
    running = processes.pid(state, NAME)
    if running is not None:
        if changed:
            os.kill(running, signal.SIGHUP)  # Prometheus rereads its configuration
        return False
    processes.require_free_port(layout.prometheus_port, NAME)
    processes.start(state, NAME, argv(state, layout, config_file), stop_timeout=10.0)
    return True


def url(layout: Layout) -> str:
    return f"http://{layout.host}:{layout.prometheus_port}"


def wait_ready(state: Path, layout: Layout, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.is_alive(state, NAME):
            break
        if processes.http_status(url(layout) + "/-/ready") == 200:
            return
        time.sleep(0.2)
    raise PrometheusError(f"prometheus not ready at {url(layout)}/-/ready "
                          f"(log: {processes.log_path(state, NAME)})")
