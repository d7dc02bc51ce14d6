"""The CycloneDX SBOM of what the image ships: every package installed in the runtime
environment (auxip's dependencies, pip and setuptools of the venv), with auxip from
pyproject.toml as the root component and the dependency graph between them."""

from __future__ import annotations

import json

from audit.context import FAILED, PASSED, Context, Outcome

FILE = "sbom.cdx.json"


def check(context: Context) -> Outcome:
    target = context.out / FILE
    done = context.run(
        context.tool("cyclonedx-py"), "environment",
        "--pyproject", context.root / "pyproject.toml", "--mc-type", "application",
        "--spec-version", "1.6", "--output-format", "JSON", "--output-reproducible",
        "--validate", "--output-file", target, context.runtime_python,
    )
    if done.returncode != 0:
        return Outcome("sbom", FAILED, "cyclonedx-py failed", done.stderr.strip().splitlines())
    bom = json.loads(target.read_text())
    root = bom["metadata"]["component"]
    return Outcome("sbom", PASSED, f"{len(bom['components'])} components under "
                   f"{root['name']} {root['version']}, CycloneDX {bom['specVersion']}: {target}")
