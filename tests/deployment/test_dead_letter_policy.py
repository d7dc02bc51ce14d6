"""The dead letters' attempts in production come from AUXIP_DEAD_LETTER_ATTEMPTS (Knative's
Broker does not say how many deliveries it made): it must follow the Broker's policy."""

from __future__ import annotations

from pathlib import Path

import yaml

BASE = Path(__file__).resolve().parents[2] / "knative" / "base"


def test_the_configured_attempts_are_one_plus_the_brokers_retries() -> None:
    broker = yaml.safe_load((BASE / "broker.yaml").read_text())
    config = yaml.safe_load((BASE / "config.yaml").read_text())
    retry = broker["spec"]["delivery"]["retry"]
    assert int(config["data"]["AUXIP_DEAD_LETTER_ATTEMPTS"]) == 1 + retry
