import pytest
from bereit.api import ComputeTarget, InferenceService, Model
from bereit.render import ResolvedService, RuntimeSettings

from tests.unit.specs import compute_target_body, inference_service_body, model_body

RUNTIME = RuntimeSettings(runtime_image="bereit/runtime:0.1.0")


def resolve(service: dict | None = None, models: list[dict] | None = None, target: dict | None = None, **extra):
    service_body = service or inference_service_body()
    service_body["metadata"].setdefault("namespace", "ml")
    service_body["metadata"].setdefault("uid", "0b5e8a6e-5d43-4d6c-9a55-3c1e0f6f2a11")
    return ResolvedService(
        service=InferenceService.model_validate(service_body),
        models=tuple(Model.model_validate(body) for body in (models or [model_body()])),
        compute_target=ComputeTarget.model_validate(target or compute_target_body()),
        runtime=RUNTIME,
        **extra,
    )


@pytest.fixture
def resolved():
    return resolve()
