"""Valid example resources that tests change one field at a time."""

from __future__ import annotations

import copy


def model_body(name: str = "digits-1", **spec) -> dict:
    body = {
        "apiVersion": "bereit.dev/v1alpha1",
        "kind": "Model",
        "metadata": {"name": name},
        "spec": {"modelName": "digits", "version": 1, "source": {"uri": "oci://bereit-models/digits:1"}},
    }
    body["spec"].update(spec)
    return body


def compute_target_body(name: str = "dev", **spec) -> dict:
    body = {
        "apiVersion": "bereit.dev/v1alpha1",
        "kind": "ComputeTarget",
        "metadata": {"name": name},
        "spec": {"purpose": "DevTest"},
    }
    body["spec"].update(spec)
    return body


def inference_service_body(name: str = "digits", **spec) -> dict:
    body = {
        "apiVersion": "bereit.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {
            "computeTarget": "dev",
            "models": [{"name": "digits", "version": 1}],
            "inference": {"entryScript": "score.py", "code": {"inline": {"score.py": "def init():\n    pass\n"}}},
        },
    }
    body["spec"].update(spec)
    return body


def with_change(body: dict, path: str, value) -> dict:
    """A copy of body with the dotted path set to value (a segment `[n]` indexes a list)."""
    changed = copy.deepcopy(body)
    node = changed
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node.setdefault(part, {})
    node[parts[-1]] = value
    return changed
