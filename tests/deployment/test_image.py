"""The image recipe, statically (no container runtime here): multi-stage, non-root, built
with `pip install .`, and running functions by the same FUNCTION_SOURCE the Services set."""

from __future__ import annotations

import re

from deployment.paths import REPOSITORY_ROOT, Tree, function_source
from deployment.yamldocs import load_all

DOCKERFILE = (REPOSITORY_ROOT / "Dockerfile").read_text()


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
    copied = {argument.split()[0] for name, argument in instructions()
              if name == "COPY" and not argument.startswith("--from")}
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert {c.rstrip("/") for c in copied} <= allowed | {"pyproject.toml", "README.md"}
