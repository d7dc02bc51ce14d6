"""docs/clients.md runs: its shell examples in order in one bash (as a reader pastes them),
each Python example on its own, against prip served over loopback with the local demo
realm (the file the local stack serves) and the anonymous catalogue on, as the page's
environment (`auxip env`) describes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.token_issuer.realm_file import DEMO_REALM, load_realm
from tests.devstack.issuer import RunningIssuer, start_issuer, stop_issuer
from tests.prip.catalogue import BY_NUMBER
from tests.prip.conftest import REPO, Served, set_env

pytestmark = pytest.mark.usefixtures("seeded")
PAGE = REPO / "docs" / "clients.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", PAGE.read_text(), re.M | re.S)


@pytest.fixture(scope="module")
def demo_realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIssuer]:
    running = start_issuer(tmp_path_factory.mktemp("demo-realm"), realm=load_realm(DEMO_REALM),
                           any_client="auxip")
    yield running
    stop_issuer(running)


@pytest.fixture
def page_env(function_env: dict[str, str], demo_realm: RunningIssuer, prip: Served
             ) -> Iterator[dict[str, str]]:
    saved = set_env(AUXIP_AUTH_ISSUER=demo_realm.issuer, AUXIP_ANONYMOUS_CATALOGUE="true")
    yield {**os.environ, "AUXIP_PRIP_URL": f"{prip.base}/odata/v1",
           "AUXIP_TOKEN_URL": demo_realm.token_url, "AUXIP_AUTH_ISSUER": demo_realm.issuer}
    set_env(**saved)


def run(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{argv[:2]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_page_has_its_examples():
    assert len(blocks("sh")) >= 5 and len(blocks("python")) >= 2


def test_shell_examples_run_in_order(page_env, tmp_path):
    script = "\n".join(blocks("sh"))
    output = run(["bash", "-euo", "pipefail", "-c", script], page_env, tmp_path)
    # The script's own checks (curl -f, grep -qx 304, grep -qx 401) stopped it if they failed.
    [count] = output.split()
    assert int(count) > 0
    downloaded = [p for p in tmp_path.iterdir() if p.name.startswith("S1")]
    assert len(downloaded) == 1
    assert downloaded[0].read_bytes()[:100] == (tmp_path / "first-100-bytes").read_bytes()
    assert any(p.data() == downloaded[0].read_bytes() for p in BY_NUMBER.values())


@pytest.mark.parametrize("number", range(len(blocks("python"))))
def test_python_examples_run(page_env, tmp_path, number):
    output = run([sys.executable, "-c", blocks("python")[number]], page_env, tmp_path)
    assert output.strip()  # each example prints what it got
