"""A kustomize renderer for the subset knative/ uses, so `make manifests` and the tests
need neither kubectl nor a cluster.

Supported in a kustomization.yaml: `resources` (YAML files, and directories holding a
kustomization), `namespace`, `commonLabels` and `labels` (metadata labels only), `images`
and `patches` (strategic merge or JSON 6902, inline or by `path`, with or without a
`target`). Transformers run in kustomize's order: patches, namespace, labels, images.
Anything else is refused with an error rather than silently rendered differently.

Stricter than kustomize on purpose: a patch that matches no resource is an error (kustomize
ignores a `target` that selects nothing, which hides typos).
The test suite compares this renderer with `kubectl kustomize` where kubectl is installed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deployment import patches
from deployment.yamldocs import load_all

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KNOWN_FIELDS = frozenset({"apiVersion", "kind", "resources", "namespace", "commonLabels",
                          "labels", "images", "patches"})
CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding",
                            "CustomResourceDefinition", "PersistentVolume", "StorageClass",
                            "PriorityClass", "MutatingWebhookConfiguration",
                            "ValidatingWebhookConfiguration", "APIService"})
# Kinds whose selectors and pod templates kustomize also labels with commonLabels.
SELECTOR_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job",
                            "CronJob", "ReplicationController", "PodDisruptionBudget",
                            "NetworkPolicy"})
# Applied first: namespaces must exist before what they hold, configuration before its users.
APPLY_ORDER = ("Namespace", "ConfigMap", "Secret")


class KustomizeError(ValueError):
    pass


@dataclass(frozen=True)
class Image:
    """One `images` entry: which image name to rewrite, and into what."""

    name: str
    new_name: str | None = None
    new_tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse_override(cls, name: str, reference: str) -> Image:
        """`auxip`, `registry/auxip:1.2` -> rewrite `auxip` into that reference."""
        repository, tag, digest = split_image(reference)
        return cls(name, repository, tag, digest)


def render(directory: Path, images: Sequence[Image] = ()) -> list[dict]:
    """The documents of the kustomization in `directory`; `images` are applied last, over
    the kustomization's own entries of the same name (like `kustomize edit set image`)."""
    documents = _build(directory.resolve(), images, ())
    rank = {kind: i for i, kind in enumerate(APPLY_ORDER)}
    return sorted(documents, key=lambda d: rank.get(d.get("kind"), len(rank)))  # stable


def _build(directory: Path, extra_images: Sequence[Image], stack: tuple[Path, ...]) -> list[dict]:
    if directory in stack:
        raise KustomizeError(f"{directory}: kustomizations include each other in a cycle")
    file = next((directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()), None)
    if file is None:
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    try:
        kustomization = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise KustomizeError(f"{file}: not valid YAML: {error}") from None
    if not isinstance(kustomization, dict):
        raise KustomizeError(f"{file}: must be a map")
    unknown = sorted(set(kustomization) - KNOWN_FIELDS)
    if unknown:
        raise KustomizeError(f"{file}: not supported by this renderer: {', '.join(unknown)}")
    if kustomization.get("kind", "Kustomization") != "Kustomization":
        raise KustomizeError(f"{file}: kind {kustomization.get('kind')!r} is not supported")

    documents: list[dict] = []
    for entry in _list(kustomization, "resources", file):
        path = (directory / str(entry)).resolve()
        if path.is_dir():
            documents.extend(_build(path, (), (*stack, directory)))
        elif path.is_file():
            documents.extend(_resources(path))
        else:
            raise KustomizeError(f"{file}: resource {entry!r} does not exist")
    _check_unique(documents, file)

    for number, entry in enumerate(_list(kustomization, "patches", file)):
        documents = _patch(documents, entry, directory, f"{file}: patches[{number}]")
    namespace = kustomization.get("namespace")
    if namespace is not None:
        if not isinstance(namespace, str) or not namespace:
            raise KustomizeError(f"{file}: namespace must be a name")
        for document in documents:
            if document.get("kind") not in CLUSTER_SCOPED:
                document.setdefault("metadata", {})["namespace"] = namespace
    _label(documents, kustomization, file)
    images = [_image(entry, file) for entry in _list(kustomization, "images", file)]
    overridden = {image.name for image in extra_images}
    images = [image for image in images if image.name not in overridden] + list(extra_images)
    for document in documents:
        _rewrite_images(document, images)
    _check_unique(documents, file)
    return documents


