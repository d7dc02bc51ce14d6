"""Production settings name no machine: what is missing stops a process at start, named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.adapters.settings import Settings, SettingsError, load_settings

REPO = Path(__file__).resolve().parents[2]
COMPLETE = {"AUXIP_DATABASE_URL": "postgresql://auxip@db.example:5432/auxip",
            "AUXIP_S3_ENDPOINT": "https://minio.example", "AUXIP_S3_ACCESS_KEY": "k",
            "AUXIP_S3_SECRET_KEY": "s", "AUXIP_CLAMD_HOST": "clamav.example",
            "AUXIP_AUTH_ISSUER": "https://iam.example/realms/s1"}


@pytest.fixture
def bare(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment without any AUXIP_* (nor K_SINK)."""
    for name in [n for n in os.environ if n.startswith("AUXIP_") or n == "K_SINK"]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_nothing_defaults_to_a_machine(bare: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == "AUXIP_DATABASE_URL is not set"
    bare.setenv("AUXIP_DATABASE_URL", COMPLETE["AUXIP_DATABASE_URL"])
    settings = load_settings()
    assert (settings.s3_endpoint, settings.clamd_host, settings.broker_url) == (None, None, None)
    with pytest.raises(SettingsError, match="AUXIP_S3_ENDPOINT, AUXIP_S3_ACCESS_KEY, "
                                            "AUXIP_S3_SECRET_KEY not set"):
        settings.require_s3()
    with pytest.raises(SettingsError, match="AUXIP_CLAMD_HOST .* or AUXIP_CLAMD_SOCKET"):
        settings.require_scanner()


def test_an_invalid_value_is_named(bare: pytest.MonkeyPatch) -> None:
    bare.setenv("AUXIP_DATABASE_URL", "postgresql://x/y")
    bare.setenv("AUXIP_DB_POOL_MAX", "many")
    with pytest.raises(SettingsError, match="^AUXIP_DB_POOL_MAX: "):
        load_settings()


def test_a_complete_environment_needs_nothing_else(bare: pytest.MonkeyPatch) -> None:
    for name, value in COMPLETE.items():
        bare.setenv(name, value)
    settings = load_settings()
    assert settings.require_s3() == ("https://minio.example", "k", "s")
    settings.require_scanner()
    assert isinstance(settings, Settings) and settings.clamd_port == 3310


def _start(function: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Import a function's main module as functions-framework does at start."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AUXIP_") and k != "K_SINK"}
    return subprocess.run(
        [sys.executable, "-c", "import runpy, sys; runpy.run_path(sys.argv[1])",
         str(REPO / "functions" / function / "main.py")],
        env={**clean, **env}, cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("function", "unset", "named"), [
    ("package", "AUXIP_DATABASE_URL", "AUXIP_DATABASE_URL is not set"),
    ("publish", "AUXIP_S3_ENDPOINT", "AUXIP_S3_ENDPOINT not set"),
    ("ingest", "AUXIP_CLAMD_HOST", "AUXIP_CLAMD_SOCKET"),
    ("prip", "AUXIP_AUTH_ISSUER", "prip has no way to authenticate anyone"),
])
def test_a_function_stops_at_start_naming_what_is_missing(function: str, unset: str,
                                                          named: str) -> None:
    assert _start(function, COMPLETE).returncode == 0
    missing = _start(function, {k: v for k, v in COMPLETE.items() if k != unset})
    assert missing.returncode != 0
    assert "SettingsError" in missing.stderr and named in missing.stderr
