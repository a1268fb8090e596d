"""JSON schemas of the KEDA resources deploy/k8s uses, written from KEDA's documentation.

KEDA 2.x (keda.sh/v1alpha1): the ScaledObject specification, the
TriggerAuthentication specification, and the metadata of the two scalers we
use (``redis``, "Redis Lists"; ``prometheus``). Every object is closed
(``additionalProperties: false``), so a misspelt field fails like it would in
strict Kubernetes validation; every metadata value is a string, as KEDA
requires.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SCALER_METADATA", "SCHEMAS"]

_STRING_MAP: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}

_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
    "additionalProperties": False,
}


def _closed(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required or [],
        "additionalProperties": False,
    }


_INT = {"type": "integer", "minimum": 0}

_TRIGGER = _closed(
    {
        "type": {"type": "string"},
        "name": {"type": "string"},
        "metadata": _STRING_MAP,
        "authenticationRef": _closed(
            {
                "name": {"type": "string"},
                "kind": {"enum": ["TriggerAuthentication", "ClusterTriggerAuthentication"]},
            },
            ["name"],
        ),
        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
        "useCachedMetrics": {"type": "boolean"},
    },
    ["type", "metadata"],
)

_SCALED_OBJECT = _closed(
    {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": _METADATA,
        "spec": _closed(
            {
                "scaleTargetRef": _closed(
                    {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": {"type": "string"},
                        "envSourceContainerName": {"type": "string"},
                    },
                    ["name"],
                ),
                "pollingInterval": _INT,
                "cooldownPeriod": _INT,
                "initialCooldownPeriod": _INT,
                "idleReplicaCount": _INT,
                "minReplicaCount": _INT,
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "fallback": _closed(
                    {
                        "failureThreshold": _INT,
                        "replicas": _INT,
                        "behavior": {
                            "enum": [
                                "static",
                                "currentReplicas",
                                "currentReplicasIfHigher",
                                "currentReplicasIfLower",
                            ]
                        },
                    },
                    ["failureThreshold", "replicas"],
                ),
                "advanced": _closed(
                    {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        # Its behavior is a HorizontalPodAutoscalerBehavior: the
                        # tests validate it with the Kubernetes schemas.
                        "horizontalPodAutoscalerConfig": _closed(
                            {"name": {"type": "string"}, "behavior": {"type": "object"}}
                        ),
                        "scalingModifiers": _closed(
                            {
                                "formula": {"type": "string"},
                                "target": {"type": "string"},
                                "activationTarget": {"type": "string"},
                                "metricType": {"enum": ["AverageValue", "Value"]},
                            }
                        ),
                    }
                ),
                "triggers": {"type": "array", "minItems": 1, "items": _TRIGGER},
            },
            ["scaleTargetRef", "triggers"],
        ),
    },
    ["apiVersion", "kind", "metadata", "spec"],
)

_TRIGGER_AUTHENTICATION = _closed(
    {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "TriggerAuthentication"},
        "metadata": _METADATA,
        "spec": _closed(
            {
                "secretTargetRef": {
                    "type": "array",
                    "items": _closed(
                        {
                            "parameter": {"type": "string"},
                            "name": {"type": "string"},
                            "key": {"type": "string"},
                        },
                        ["parameter", "name", "key"],
                    ),
                },
                "env": {
                    "type": "array",
                    "items": _closed(
                        {
                            "parameter": {"type": "string"},
                            "name": {"type": "string"},
                            "containerName": {"type": "string"},
                        },
                        ["parameter", "name"],
                    ),
                },
                "podIdentity": {"type": "object"},
            }
        ),
    },
    ["apiVersion", "kind", "metadata", "spec"],
)

SCHEMAS: dict[str, dict[str, Any]] = {
    "ScaledObject": _SCALED_OBJECT,
    "TriggerAuthentication": _TRIGGER_AUTHENTICATION,
}

#: Per scaler type: (required metadata, every metadata key KEDA documents for it).
SCALER_METADATA: dict[str, tuple[set[str], set[str]]] = {
    "redis": (
        {"listName", "listLength"},
        {
            "address",
            "addressFromEnv",
            "host",
            "hostFromEnv",
            "port",
            "portFromEnv",
            "usernameFromEnv",
            "passwordFromEnv",
            "listName",
            "listLength",
            "activationListLength",
            "enableTLS",
            "unsafeSsl",
            "databaseIndex",
        },
    ),
    "prometheus": (
        {"serverAddress", "query", "threshold"},
        {
            "serverAddress",
            "query",
            "queryParameters",
            "threshold",
            "activationThreshold",
            "namespace",
            "customHeaders",
            "ignoreNullValues",
            "unsafeSsl",
            "authModes",
        },
    ),
}
