"""The image recipe, statically (no container runtime here): multi-stage, non-root, built
with `pip install .`, running functions by the same FUNCTION_SOURCE the Services set, and
carrying auxip's licence, notice and the third-party licence report."""

from __future__ import annotations

import re
import tomllib

from deployment.paths import REPOSITORY_ROOT, Tree, function_source
from deployment.yamldocs import load_all

DOCKERFILE = (REPOSITORY_ROOT / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((REPOSITORY_ROOT / "pyproject.toml").read_text())


def instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", re.sub(r"(?m)^\s*#.*\n", "", DOCKERFILE))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_multi_stage_slim_and_non_root():
    steps = instructions()
    stages = [argument for name, argument in steps if name == "FROM"]
    assert len(stages) == 2 and all("slim" in stage for stage in stages)
    final = steps[max(i for i, (name, _) in enumerate(steps) if name == "FROM"):]
    users = [argument for name, argument in final if name == "USER"]
    assert users and users[-1].strip().isdigit() and users[-1].strip() != "0"  # numeric: runAsNonRoot
    assert any(name == "COPY" and "--from=build" in argument for name, argument in final)
    assert not any(name == "RUN" and "pip install" in argument for name, argument in final)


def test_built_with_pip_install_of_the_project_and_serving_by_environment():
    runs = " ".join(argument for name, argument in instructions() if name == "RUN")
    assert "pip install --no-deps ." in runs and "python -I -c" in runs
    env = " ".join(argument for name, argument in instructions() if name == "ENV")
    assert "FUNCTION_TARGET=handle" in env and "PORT=8080" in env
    assert ("WORKDIR", "/opt/auxip") in instructions()
    assert instructions()[-1] == ("CMD", '["functions-framework"]')


def test_every_service_runs_a_source_the_image_holds():
    # The image links functions/ into its working directory; the repository root has it too.
    for service in load_all(Tree().base / "services.yaml"):
        env = {e["name"]: e["value"] for e in service["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["FUNCTION_SOURCE"] == function_source(service["metadata"]["name"])
        assert (REPOSITORY_ROOT / env["FUNCTION_SOURCE"]).is_file()


def test_dockerignore_sends_only_what_the_build_copies():
    lines = [line for line in (REPOSITORY_ROOT / ".dockerignore").read_text().splitlines()
             if line and not line.startswith("#")]
    assert lines[0] == "*"
    copied = {source for name, argument in instructions()
              if name == "COPY" and not argument.startswith("--from")
              for source in argument.split()[:-1]}
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert {c.rstrip("/") for c in copied} <= allowed


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for step in instructions():
        if step[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(step)
    return found


def test_licence_notice_and_third_party_report_are_in_the_image():
    build, final = stages()
    # auxip's own licence and notice beside the venv; the report comes with the venv.
    assert ("COPY", "LICENSE NOTICE /opt/auxip/") in final
    assert ("COPY", "--from=build /opt/auxip /opt/auxip") in final
    runs = [argument for name, argument in build if name == "RUN"]
    installs = next(i for i, run in enumerate(runs) if "pip install ." in run)
    reports = next(i for i, run in enumerate(runs) if "python -m audit licences" in run)
    # Judged and written from the image's own venv, once its dependencies are in.
    assert installs < reports
    assert "--runtime-python /opt/auxip/venv/bin/python" in runs[reports]
    assert "cp /tmp/audit/THIRD_PARTY_LICENSES.txt /opt/auxip/" in runs[reports]
    # The image says the licence pyproject.toml declares, whose text LICENSE holds.
    label = next(argument for name, argument in final if name == "LABEL")
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in label
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert set(PYPROJECT["project"]["license-files"]) == {"LICENSE", "NOTICE"}
    licence = (REPOSITORY_ROOT / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in licence
    assert "END OF TERMS AND CONDITIONS" in licence
