"""What `bereit deploy` and `bereit service update` send: an InferenceService, plus the Secrets
the Azure files ask for (registry credentials, fixed keys), created so that a failure leaves
nothing half-made behind."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bereit.api import InferenceService
from bereit.cli import output
from bereit.cli.azureml.config import (
    Registry,
    Translation,
    translate_deployment_config,
    translate_inference_config,
)
from bereit.cli.errors import AlreadyExists, BadInput, CliError, NotFound, TimedOut
from bereit.cli.files import load_documents
from bereit.cli.manifests import ModelRef, combine, inline_code, merge, validate
from bereit.constants import (
    API_VERSION,
    COMPUTE_TARGET_KIND,
    INFERENCE_SERVICE_KIND,
    KEYS_SECRET_SUFFIX,
    LABEL_MANAGED_BY,
    LABEL_PART_OF,
    LABEL_SERVICE,
    PART_OF,
)

if TYPE_CHECKING:  # the kubernetes client takes a second to import; commands load it when they connect
    from bereit.cli.cluster import Cluster

CLI_MANAGER = "bereit-cli"
REGISTRY_SECRET_SUFFIX = "-registry"


@dataclass
class Plan:
    """The resources of one deployment, checked by the API types, and what else to set up."""

    name: str
    spec: dict[str, Any]  # camelCase, before validation
    origins: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)
    registry: Registry | None = None
    namespace: str | None = None  # from the deployment config, when it names one
    compute_target: str | None = None  # from the deployment config
    metadata: dict[str, Any] = field(default_factory=dict)

    def manifest(self, namespace: str | None) -> dict[str, Any]:
        """The InferenceService as `kubectl apply` takes it; BadInput naming fields (and file keys)."""
        metadata = merge(self.metadata, {"name": self.name})
        if namespace:
            metadata["namespace"] = namespace
        if self.registry:
            secrets = self.spec.setdefault("inference", {}).setdefault("environment", {}).setdefault("imagePullSecrets", [])
            if {"name": registry_secret_name(self.name)} not in secrets:
                secrets.append({"name": registry_secret_name(self.name)})
        body = {"apiVersion": API_VERSION, "kind": INFERENCE_SERVICE_KIND, "metadata": metadata, "spec": self.spec}
        service = validate(InferenceService, body, self.origins)
        # Only what was written: defaults stay the API's, so a GitOps repository holds no copies.
        result = service.model_dump(by_alias=True, exclude_unset=True, exclude_none=True, mode="json")
        result["metadata"] = {k: v for k, v in metadata.items() if v not in (None, {}, [])}
        return result


def registry_secret_name(service: str) -> str:
    return f"{service}{REGISTRY_SECRET_SUFFIX}"


def keys_secret_name(service: dict[str, Any]) -> str:
    status = service.get("status") or {}
    return status.get("keysSecretName") or f"{service['metadata']['name']}{KEYS_SECRET_SUFFIX}"


def from_azure(name: str, ic: Path | None, dc: Path | None) -> Plan:
    """A plan from Azure ML's inference and deployment configuration files."""
    if ic is None:
        raise BadInput("--ic INFERENCE_CONFIG is required: it names the entry script (or use -f with a bereit manifest)")
    inference = translate_inference_config(ic)
    deployment = translate_deployment_config(dc) if dc else None
    spec, origins, warnings = combine(inference, deployment)
    assert inference.code is not None
    spec = merge(spec, {"inference": {"code": {"inline": inline_code(inference.code, str(ic))}}})
    if inference.extra_dockerfile_steps:
        warnings.append(
            f"{ic}: extraDockerfileSteps ignored: `bereit package --ic {ic}` applies them; deploy that image as baseImage"
        )
    plan = Plan(name=name, spec=spec, origins=origins, warnings=warnings, registry=inference.registry)
    if deployment is not None:
        plan.keys = deployment.keys
        plan.namespace = deployment.namespace
        plan.compute_target = deployment.compute_target
    return plan


def with_deployment_config(plan: Plan, dc: Path) -> Plan:
    """A deployment config on top of a plan (update: new settings, same service)."""
    deployment: Translation = translate_deployment_config(dc)
    spec, origins, warnings = combine(deployment)
    plan.spec = merge(plan.spec, spec)
    plan.origins.update(origins)
    plan.warnings.extend(warnings)
    plan.keys.update(deployment.keys)
    plan.namespace = plan.namespace or deployment.namespace
    plan.compute_target = plan.compute_target or deployment.compute_target
    return plan


def from_manifest(path: Path, name: str | None) -> Plan:
    """A plan from bereit's own format: an InferenceService manifest (as `--dry-run -o yaml` writes)."""
    documents = load_documents(path, "manifest")
    services = [d for d in documents if d.get("kind") == INFERENCE_SERVICE_KIND]
    others = sorted({str(d.get("kind")) for d in documents} - {INFERENCE_SERVICE_KIND})
    if len(services) != 1:
        raise BadInput(
            f"{path} holds {len(services)} InferenceService manifests; bereit deploy -f takes exactly one"
            + (f" (use kubectl apply -f for {', '.join(others)})" if others else "")
        )
    if others:
        raise BadInput(f"{path} also holds {', '.join(others)}: apply those with kubectl apply -f, or split the file")
    document = services[0]
    if document.get("apiVersion") != API_VERSION:
        raise BadInput(f"{path}: apiVersion must be {API_VERSION}, not {document.get('apiVersion')!r}")
    metadata = dict(document.get("metadata") or {})
    chosen = name or metadata.get("name")
    if not chosen:
        raise BadInput(f"{path}: metadata.name is missing; give one there or with -n")
    metadata.pop("name", None)
    kept = {k: metadata[k] for k in ("labels", "annotations", "namespace") if metadata.get(k)}
    spec = document.get("spec")
    if not isinstance(spec, dict):
        raise BadInput(f"{path}: spec is missing or not a mapping")
    return Plan(
        name=chosen,
        spec=spec,
        origins={},
        namespace=kept.pop("namespace", None),
        metadata=kept,
    )


