"""The condition types in the resources' status: what `kubectl wait --for=condition=…`, the CLI,
Argo CD and Flux read. The operator's logic over them lives in bereit.controllers.conditions."""

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"

# Every kind: True when it is usable (a service: rolled out and every replica ready).
READY = "Ready"
# Every kind, next to Ready, as kstatus (Flux, kubectl wait) and Argo CD read them: at most one
# is True. Reconciling while a change is on its way; Stalled when progress needs the user.
RECONCILING = "Reconciling"
STALLED = "Stalled"

# InferenceService: the steps of a reconcile, in order; Ready sums them up.
SPEC_VALID = "SpecValid"
COMPUTE_TARGET_READY = "ComputeTargetReady"
MODELS_RESOLVED = "ModelsResolved"
CODE_AVAILABLE = "CodeAvailable"
CAPACITY_RESERVED = "CapacityReserved"
CHILDREN_APPLIED = "ChildrenApplied"
AVAILABLE = "Available"

# Model: whether InferenceServices serve this version (and so hold its deletion).
IN_USE = "InUse"