def _list(kustomization: dict, key: str, file: Path) -> list:
    value = kustomization.get(key) or []
    if not isinstance(value, list):
        raise KustomizeError(f"{file}: {key} must be a list")
    return value


def _resources(path: Path) -> list[dict]:
    try:
        documents = load_all(path)
    except yaml.YAMLError as error:
        raise KustomizeError(f"{path}: not valid YAML: {error}") from None
    for document in documents:
        if not isinstance(document, dict) or not document.get("kind") or not document.get("apiVersion"):
            raise KustomizeError(f"{path}: every document needs apiVersion and kind")
        if not (document.get("metadata") or {}).get("name"):
            raise KustomizeError(f"{path}: {document['kind']} without metadata.name")
    return documents


def resource_id(document: dict) -> tuple[str, str, str, str]:
    metadata = document.get("metadata") or {}
    return (patches.group_of(str(document.get("apiVersion", ""))), str(document.get("kind")),
            str(metadata.get("namespace") or ""), str(metadata.get("name")))


def _check_unique(documents: list[dict], file: Path) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for document in documents:
        key = resource_id(document)
        if key in seen:
            group, kind, namespace, name = key
            raise KustomizeError(f"{file}: {kind}.{group or 'core'} {namespace}/{name} is defined twice")
        seen.add(key)


# -- patches -------------------------------------------------------------------------------


def _patch(documents: list[dict], entry: Any, directory: Path, where: str) -> list[dict]:
    if not isinstance(entry, dict) or set(entry) - {"path", "patch", "target"}:
        raise KustomizeError(f"{where}: a patch has `path` or `patch`, and an optional `target`")
    if ("path" in entry) == ("patch" in entry):
        raise KustomizeError(f"{where}: set exactly one of `path` and `patch`")
    text = entry["patch"] if "patch" in entry else _read(directory / entry["path"], where)
    try:
        body = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise KustomizeError(f"{where}: not valid YAML: {error}") from None
    target = entry.get("target")
    if isinstance(body, list):
        if target is None:
            raise KustomizeError(f"{where}: a JSON 6902 patch needs a `target`")
        apply = lambda document: patches.json6902(document, body, where)  # noqa: E731
    elif isinstance(body, dict):
        if target is None:
            target = _target_of(body, where)
        else:
            # With a target, the patch's own name does not select (kustomize renames it).
            metadata = {k: v for k, v in (body.get("metadata") or {}).items()
                        if k not in ("name", "namespace")}
            body = {**body, "metadata": metadata} if metadata else {k: v for k, v in body.items() if k != "metadata"}
        patch_body = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
        apply = lambda document: patches.strategic_merge(document, patch_body, where)  # noqa: E731
    else:
        raise KustomizeError(f"{where}: a patch is a map (strategic merge) or a list (JSON 6902)")
    matched = 0
    result = []
    for document in documents:
        if _selects(target, document, where):
            matched += 1
            try:
                document = apply(document)
            except patches.PatchError as error:
                raise KustomizeError(f"{error} (on {document['kind']} {document['metadata']['name']})") from None
        result.append(document)
    if matched == 0:
        raise KustomizeError(f"{where}: matches no resource ({target})")
    return result


