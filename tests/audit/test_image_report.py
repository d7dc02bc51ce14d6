"""The image build's own licence command (the Dockerfile's RUN line, with the image's paths
mapped to this machine's) judges the runtime environment and writes the report that the
image carries."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from audit.licences import REPORT
from tests.audit.conftest import REPO
from tests.deployment.test_image import stages


def test_the_dockerfile_licence_command_writes_the_report(
        tmp_path: Path, tools_venv: Path, runtime_python: Path):
    build = stages()[0]
    run = next(argument for name, argument in build
               if name == "RUN" and "python -m audit licences" in argument)
    command = shlex.split(run.split("&&")[0])
    paths = {"/opt/auxip/venv/bin/python": str(runtime_python),
             "/tmp/audit-tools": str(tools_venv), "/tmp/audit": str(tmp_path / "audit")}
    command = [paths.get(word, word) for word in command]
    assert command[:4] == ["python", "-m", "audit", "licences"]
    assert f"cp /tmp/audit/{REPORT} /opt/auxip/" in run

    done = subprocess.run([sys.executable, *command[1:]], cwd=REPO, capture_output=True, text=True)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "audit: licences: passed" in done.stdout
    report = (tmp_path / "audit" / REPORT).read_text()
    assert report.startswith("Third-party software in the auxip image")
    assert "\nboto3 " in report and "\npsycopg " in report
