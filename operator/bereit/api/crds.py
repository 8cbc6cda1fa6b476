"""Generate the CustomResourceDefinitions from the pydantic models.

    python -m bereit.api.crds            # write crds/*.yaml and the chart's copy
    python -m bereit.api.crds --check    # exit 1 when the committed files differ

The models are the single source of truth; nothing under crds/ is edited by hand.
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from bereit.api.common import cel
from bereit.api.compute_target import ComputeTargetSpec, ComputeTargetStatus
from bereit.api.conditions import READY
from bereit.api.inference_service import MAX_NAME_LENGTH, InferenceServiceSpec, InferenceServiceStatus
from bereit.api.model import ModelSpec, ModelStatus
from bereit.constants import (
    COMPUTE_TARGET_PLURAL,
    GROUP,
    INFERENCE_SERVICE_PLURAL,
    LABEL_PART_OF,
    MODEL_PLURAL,
    PART_OF,
    VERSION,
)

# Keywords a structural Kubernetes schema accepts; everything else pydantic emits is dropped.
_KEPT_KEYWORDS = {
    "type", "description", "properties", "required", "items", "additionalProperties", "enum",
    "default", "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties", "nullable",
    "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields",
}


@dataclass(frozen=True)
class CrdSpec:
    kind: str
    plural: str
    short_names: list[str]
    description: str
    spec: type[BaseModel]
    status: type[BaseModel]
    printer_columns: list[dict[str, Any]]
    root_rules: list[dict[str, str]] = field(default_factory=list)
    scale: dict[str, str] | None = None
    spec_required: bool = True


def _dns_label_rule(kind: str, max_length: int) -> dict[str, str]:
    return cel(
        f"self.metadata.name.size() <= {max_length} && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
        f"metadata.name: {'an' if kind[0] in 'AEIOU' else 'a'} {kind} name must be a DNS label of at most {max_length} characters "
        "(lowercase letters, digits and '-', starting with a letter)",
        reason="FieldValueInvalid",
    )


def _ready_column() -> dict[str, Any]:
    return {"name": READY, "type": "string", "jsonPath": f'.status.conditions[?(@.type=="{READY}")].status'}


def _age_column() -> dict[str, Any]:
    return {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


RESOURCES = [
    CrdSpec(
        kind="Model",
        plural=MODEL_PLURAL,
        short_names=["mdl"],
        description="A registered, immutable version of a model's files, served by InferenceServices.",
        spec=ModelSpec,
        status=ModelStatus,
        printer_columns=[
            {"name": "Model", "type": "string", "jsonPath": ".status.modelName"},
            {"name": "Version", "type": "integer", "jsonPath": ".spec.version"},
            _ready_column(),
            {"name": "Used-By", "type": "string", "jsonPath": ".status.usedBy"},
            _age_column(),
        ],
        root_rules=[
            cel(
                "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
                "metadata.name: a Model name must be a DNS label (lowercase letters, digits and '-')",
                reason="FieldValueInvalid",
            )
        ],
    ),
    CrdSpec(
        kind="ComputeTarget",
        plural=COMPUTE_TARGET_PLURAL,
        short_names=["ct"],
        description="A pool of nodes that InferenceServices run on, checked against the vCPU minimum of its purpose.",
        spec=ComputeTargetSpec,
        status=ComputeTargetStatus,
        printer_columns=[
            {"name": "Purpose", "type": "string", "jsonPath": ".spec.purpose"},
            {"name": "Nodes", "type": "integer", "jsonPath": ".status.nodes"},
            {"name": "vCPUs", "type": "string", "jsonPath": ".status.vcpus"},
            {"name": "Requested", "type": "string", "jsonPath": ".status.requestedVcpus", "priority": 1},
            _ready_column(),
            _age_column(),
        ],
        root_rules=[_dns_label_rule("ComputeTarget", 63)],
        spec_required=False,
    ),
    CrdSpec(
        kind="InferenceService",
        plural=INFERENCE_SERVICE_PLURAL,
        short_names=["infsvc"],
        description="Models deployed as one scoring web service with keys, autoscaling and health checks.",
        spec=InferenceServiceSpec,
        status=InferenceServiceStatus,
        printer_columns=[
            {"name": "State", "type": "string", "jsonPath": ".status.state"},
            {"name": "Scoring-URI", "type": "string", "jsonPath": ".status.scoringUri"},
            {"name": "Models", "type": "string", "jsonPath": ".status.modelVersions"},
            {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
            {"name": "Target", "type": "string", "jsonPath": ".spec.computeTarget", "priority": 1},
            {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
            _age_column(),
        ],
        root_rules=[_dns_label_rule("InferenceService", MAX_NAME_LENGTH)],
        scale={
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    ),
]


def _resolve(node: Any, definitions: dict[str, Any]) -> Any:
    """Inline $refs and turn pydantic's JSON Schema into a structural OpenAPI v3 schema."""
    if isinstance(node, list):
        return [_resolve(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = definitions[node.pop("$ref").split("/")[-1]]
        merged = {**copy.deepcopy(target), **node}
        if "x-kubernetes-validations" in target and "x-kubernetes-validations" in node:
            merged["x-kubernetes-validations"] = target["x-kubernetes-validations"] + node["x-kubernetes-validations"]
        node = merged
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**node.pop("allOf")[0], **node}
    if "anyOf" in node:
        # Optional[X] is anyOf [X, null]: an optional field is simply absent.
        options = [option for option in node.pop("anyOf") if option.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express a union in a structural schema: {options}")
        node = {**_resolve(options[0], definitions), **node}
        if node.get("default", ...) is None:
            del node["default"]
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if isinstance(node.get("exclusiveMinimum"), int | float) and not isinstance(node["exclusiveMinimum"], bool):
        node["minimum"], node["exclusiveMinimum"] = node["exclusiveMinimum"], True
    if isinstance(node.get("exclusiveMaximum"), int | float) and not isinstance(node["exclusiveMaximum"], bool):
        node["maximum"], node["exclusiveMaximum"] = node["exclusiveMaximum"], True
    if "properties" in node:
        node["type"] = "object"
        node["properties"] = {key: _resolve(value, definitions) for key, value in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _resolve(node["additionalProperties"], definitions)
    elif node.get("additionalProperties") is False:
        del node["additionalProperties"]
    if "items" in node:
        node["items"] = _resolve(node["items"], definitions)
    return {key: value for key, value in node.items() if key in _KEPT_KEYWORDS}


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _resolve(raw, raw.get("$defs", {}))


def _condition_list(status_schema: dict[str, Any]) -> None:
    conditions = status_schema["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]


def build_crd(resource: CrdSpec) -> dict[str, Any]:
    spec_schema = schema_of(resource.spec)
    status_schema = schema_of(resource.status)
    _condition_list(status_schema)
    root: dict[str, Any] = {
        "type": "object",
        "description": resource.description,
        "properties": {
            "apiVersion": {"type": "string", "description": "bereit.dev/v1alpha1"},
            "kind": {"type": "string", "description": resource.kind},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    if resource.spec_required:
        root["required"] = ["spec"]
    if resource.root_rules:
        root["x-kubernetes-validations"] = resource.root_rules
    subresources: dict[str, Any] = {"status": {}}
    if resource.scale:
        subresources["scale"] = resource.scale
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{resource.plural}.{GROUP}", "labels": {LABEL_PART_OF: PART_OF}},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": resource.kind.lower(),
                "shortNames": resource.short_names,
                "categories": ["bereit", "all-bereit"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": subresources,
                    "additionalPrinterColumns": resource.printer_columns,
                }
            ],
        },
    }


def _dump(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, width=100, allow_unicode=True)


HEADER = "# Generated by `python -m bereit.api.crds` from operator/bereit/api/. Do not edit.\n"


def crd_files() -> dict[str, str]:
    """File name → text of every CRD, as written under crds/."""
    return {f"{GROUP}_{resource.plural}.yaml": HEADER + _dump(build_crd(resource)) for resource in RESOURCES}


def chart_crds_template() -> str:
    """The chart's copy: the same CRDs behind `crds.enabled`, kept on uninstall unless `crds.keep` is false."""
    parts = [HEADER.replace("#", "{{/*", 1).rstrip("\n") + " */}}", "{{- if .Values.crds.enabled }}"]
    for resource in RESOURCES:
        text = _dump(build_crd(resource))
        if "{{" in text:
            raise ValueError(f"{resource.kind} CRD text contains '{{{{', which Helm would parse")
        text = text.replace(
            "metadata:\n",
            "metadata:\n  annotations:\n    {{- if .Values.crds.keep }}\n    helm.sh/resource-policy: keep\n    {{- end }}\n",
            1,
        )
        parts.append("---\n" + text.rstrip("\n"))
    parts.append("{{- end }}")
    return "\n".join(parts) + "\n"


def expected_files(repo: Path) -> dict[Path, str]:
    files = {repo / "crds" / name: text for name, text in crd_files().items()}
    files[repo / "charts" / "bereit" / "templates" / "crds.yaml"] = chart_crds_template()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[3], help="repository root")
    parser.add_argument("--check", action="store_true", help="fail when the committed files differ")
    args = parser.parse_args(argv)
    stale = []
    for path, text in expected_files(args.repo).items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.check and stale:
        print("out of date (run `python -m bereit.api.crds`):", *map(str, stale), sep="\n  ", file=sys.stderr)
        return 1
    for path in stale:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