def set_models(plan: Plan, refs: list[ModelRef]) -> None:
    if refs:
        plan.spec["models"] = [{"name": r.name, **({"version": r.version} if r.version else {})} for r in refs]
        plan.origins["models"] = "-m"
    elif not plan.spec.get("models"):
        raise BadInput("name the model(s) to serve with -m NAME:VERSION")


def choose_compute_target(kube: Cluster | None, flag: str | None, plan: Plan) -> str:
    """--ct, else the deployment config's or manifest's, else the namespace's only target."""
    chosen = flag or plan.compute_target or plan.spec.get("computeTarget")
    if kube is None:
        if not chosen:
            raise BadInput("--ct TARGET is required with --dry-run (bereit compute list shows the targets)")
        return chosen
    if chosen:
        try:
            kube.get(COMPUTE_TARGET_KIND, chosen)
        except NotFound:
            raise NotFound(
                f"compute target {chosen!r} not found in namespace {kube.namespace!r}: create it with "
                f"`bereit compute create -n {chosen} --purpose DevTest` (or FastProd)"
            ) from None
        return chosen
    targets = [t["metadata"]["name"] for t in kube.list(COMPUTE_TARGET_KIND)]
    if len(targets) == 1:
        return targets[0]
    if not targets:
        raise NotFound(
            f"no compute target in namespace {kube.namespace!r}: create one with "
            "`bereit compute create -n NAME --purpose DevTest` (or FastProd)"
        )
    raise BadInput(f"namespace {kube.namespace!r} has several compute targets ({', '.join(targets)}): choose one with --ct")


def registry_secret(plan: Plan) -> dict[str, Any]:
    assert plan.registry is not None
    auth = base64.b64encode(f"{plan.registry.username}:{plan.registry.password}".encode()).decode()
    config = {"auths": {plan.registry.address: {"username": plan.registry.username, "password": plan.registry.password, "auth": auth}}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {
            "name": registry_secret_name(plan.name),
            "labels": {LABEL_SERVICE: plan.name, LABEL_PART_OF: PART_OF, LABEL_MANAGED_BY: CLI_MANAGER},
        },
        "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
    }


def create(kube: Cluster, plan: Plan, manifest: dict[str, Any], replace: dict[str, Any] | None, key_timeout: float) -> dict[str, Any]:
    """Create (or replace) the service and its Secrets; undo what was created when a step fails."""
    made_secret = False
    if plan.registry is not None:
        secret = registry_secret(plan)
        try:
            kube.create_secret(secret)
            made_secret = True
        except AlreadyExists:
            kube.patch_secret(secret["metadata"]["name"], {"data": secret["data"]})
    try:
        if replace is None:
            service = kube.create(INFERENCE_SERVICE_KIND, manifest)
        else:
            manifest["metadata"]["resourceVersion"] = replace["metadata"]["resourceVersion"]
            service = kube.replace(INFERENCE_SERVICE_KIND, manifest)
    except CliError:
        if made_secret:
            _quietly(lambda: kube.delete_secret(registry_secret_name(plan.name)))
        raise
    try:
        if plan.registry is not None:
            # Garbage collection deletes the credentials with the service.
            kube.patch_secret(registry_secret_name(plan.name), {"metadata": {"ownerReferences": [_owner(service)]}})
        if plan.keys:
            set_keys(kube, service, plan.keys, key_timeout)
    except CliError:
        if replace is None:
            _quietly(lambda: kube.delete(INFERENCE_SERVICE_KIND, plan.name))
            if made_secret:
                _quietly(lambda: kube.delete_secret(registry_secret_name(plan.name)))
        raise
    return service


def set_keys(kube: Cluster, service: dict[str, Any], keys: dict[str, str], timeout: float) -> None:
    """Put the user's keys into the keys Secret once the operator has made it."""
    name = keys_secret_name(service)
    deadline = time.monotonic() + timeout
    while True:
        try:
            kube.read_secret(name)
            break
        except NotFound:
            if time.monotonic() >= deadline:
                raise TimedOut(
                    f"the operator did not create the keys Secret {name} within {timeout:.0f} s, so the "
                    "keys from the deployment config could not be set: is the operator running?"
                ) from None
            time.sleep(1)
    data = {key: base64.b64encode(value.encode()).decode() for key, value in keys.items()}
    kube.patch_secret(name, {"data": data})


def _owner(service: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": INFERENCE_SERVICE_KIND,
        "name": service["metadata"]["name"],
        "uid": service["metadata"]["uid"],
        "blockOwnerDeletion": False,
    }


def _quietly(action) -> None:
    try:
        action()
    except CliError as error:
        output.warn(f"could not clean up: {error}")