def _read(path: Path, where: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise KustomizeError(f"{where}: {error}") from None


def _target_of(body: dict, where: str) -> dict:
    metadata = body.get("metadata") or {}
    if not body.get("kind") or not metadata.get("name"):
        raise KustomizeError(f"{where}: a strategic merge patch without `target` needs kind and metadata.name")
    api = str(body.get("apiVersion", ""))
    target = {"group": patches.group_of(api), "kind": body["kind"], "name": re.escape(metadata["name"])}
    if api:
        target["version"] = api.split("/")[-1]
    # As kustomize: the patch's namespace, even when unset, must be the resource's.
    target["namespace"] = re.escape(metadata.get("namespace") or "")
    return target


def _selects(target: Any, document: dict, where: str) -> bool:
    if not isinstance(target, dict):
        raise KustomizeError(f"{where}: target must be a map")
    unknown = set(target) - {"group", "version", "kind", "name", "namespace", "labelSelector"}
    if unknown:
        raise KustomizeError(f"{where}: target fields not supported: {', '.join(sorted(unknown))}")
    api = str(document.get("apiVersion", ""))
    metadata = document.get("metadata") or {}
    if "group" in target and target["group"] != patches.group_of(api):
        return False
    if "version" in target and target["version"] != api.split("/")[-1]:
        return False
    if "kind" in target and target["kind"] != document.get("kind"):
        return False
    # kustomize matches name and namespace as anchored regular expressions.
    if "name" in target and not re.fullmatch(str(target["name"]), str(metadata.get("name", ""))):
        return False
    if "namespace" in target and not re.fullmatch(str(target["namespace"]), str(metadata.get("namespace", ""))):
        return False
    if "labelSelector" in target:
        labels = metadata.get("labels") or {}
        for requirement in str(target["labelSelector"]).split(","):
            key, sep, value = requirement.partition("=")
            if not sep or "!" in key:
                raise KustomizeError(f"{where}: labelSelector supports key=value[,key=value] only")
            if labels.get(key.strip()) != value.strip():
                return False
    return True


# -- labels and images ---------------------------------------------------------------------


def _label(documents: list[dict], kustomization: dict, file: Path) -> None:
    pairs: dict[str, str] = {}
    common = kustomization.get("commonLabels") or {}
    if common:
        if not isinstance(common, dict):
            raise KustomizeError(f"{file}: commonLabels must be a map")
        for document in documents:
            if document.get("kind") in SELECTOR_KINDS or (
                    document.get("kind") == "Service" and document.get("apiVersion") == "v1"):
                raise KustomizeError(f"{file}: commonLabels on {document['kind']} would change its "
                                     "selectors, which this renderer does not do: use `labels`")
        pairs.update(common)
    for entry in _list(kustomization, "labels", file):
        if not isinstance(entry, dict) or set(entry) - {"pairs", "includeSelectors", "includeTemplates"}:
            raise KustomizeError(f"{file}: labels entries support `pairs` only")
        if entry.get("includeSelectors") or entry.get("includeTemplates"):
            raise KustomizeError(f"{file}: labels with includeSelectors/includeTemplates are not supported")
        pairs.update(entry.get("pairs") or {})
    for key, value in pairs.items():
        if not isinstance(value, str):
            raise KustomizeError(f"{file}: label {key} must be a string, got {value!r}")
    if not pairs:
        return
    for document in documents:
        metadata = document.setdefault("metadata", {})
        metadata["labels"] = {**(metadata.get("labels") or {}), **pairs}


def _image(entry: Any, file: Path) -> Image:
    if not isinstance(entry, dict) or not entry.get("name") or set(entry) - {"name", "newName", "newTag", "digest"}:
        raise KustomizeError(f"{file}: images entries have name, newName, newTag, digest")
    return Image(entry["name"], entry.get("newName"), _str(entry.get("newTag")), entry.get("digest"))


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def split_image(reference: str) -> tuple[str, str | None, str | None]:
    """`registry:5000/a/b:tag@sha256:x` -> (`registry:5000/a/b`, `tag`, `sha256:x`)."""
    name, _, digest = reference.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1:], digest or None
    return name, None, digest or None


def _rewrite_images(node: Any, images: Sequence[Image]) -> None:
    # kustomize rewrites the `image` of every container list, wherever it sits.
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for container in value:
                    if isinstance(container, dict) and isinstance(container.get("image"), str):
                        container["image"] = _rewritten(container["image"], images)
            _rewrite_images(value, images)
    elif isinstance(node, list):
        for item in node:
            _rewrite_images(item, images)


def _rewritten(reference: str, images: Sequence[Image]) -> str:
    name, tag, digest = split_image(reference)
    for image in images:
        if image.name != name:
            continue
        new = image.new_name or name
        if image.digest:
            return f"{new}@{image.digest}"
        if image.new_tag:
            return f"{new}:{image.new_tag}"
        return new + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    return reference
