"""The SBOM of `make audit`: written where the README says, valid CycloneDX 1.6, rooted
at auxip (Apache-2.0), listing exactly the packages of the runtime environment - what
`pip install .` puts in the image, no dev tool - and auxip's direct dependencies as
pyproject.toml names them."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

from audit.sbom import FILE
from tests.audit.conftest import REPO, MakeAudit

VALIDATE = """
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())
print(error or "valid")
"""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_sbom_describes_what_the_image_ships(
        tree: Path, tools_venv: Path, runtime_python: Path, make_audit: MakeAudit):
    done = make_audit("--runtime-python", runtime_python, "sbom", tree=tree, own_out=True)
    assert done.returncode == 0, done.stdout
    path = tree / "build" / "audit" / FILE
    assert f"`{FILE}`" in (REPO / "README.md").read_text().split("## Supply-chain checks")[1]
    assert "reports in build/audit/" in (REPO / "README.md").read_text()
    assert subprocess.run([str(tools_venv / "bin" / "python"), "-c", VALIDATE, str(path)],
                          capture_output=True, text=True, check=True).stdout.strip() == "valid"

    bom = json.loads(path.read_text())
    root = bom["metadata"]["component"]
    assert (root["name"], root["type"]) == ("auxip", "application")
    assert root["licenses"] == [{"license": {"acknowledgement": "declared", "id": "Apache-2.0"}}]

    shipped = json.loads(subprocess.run(
        [str(runtime_python), "-m", "pip", "list", "--format", "json",
         "--disable-pip-version-check"], check=True, capture_output=True, text=True).stdout)
    assert {(_canonical(c["name"]), c["version"]) for c in bom["components"]} == \
        {(_canonical(p["name"]), p["version"]) for p in shipped}
    assert not {"pytest", "hypothesis", "bandit", "cyclonedx-bom"} & \
        {_canonical(c["name"]) for c in bom["components"]}

    with (REPO / "pyproject.toml").open("rb") as file:
        direct = {_canonical(re.split(r"[\[<>=!~; ]", d, maxsplit=1)[0])
                  for d in tomllib.load(file)["project"]["dependencies"]}
    depends = next(d["dependsOn"] for d in bom["dependencies"] if d["ref"] == root["bom-ref"])
    assert {_canonical(ref.split("==")[0]) for ref in depends} == direct
