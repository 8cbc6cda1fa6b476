from pathlib import Path

import yaml
from bereit.api import crds

REPO = Path(__file__).resolve().parents[3]


def test_committed_crds_match_the_models():
    for path, text in crds.expected_files(REPO).items():
        assert path.exists(), f"{path} is missing: run `python -m bereit.api.crds`"
        assert path.read_text() == text, f"{path} is out of date: run `python -m bereit.api.crds`"


def _walk(schema: dict, path: str = ""):
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}{{}}")


def test_every_schema_node_is_structural_and_every_spec_field_is_described():
    for resource in crds.RESOURCES:
        root = crds.build_crd(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, node in _walk(root):
            assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{resource.kind}{path} has no type"
            assert not {"anyOf", "allOf", "oneOf", "$ref"} & node.keys(), f"{resource.kind}{path}"
        spec = root["properties"]["spec"]
        for path, node in _walk(spec, ".spec"):
            if not path.endswith(("[]", "{}")):
                assert node.get("description"), f"{resource.kind}{path} has no description for kubectl explain"


def test_inference_service_has_scale_subresource_and_printer_columns():
    crd = yaml.safe_load((REPO / "crds" / "bereit.dev_inferenceservices.yaml").read_text())
    version = crd["spec"]["versions"][0]
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"
    columns = {column["name"] for column in version["additionalPrinterColumns"]}
    assert {"State", "Scoring-URI", "Models", "Ready", "Age"} <= columns


def test_chart_copy_is_guarded_by_crds_enabled_and_kept_on_uninstall():
    text = crds.chart_crds_template()
    assert text.count("helm.sh/resource-policy: keep") == len(crds.RESOURCES)
    assert "{{- if .Values.crds.enabled }}" in text
