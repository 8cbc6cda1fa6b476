{{/* The operator's RBAC rules, used by rbac.yaml. */}}

{{- define "bereit.namespacedRules" -}}
# The three resources: kopf watches them, patches annotations and finalizers, writes status.
- apiGroups: [bereit.dev]
  resources: [models, inferenceservices, computetargets]
  verbs: [get, list, watch, patch]
- apiGroups: [bereit.dev]
  resources: [models/status, inferenceservices/status, computetargets/status]
  verbs: [get, patch, update]
# Owner references with blockOwnerDeletion need update on the owner's finalizers.
- apiGroups: [bereit.dev]
  resources: [models/finalizers, inferenceservices/finalizers, computetargets/finalizers]
  verbs: [update]
# Children of an InferenceService, server-side applied (create + patch), deleted when unneeded.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services, secrets, configmaps]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, patch, delete]
# Why a replica is not ready: pod states, termination messages, last log lines.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
# Events for `kubectl describe` (kopf posts core/v1 events).
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}
{{- define "bereit.clusterRules" -}}
# ComputeTarget capacity: allocatable vCPUs and memory of Ready, schedulable nodes.
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, watch]
# kopf notices CRDs installed or upgraded after the operator started.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
{{- end }}
