"""deploy/k8s: every overlay builds, and every resource validates offline.

Core resources are checked by kubernetes-validate against the strict schemas
(unknown fields refused) of :data:`KUBERNETES_VERSION`; KEDA's resources
against the schemas of ``keda_schema`` (written from KEDA's documentation).
Beyond the schemas: every worker pool has its Deployment and its
ScaledObject on the Redis list Dramatiq really fills, and the API's probes,
autoscaler and disruption budget aim at what exists.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import dramatiq
import jsonschema
import kubernetes_validate
import msgspec
import pytest
import yaml
from redis.asyncio import Redis

from safexam.core.broker import QUEUES, create_broker
from safexam.core.settings import Settings
from tests.ops.keda_schema import SCALER_METADATA, SCHEMAS
from tests.ops.kustomize_lite import build

#: The oldest Kubernetes the manifests are meant for (appArmorProfile: 1.30+).
KUBERNETES_VERSION = "1.31.0"

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
OVERLAYS = sorted(p.parent for p in (DEPLOY / "overlays").glob("**/kustomization.yaml"))
BUILDS = [DEPLOY / "base", DEPLOY / "migrate", *OVERLAYS]


def _name(path: Path) -> str:
    return str(path.relative_to(DEPLOY))


def _problems(resource: dict[str, Any]) -> list[str]:
    """Every way ``resource`` breaks its schema, in words (empty: valid)."""
    kind = resource.get("kind", "?")
    if kind in SCHEMAS:
        errors = [
            f"{kind} {'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in jsonschema.Draft202012Validator(SCHEMAS[kind]).iter_errors(resource)
        ]
        return errors + _scaled_object_problems(resource)
    try:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{kind} {'.'.join(map(str, exc.path))}: {exc.message}"]
    return []


def _scaled_object_problems(resource: dict[str, Any]) -> list[str]:
    if resource.get("kind") != "ScaledObject":
        return []
    problems = []
    spec = resource.get("spec", {})
    for trigger in spec.get("triggers", []):
        kind = trigger.get("type")
        if kind not in SCALER_METADATA:
            problems.append(f"trigger type {kind!r} is not one these tests know")
            continue
        required, known = SCALER_METADATA[kind]
        metadata = set(trigger.get("metadata", {}))
        if kind == "redis" and "authenticationRef" in trigger:
            metadata |= {"address"}  # given by the TriggerAuthentication (checked below)
        if missing := required - metadata:
            problems.append(f"{kind} trigger lacks {sorted(missing)}")
        if unknown := set(trigger.get("metadata", {})) - known:
            problems.append(f"{kind} trigger has unknown metadata {sorted(unknown)}")
    behavior = spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
    if behavior is not None:
        # KEDA hands it to the HPA it makes: validate it as part of one.
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "keda-hpa"},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "x"},
                "maxReplicas": 1,
                "behavior": behavior,
            },
        }
        problems.extend(_problems(hpa))
    return problems


def _kubectl_build(folder: Path) -> list[dict[str, Any]] | None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    out = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=True
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def _by_key(resources: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["kind"], r["metadata"]["name"]): r for r in resources}


@pytest.fixture(scope="module")
def built() -> dict[str, list[dict[str, Any]]]:
    return {_name(folder): build(folder) for folder in BUILDS}


def test_every_overlay_builds_and_every_resource_validates(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    assert {"overlays/production", "overlays/single-node"} <= set(built)
    for name, resources in built.items():
        assert resources, name
        problems = [p for r in resources for p in _problems(r)]
        assert problems == [], f"{name}: {problems}"
    # The example Secret too, so what the README tells operators to create is valid.
    (secret,) = yaml.safe_load_all((DEPLOY / "secret.example.yaml").read_text())
    assert _problems(secret) == []


def test_the_builder_agrees_with_kubectl_kustomize(built: dict[str, list[dict[str, Any]]]) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed; the Python builder alone builds the overlays")
    for folder in BUILDS:
        ours = _by_key(built[_name(folder)])
        theirs = _by_key(_kubectl_build(folder) or [])
        assert ours == theirs, _name(folder)


def test_a_misspelt_field_fails_validation(built: dict[str, list[dict[str, Any]]]) -> None:
    resources = _by_key(built["overlays/production"])
    api = copy.deepcopy(resources[("Deployment", "safexam-api")])
    api["spec"]["replica"] = 3
    assert any("replica" in p for p in _problems(api))
    probe = copy.deepcopy(resources[("Deployment", "safexam-api")])
    probe["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/"
    assert _problems(probe)
    hpa = copy.deepcopy(resources[("HorizontalPodAutoscaler", "safexam-api")])
    hpa["spec"]["minReplicas"] = "two"
    assert _problems(hpa)
    scaled = copy.deepcopy(resources[("ScaledObject", "safexam-judge")])
    scaled["spec"]["minReplicas"] = scaled["spec"].pop("minReplicaCount")
    assert any("minReplicas" in p for p in _problems(scaled))
    trigger = copy.deepcopy(resources[("ScaledObject", "safexam-judge")])
    trigger["spec"]["triggers"][0]["metadata"]["listname"] = "x"
    assert any("listname" in p for p in _problems(trigger))
    number = copy.deepcopy(resources[("ScaledObject", "safexam-grading")])
    number["spec"]["triggers"][0]["metadata"]["listLength"] = 50
    assert _problems(number)
    behavior = copy.deepcopy(resources[("ScaledObject", "safexam-judge")])
    behavior["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"][
        "stabilisationWindowSeconds"
    ] = 1
    assert _problems(behavior)


def test_each_pool_runs_its_queue_and_scales_on_it(built: dict[str, list[dict[str, Any]]]) -> None:
    for name in ("overlays/production", "overlays/single-node"):
        resources = _by_key(built[name])
        config = resources[("ConfigMap", "safexam")]["data"]
        namespace = config["SAFEXAM_REDIS_NAMESPACE"]
        for queue in QUEUES:
            deployment = resources[("Deployment", f"safexam-{queue}")]
            (container,) = deployment["spec"]["template"]["spec"]["containers"]
            command = container["command"]
            assert command[:4] == ["safexam", "worker", "--queues", queue], command
            # $(VAR) in a command is expanded from the container's env: it must be there.
            env = {e["name"]: e["value"] for e in container.get("env", [])}
            for arg in command:
                if arg.startswith("$("):
                    assert int(env[arg[2:-1]]) >= 1, (queue, arg)
            assert {"requests", "limits"} <= set(container["resources"]), queue
            assert {"secretRef": {"name": "safexam"}} in container["envFrom"]
            scaled = resources[("ScaledObject", f"safexam-{queue}")]
            assert scaled["spec"]["scaleTargetRef"]["name"] == f"safexam-{queue}"
            assert scaled["spec"]["minReplicaCount"] >= 1
            redis_triggers = [t for t in scaled["spec"]["triggers"] if t["type"] == "redis"]
            assert [t["metadata"]["listName"] for t in redis_triggers] == [
                f"{namespace}:dramatiq:{queue}"
            ]
            assert redis_triggers[0]["authenticationRef"]["name"] in {
                n for k, n in resources if k == "TriggerAuthentication"
            }
            budget = resources[("PodDisruptionBudget", f"safexam-{queue}")]
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
        judge = resources[("ScaledObject", "safexam-judge")]
        (prewarm,) = [t for t in judge["spec"]["triggers"] if t["type"] == "prometheus"]
        assert "safexam_judge_prewarm_replicas" in prewarm["metadata"]["query"]


def test_the_api_is_probed_autoscaled_and_budgeted(built: dict[str, list[dict[str, Any]]]) -> None:
    resources = _by_key(built["overlays/production"])
    api = resources[("Deployment", "safexam-api")]
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["image"] == "ghcr.io/safexam/safexam:1.0.0"
    hpa = resources[("HorizontalPodAutoscaler", "safexam-api")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "safexam-api"
    # An autoscaled Deployment names no replicas, or every apply would reset the count.
    scaled = {
        r["spec"]["scaleTargetRef"]["name"]
        for r in resources.values()
        if "scaleTargetRef" in r.get("spec", {})
    }
    deployments = {name for kind, name in resources if kind == "Deployment"}
    assert scaled == deployments
    assert all("replicas" not in resources[("Deployment", name)]["spec"] for name in deployments)
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2
    assert resources[("PodDisruptionBudget", "safexam-api")]["spec"]["minAvailable"] >= 1
    assert all(r["metadata"]["namespace"] == "safexam" for r in resources.values())
    judge = resources[("Deployment", "safexam-judge")]["spec"]["template"]["spec"]
    context = judge["containers"][0]["securityContext"]
    assert context["capabilities"]["add"] == ["SYS_ADMIN"]
    assert context["seccompProfile"]["type"] == "Unconfined"
    assert judge["automountServiceAccountToken"] is False
    (job,) = built["overlays/production/migrate"]
    assert job["kind"] == "Job" and job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "safexam",
        "db",
        "upgrade",
    ]


async def test_the_scaled_list_is_where_dramatiq_keeps_waiting_messages(
    built: dict[str, list[dict[str, Any]]], settings: Settings, redis: Redis
) -> None:
    """KEDA reads the length of the list the manifests name: enqueue for real, count it."""
    resources = _by_key(built["overlays/production"])
    manifest_namespace = resources[("ConfigMap", "safexam")]["data"]["SAFEXAM_REDIS_NAMESPACE"]
    list_name = resources[("ScaledObject", "safexam-judge")]["spec"]["triggers"][0]["metadata"][
        "listName"
    ]
    # This run's own namespace in place of production's, so the test shares no keys.
    key = settings.redis_namespace + list_name.removeprefix(manifest_namespace)
    broker = create_broker(settings)
    try:
        broker.declare_queue("judge")
        for n in range(3):
            broker.enqueue(
                dramatiq.Message(
                    queue_name="judge", actor_name="noop", args=(n,), kwargs={}, options={}
                )
            )
        assert await redis.llen(key) == 3
    finally:
        broker.close()


def test_every_variable_the_pods_get_is_one_safexam_reads(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    """A misspelt setting is valid YAML and a valid ConfigMap: only this catches it."""
    settings = {f"SAFEXAM_{f.name.upper()}" for f in msgspec.structs.fields(Settings)}
    pools = {f"SAFEXAM_{q.upper()}_{what}" for q in QUEUES for what in ("PROCESSES", "THREADS")}
    (secret,) = yaml.safe_load_all((DEPLOY / "secret.example.yaml").read_text())
    keda = {"KEDA_REDIS_ADDRESS", "KEDA_REDIS_PASSWORD"}
    assert set(secret["stringData"]) - settings == keda
    for name, resources in built.items():
        for resource in resources:
            names = set(resource.get("data", {})) if resource["kind"] == "ConfigMap" else set()
            pod = resource.get("spec", {}).get("template", {}).get("spec", {})
            for container in pod.get("containers", []):
                names |= {e["name"] for e in container.get("env", [])}
            assert names <= settings | pools, (
                name,
                resource["metadata"]["name"],
                names - settings - pools,
            )


def test_only_the_judge_asks_for_more_than_the_restricted_pod_security_level(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    """Every other pod meets Kubernetes' "restricted" Pod Security Standard."""
    for name in ("overlays/production", "overlays/production/migrate"):
        for resource in built[name]:
            pod = resource.get("spec", {}).get("template", {}).get("spec")
            if pod is None or resource["metadata"]["name"] == "safexam-judge":
                continue
            assert pod["securityContext"]["runAsNonRoot"] is True, resource["metadata"]["name"]
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            assert pod["automountServiceAccountToken"] is False
            for container in pod["containers"]:
                context = container["securityContext"]
                assert context["allowPrivilegeEscalation"] is False
                assert context["capabilities"] == {"drop": ["ALL"]}
