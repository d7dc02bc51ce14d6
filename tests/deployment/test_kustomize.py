"""The kustomize renderer: each supported field on small kustomizations, its refusals, and
agreement with `kubectl kustomize` on the real overlays where kubectl is installed."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from deployment.kustomize import Image, KustomizeError, render, resource_id, split_image
from deployment.paths import OVERLAYS, Tree


def write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return directory


SERVICE = """\
    apiVersion: serving.knative.dev/v1
    kind: Service
    metadata: {name: %s, namespace: base-ns, labels: {app: %s}}
    spec:
      template:
        metadata:
          annotations: {autoscaling.knative.dev/max-scale: "4"}
        spec:
          containers:
            - name: function
              image: auxip:latest
              resources: {requests: {cpu: 100m}}
    """


def base(tmp_path: Path) -> Path:
    return write(tmp_path / "base", {
        "kustomization.yaml": "resources: [a.yaml, b.yaml, config.yaml]\n",
        "a.yaml": SERVICE % ("a", "a"),
        "b.yaml": SERVICE % ("b", "b"),
        "config.yaml": """\
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: config, namespace: base-ns}
            data: {KEY: one}
            """,
    })


def by_name(documents: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in documents}


def test_resources_from_files_and_directories_configuration_first(tmp_path):
    base(tmp_path)
    overlay = write(tmp_path / "overlay", {"kustomization.yaml": "resources: [../base, ns.yaml]\n",
                                           "ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"})
    documents = render(overlay)
    assert [d["kind"] for d in documents] == ["Namespace", "ConfigMap", "Service", "Service"]
    assert [d["metadata"]["name"] for d in documents[2:]] == ["a", "b"]


def test_namespace_applies_to_namespaced_kinds_only(tmp_path):
    base(tmp_path)
    overlay = write(tmp_path / "overlay", {
        "kustomization.yaml": "namespace: prod\nresources: [../base, ns.yaml]\n",
        "ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n"})
    documents = render(overlay)
    assert {d["metadata"].get("namespace") for d in documents if d["kind"] != "Namespace"} == {"prod"}
    assert "namespace" not in by_name(documents)["prod"]["metadata"]


def test_labels_and_common_labels_go_to_metadata_only(tmp_path):
    base(tmp_path)
    overlay = write(tmp_path / "overlay", {"kustomization.yaml": """\
        resources: [../base]
        commonLabels: {team: ops}
        labels:
          - pairs: {env: test}
        """})
    service = by_name(render(overlay))["a"]
    assert service["metadata"]["labels"] == {"app": "a", "team": "ops", "env": "test"}
    assert "labels" not in service["spec"]["template"]["metadata"]


def test_common_labels_refused_where_kustomize_would_also_change_selectors(tmp_path):
    write(tmp_path, {"kustomization.yaml": "resources: [d.yaml]\ncommonLabels: {a: b}\n",
                     "d.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"})
    with pytest.raises(KustomizeError, match="selectors"):
        render(tmp_path)


@pytest.mark.parametrize(("entry", "image"), [
    ("{name: auxip, newName: reg.example/auxip, newTag: '1.2'}", "reg.example/auxip:1.2"),
    ("{name: auxip, newTag: dev}", "auxip:dev"),
    ("{name: auxip, newName: reg.example:5000/x/auxip}", "reg.example:5000/x/auxip:latest"),
    ("{name: auxip, digest: 'sha256:abc'}", "auxip@sha256:abc"),
    ("{name: other, newTag: dev}", "auxip:latest"),
])
def test_images(tmp_path, entry, image):
    base(tmp_path)
    overlay = write(tmp_path / "overlay", {"kustomization.yaml": f"resources: [../base]\nimages: [{entry}]\n"})
    containers = by_name(render(overlay))["a"]["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == image


def test_image_override_wins_over_the_kustomization(tmp_path):
    base(tmp_path)
    overlay = write(tmp_path / "overlay", {
        "kustomization.yaml": "resources: [../base]\nimages: [{name: auxip, newTag: dev}]\n"})
    documents = render(overlay, (Image.parse_override("auxip", "reg.example/auxip:9"),))
    assert by_name(documents)["b"]["spec"]["template"]["spec"]["containers"][0]["image"] == "reg.example/auxip:9"


def test_split_image():
    assert split_image("reg:5000/a/b:t@sha256:x") == ("reg:5000/a/b", "t", "sha256:x")
    assert split_image("reg:5000/a/b") == ("reg:5000/a/b", None, None)
    assert split_image("b:t") == ("b", "t", None)


def test_strategic_merge_without_target_selects_kind_name_and_namespace(tmp_path):
    base(tmp_path)
    overlay = write(tmp_path / "overlay", {
        "kustomization.yaml": "resources: [../base]\npatches: [{path: p.yaml}]\n",
        "p.yaml": """\
            apiVersion: serving.knative.dev/v1
            kind: Service
            metadata: {name: a, namespace: base-ns, labels: {app: null, tier: web}}
            spec:
              template:
                metadata:
                  annotations: {autoscaling.knative.dev/min-scale: "1"}
            """})
    documents = by_name(render(overlay))
    assert documents["a"]["metadata"]["labels"] == {"tier": "web"}
    assert documents["a"]["spec"]["template"]["metadata"]["annotations"] == {
        "autoscaling.knative.dev/max-scale": "4", "autoscaling.knative.dev/min-scale": "1"}
    assert documents["b"]["spec"]["template"]["metadata"]["annotations"] == {
        "autoscaling.knative.dev/max-scale": "4"}


def test_strategic_merge_without_namespace_does_not_select_a_namespaced_resource(tmp_path):
    # As kustomize: the patch's (unset) namespace must equal the resource's.
    base(tmp_path)
    overlay = write(tmp_path / "overlay", {"kustomization.yaml": """\
        resources: [../base]
        patches:
          - patch: |-
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: config}
              data: {KEY: two}
        """})
    with pytest.raises(KustomizeError, match="matches no resource"):
        render(overlay)


def test_strategic_merge_with_target_patches_every_match_and_replaces_lists(tmp_path):
    base(tmp_path)
    overlay = write(tmp_path / "overlay", {"kustomization.yaml": """\
        resources: [../base]
        patches:
          - target: {group: serving.knative.dev, kind: Service, name: "a|b"}
            patch: |-
              apiVersion: serving.knative.dev/v1
              kind: Service
              metadata: {name: ignored}
              spec:
                template:
                  spec:
                    containers: [{name: only, image: x}]
        """})
    for name in ("a", "b"):
        document = by_name(render(overlay))[name]
        assert document["metadata"]["name"] == name
        assert document["spec"]["template"]["spec"]["containers"] == [{"name": "only", "image": "x"}]


def test_json6902_operations(tmp_path):
    base(tmp_path)
    overlay = write(tmp_path / "overlay", {"kustomization.yaml": """\
        resources: [../base]
        patches:
          - target: {kind: Service, labelSelector: app=a}
            patch: |-
              - {op: test, path: /spec/template/spec/containers/0/name, value: function}
              - {op: replace, path: /spec/template/spec/containers/0/resources/requests, value: {cpu: 50m}}
              - {op: add, path: /spec/template/spec/containers/0/env, value: []}
              - {op: add, path: /spec/template/spec/containers/0/env/-, value: {name: A, value: "1"}}
              - {op: add, path: /spec/template/spec/containers/0/env/0, value: {name: B, value: "2"}}
              - {op: remove, path: /metadata/labels/app}
              - {op: add, path: /metadata/annotations, value: {"a~1b": "x"}}
        """})
    documents = by_name(render(overlay))
    container = documents["a"]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "50m"}}
    assert container["env"] == [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]
    assert "labels" in documents["a"]["metadata"] and "app" not in documents["a"]["metadata"]["labels"]
    assert documents["b"]["metadata"]["labels"] == {"app": "b"}


@pytest.mark.parametrize(("kustomization", "files", "message"), [
    ("resources: [missing.yaml]\n", {}, "does not exist"),
    ("resources: [a.yaml, a2.yaml]\n", {"a.yaml": SERVICE % ("a", "a"), "a2.yaml": SERVICE % ("a", "x")},
     "defined twice"),
    ("resources: [a.yaml]\nconfigMapGenerator: []\n", {"a.yaml": SERVICE % ("a", "a")}, "not supported"),
    ("resources: [a.yaml]\npatches:\n  - patch: '[{op: replace, path: /x, value: 1}]'\n",
     {"a.yaml": SERVICE % ("a", "a")}, "needs a `target`"),
    ("resources: [a.yaml]\npatches:\n  - target: {kind: Service}\n    patch: '[{op: replace, path: /nope, value: 1}]'\n",
     {"a.yaml": SERVICE % ("a", "a")}, "no 'nope'"),
    ("resources: [a.yaml]\npatches:\n  - target: {kind: Service}\n    patch: '[{op: move, from: /a, path: /b}]'\n",
     {"a.yaml": SERVICE % ("a", "a")}, "not supported"),
    ("resources: [a.yaml]\npatches:\n  - target: {kind: Service}\n    patch: '[{op: test, path: /kind, value: Job}]'\n",
     {"a.yaml": SERVICE % ("a", "a")}, "test failed"),
    ("resources: [a.yaml]\npatches:\n  - target: {kind: Broker}\n    patch: '{spec: {}}'\n",
     {"a.yaml": SERVICE % ("a", "a")}, "matches no resource"),
    ("resources: [a.yaml]\npatches:\n  - target: {kind: Service}\n    patch: '{$patch: delete}'\n",
     {"a.yaml": SERVICE % ("a", "a")}, "directives"),
    ("resources: [d.yaml]\npatches:\n  - target: {kind: Deployment}\n    patch: '{spec: {template: {spec: {containers: []}}}}'\n",
     {"d.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"}, "built-in kind"),
    ("resources: [bad.yaml]\n", {"bad.yaml": "kind: ConfigMap\nmetadata: {name: x}\n"}, "apiVersion and kind"),
    ("resources: [.]\n", {}, "cycle"),
])
def test_refusals(tmp_path, kustomization, files, message):
    write(tmp_path, {"kustomization.yaml": kustomization, **files})
    with pytest.raises(KustomizeError, match=message):
        render(tmp_path)


def test_no_kustomization(tmp_path):
    with pytest.raises(KustomizeError, match="no kustomization.yaml"):
        render(tmp_path)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_same_documents_as_kubectl_kustomize(overlay):
    ours = render(Tree().overlay(overlay))
    result = subprocess.run(["kubectl", "kustomize", str(Tree().overlay(overlay))],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    theirs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert {resource_id(d): d for d in ours} == {resource_id(d): d for d in theirs}
