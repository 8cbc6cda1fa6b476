"""Which Model objects an InferenceService serves, and which of two equal versions counts. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bereit.api import InferenceService, Model
from bereit.api.conditions import FALSE, MODELS_RESOLVED, READY, TRUE
from bereit.controllers.conditions import Verdict, is_true


def without_status(body: Mapping[str, Any]) -> dict:
    """Spec and metadata only: the operator writes status, it never needs to parse it back."""
    return {key: value for key, value in body.items() if key != "status"}


def registration_order(body: Mapping[str, Any]) -> tuple[str, str]:
    """Earlier registration first: creation time, then name (times have seconds precision)."""
    meta = body["metadata"]
    return meta.get("creationTimestamp") or "", meta["name"]


def first_registered(bodies: Iterable[Mapping[str, Any]], version: int) -> Mapping[str, Any] | None:
    """The Model that owns (modelName, version): the one already Ready for it, else the earliest.

    creationTimestamp has seconds precision, so two registrations in one second tie (then the
    name decides); a Model once Ready keeps the version, so the decision never flips.
    """
    same = [
        b for b in bodies
        if (b.get("spec") or {}).get("version") == version and not b["metadata"].get("deletionTimestamp")
    ]
    if not same:
        return None
    return min(same, key=lambda b: (not is_ready(b), *registration_order(b)))


def is_ready(body: Mapping[str, Any]) -> bool:
    return is_true((body.get("status") or {}).get("conditions"), READY)


@dataclass(frozen=True)
class Resolution:
    models: tuple[Model, ...]
    verdict: Verdict


def resolve(
    service: InferenceService,
    models_by_name: Mapping[str, list[Mapping[str, Any]]],
    serving: set[str],
) -> Resolution:
    """Pick a Model object for each reference: the pinned version, or the latest Ready one.

    `serving` are the Model objects the service already serves: a Model being deleted stays
    usable for the service that serves it (its deletion waits for that), but is never newly
    chosen.
    """
    chosen: list[Model] = []
    problems: list[str] = []
    for reference in service.spec.models:
        candidates = [
            b for b in models_by_name.get(reference.name, [])
            if not b["metadata"].get("deletionTimestamp") or b["metadata"]["name"] in serving
        ]
        if reference.version is not None:
            same = [b for b in candidates if (b.get("spec") or {}).get("version") == reference.version]
            ready = [b for b in same if is_ready(b)]
            if ready:
                chosen.append(Model.model_validate(without_status(min(ready, key=registration_order))))
            elif same:
                problems.append(
                    f"Model {reference.name!r} version {reference.version} ({same[0]['metadata']['name']}) is not Ready"
                )
            else:
                known = sorted({(b.get("spec") or {}).get("version") for b in candidates if is_ready(b)})
                hint = f" (Ready versions: {', '.join(map(str, known))})" if known else ""
                problems.append(f"Model {reference.name!r} version {reference.version} not found{hint}")
        else:
            ready = [b for b in candidates if is_ready(b)]
            if ready:
                best = max(ready, key=lambda b: b["spec"]["version"])  # one Ready Model per version
                chosen.append(Model.model_validate(without_status(best)))
            elif candidates:
                problems.append(f"Model {reference.name!r} has no Ready version yet")
            else:
                problems.append(f"Model {reference.name!r} not found")
    if problems:
        reason = "ModelNotFound" if any("not found" in p for p in problems) else "ModelNotReady"
        return Resolution((), Verdict(MODELS_RESOLVED, FALSE, reason, "; ".join(problems) + " in this namespace"))
    served = ", ".join(f"{m.model_name}:{m.spec.version}" for m in chosen)
    return Resolution(tuple(chosen), Verdict(MODELS_RESOLVED, TRUE, "Resolved", f"serving {served}"))
