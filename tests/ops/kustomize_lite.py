"""Build a kustomization the way ``kubectl kustomize`` does, for the subset deploy/k8s uses.

CI need not have kustomize: this reads ``resources`` (files, or folders with
a kustomization of their own), ``namespace``, ``images`` and ``patches``
(strategic-merge files aimed at one resource by kind and name). Anything
else in a kustomization is refused, so a new feature cannot pass unbuilt.
When kubectl is installed, the tests check that both builds agree.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

__all__ = ["KNOWN_FIELDS", "build"]

KNOWN_FIELDS = {"apiVersion", "kind", "namespace", "resources", "images", "patches"}

# Resources that have no namespace (none of ours so far, but kustomize skips them).
_CLUSTER_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge as far as our patches go: maps merge, lists of named maps merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in base + patch)
    ):
        merged_list = [copy.deepcopy(i) for i in base]
        for item in patch:
            for index, existing in enumerate(merged_list):
                if existing["name"] == item["name"]:
                    merged_list[index] = _merge(existing, item)
                    break
            else:
                merged_list.append(copy.deepcopy(item))
        return merged_list
    return copy.deepcopy(patch)


def _set_images(node: Any, images: list[dict[str, str]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for container in value:
                    name = str(container.get("image", "")).split(":")[0]
                    for image in images:
                        if image["name"] == name:
                            new = image.get("newName", name)
                            tag = image.get("newTag")
                            container["image"] = f"{new}:{tag}" if tag else new
            else:
                _set_images(value, images)
    elif isinstance(node, list):
        for item in node:
            _set_images(item, images)


def build(folder: Path) -> list[dict[str, Any]]:
    """Every resource of the kustomization in ``folder``, patched, as kustomize would emit it."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(spec) - KNOWN_FIELDS
    if unknown:
        raise ValueError(f"{folder}: kustomization fields this builder does not apply: {unknown}")
    resources: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        target = (folder / entry).resolve()
        resources.extend(build(target) if target.is_dir() else _load_all(target))
    for patch_entry in spec.get("patches", []):
        target = patch_entry["target"]
        if set(target) != {"kind", "name"} or set(patch_entry) != {"path", "target"}:
            raise ValueError(f"{folder}: patches are aimed by kind and name only: {patch_entry}")
        (patch,) = _load_all(folder / patch_entry["path"])
        matches = [
            i
            for i, r in enumerate(resources)
            if r["kind"] == target["kind"] and r["metadata"]["name"] == target["name"]
        ]
        if len(matches) != 1:
            raise ValueError(
                f"{folder}: patch {patch_entry['path']} matches {len(matches)} resources"
            )
        resources[matches[0]] = _merge(resources[matches[0]], patch)
    if "namespace" in spec:
        for resource in resources:
            if resource["kind"] not in _CLUSTER_KINDS:
                resource["metadata"]["namespace"] = spec["namespace"]
    if "images" in spec:
        _set_images(resources, spec["images"])
    return resources
