"""The two patch kinds of kustomize `patches`, for the cases knative/ uses.

Strategic merge: maps merge key by key and `null` deletes a key. Lists are replaced whole,
which is what kustomize does for custom resources (it knows no merge keys for Knative
kinds); for built-in kinds it would merge some lists by key, so a list in a strategic patch
of a built-in kind is refused rather than rendered differently. `$patch` directives are
refused too.

JSON 6902: add, remove, replace and test, with RFC 6901 paths (`~1` for '/', `~0` for '~',
`-` to append to a list).
"""

from __future__ import annotations

import copy
from typing import Any

# API groups whose kinds kustomize merges with its built-in OpenAPI schema.
BUILT_IN_GROUPS = frozenset({"", "apps", "batch", "policy", "networking.k8s.io",
                             "rbac.authorization.k8s.io", "autoscaling"})


class PatchError(ValueError):
    pass


def group_of(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def strategic_merge(target: dict, patch: dict, where: str = "") -> dict:
    """`target` with `patch` merged in (a new document; the arguments are unchanged)."""
    if group_of(str(target.get("apiVersion", ""))) in BUILT_IN_GROUPS and _has_list(patch):
        raise PatchError(f"{where}: strategic merge with lists on built-in kind "
                         f"{target.get('kind')} is not supported (kustomize merges by key): "
                         "use a JSON 6902 patch")
    result = copy.deepcopy(target)
    _merge(result, patch, where)
    return result


def _merge(into: dict, patch: dict, path: str) -> None:
    for key, value in patch.items():
        if isinstance(key, str) and key.startswith("$"):
            raise PatchError(f"{path}/{key}: strategic merge directives are not supported")
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value, f"{path}/{key}")
        else:
            into[key] = copy.deepcopy(value)


def _has_list(value: Any) -> bool:
    if isinstance(value, list):
        return True
    return isinstance(value, dict) and any(_has_list(v) for v in value.values())


def json6902(target: dict, operations: list, where: str = "") -> dict:
    result = copy.deepcopy(target)
    for number, operation in enumerate(operations):
        at = f"{where}: operation {number}"
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchError(f"{at}: needs `op` and `path`")
        op, path = operation["op"], operation["path"]
        if op in ("add", "replace", "test") and "value" not in operation:
            raise PatchError(f"{at}: `{op}` needs a `value`")
        parent, last = _walk(result, _pointer(path, at), at)
        if op == "add":
            _add(parent, last, copy.deepcopy(operation["value"]), at)
        elif op == "remove":
            _get(parent, last, at)
            del parent[_index(parent, last, at) if isinstance(parent, list) else last]
        elif op == "replace":
            _get(parent, last, at)
            parent[_index(parent, last, at) if isinstance(parent, list) else last] = copy.deepcopy(operation["value"])
        elif op == "test":
            if _get(parent, last, at) != operation["value"]:
                raise PatchError(f"{at}: test failed at {path}")
        else:
            raise PatchError(f"{at}: op {op!r} is not supported (add, remove, replace, test)")
    return result


def _pointer(path: Any, at: str) -> list[str]:
    if not isinstance(path, str) or not path.startswith("/"):
        raise PatchError(f"{at}: path {path!r} must start with '/'")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _walk(document: Any, parts: list[str], at: str) -> tuple[Any, str]:
    node = document
    for part in parts[:-1]:
        node = _get(node, part, at)
    return node, parts[-1]


def _get(node: Any, key: str, at: str) -> Any:
    if isinstance(node, dict):
        if key not in node:
            raise PatchError(f"{at}: no {key!r} in the target")
        return node[key]
    if isinstance(node, list):
        return node[_index(node, key, at)]
    raise PatchError(f"{at}: cannot step into a {type(node).__name__} with {key!r}")


def _index(node: list, key: str, at: str) -> int:
    if not key.isdigit() or int(key) >= len(node):
        raise PatchError(f"{at}: {key!r} is not an index of a list of {len(node)}")
    return int(key)


def _add(parent: Any, key: str, value: Any, at: str) -> None:
    if isinstance(parent, dict):
        parent[key] = value
    elif isinstance(parent, list):
        if key == "-":
            parent.append(value)
        elif key.isdigit() and int(key) <= len(parent):
            parent.insert(int(key), value)
        else:
            raise PatchError(f"{at}: {key!r} is not a position in a list of {len(parent)}")
    else:
        raise PatchError(f"{at}: cannot add into a {type(parent).__name__}")
