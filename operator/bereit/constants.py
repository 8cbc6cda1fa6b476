"""Names shared by the API, the renderers, the operator, the server and the CLI.

Everything that two parts must agree on lives here, so the agreement is written once.
"""

GROUP = "bereit.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

MODEL_KIND = "Model"
INFERENCE_SERVICE_KIND = "InferenceService"
COMPUTE_TARGET_KIND = "ComputeTarget"
# The kinds' plural names, as in their API paths and `kubectl get` (kind → plural).
MODEL_PLURAL = "models"
INFERENCE_SERVICE_PLURAL = "inferenceservices"
COMPUTE_TARGET_PLURAL = "computetargets"
PLURALS = {
    MODEL_KIND: MODEL_PLURAL,
    INFERENCE_SERVICE_KIND: INFERENCE_SERVICE_PLURAL,
    COMPUTE_TARGET_KIND: COMPUTE_TARGET_PLURAL,
}

# One field manager for every server-side apply the operator makes.
FIELD_MANAGER = "bereit-operator"
ANNOTATION_PREFIX = "bereit.dev/"
FINALIZER_MODEL_IN_USE = "bereit.dev/model-in-use"

# A user (or `bereit service regen-key`) sets one of these to any new value to ask for a new
# key. The operator remembers the last value it handled on the Secret, so a GitOps tool that
# keeps the annotation in place does not regenerate the key again and again.
REGENERATE_PRIMARY_KEY_ANNOTATION = "bereit.dev/regenerate-primary-key"
REGENERATE_SECONDARY_KEY_ANNOTATION = "bereit.dev/regenerate-secondary-key"

# Pods roll when this hash of code, model and settings changes; keys are not part of it.
POD_SPEC_HASH_ANNOTATION = "bereit.dev/spec-hash"

# Standard labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/)
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_VERSION = "app.kubernetes.io/version"
LABEL_SERVICE = "bereit.dev/inference-service"
PART_OF = "bereit"
MANAGED_BY = "bereit-operator"

# Keys Secret: one per InferenceService, data keys named as in Azure Machine Learning' get_keys().
KEYS_SECRET_SUFFIX = "-keys"
PRIMARY_KEY = "primaryKey"
SECONDARY_KEY = "secondaryKey"

# --- the contract between the pod the renderers build and bereit-server ----------------
SERVER_PORT = 8080
SERVICE_PORT = 80
APP_ROOT = "/var/azureml-app"
CODE_DIR = f"{APP_ROOT}/code"
MODELS_DIR = f"{APP_ROOT}/azureml-models"
KEYS_DIR = "/var/run/secrets/bereit/keys"
SCRATCH_DIR = "/tmp"

LIVENESS_PATH = "/"
READINESS_PATH = "/ready"
SCORE_PATH = "/score"
SWAGGER_PATH = "/swagger.json"
METRICS_PATH = "/metrics"

# Environment variables bereit-server reads (each also has a command-line flag).
ENV_ENTRY_SCRIPT = "BEREIT_ENTRY_SCRIPT"
ENV_AZUREML_ENTRY_SCRIPT = "AZUREML_ENTRY_SCRIPT"
ENV_MODEL_DIR = "BEREIT_MODEL_DIR"
ENV_AZUREML_MODEL_DIR = "AZUREML_MODEL_DIR"
ENV_PORT = "BEREIT_PORT"
ENV_AUTH_MODE = "BEREIT_AUTH_MODE"  # key | token | none
ENV_KEYS_DIR = "BEREIT_KEYS_DIR"
ENV_SCORING_TIMEOUT_MS = "BEREIT_SCORING_TIMEOUT_MS"
ENV_MAX_CONCURRENT_REQUESTS = "BEREIT_MAX_CONCURRENT_REQUESTS"
ENV_MAX_QUEUE_LENGTH = "BEREIT_MAX_QUEUE_LENGTH"
ENV_MAX_QUEUE_WAIT_MS = "BEREIT_MAX_QUEUE_WAIT_MS"
ENV_MAX_REQUEST_BYTES = "BEREIT_MAX_REQUEST_BYTES"
ENV_DATA_COLLECTION = "BEREIT_DATA_COLLECTION"  # off | stdout | a folder
ENV_DATA_COLLECTION_SAMPLE_RATE = "BEREIT_DATA_COLLECTION_SAMPLE_RATE"
ENV_LOG_FORMAT = "BEREIT_LOG_FORMAT"  # json | text
ENV_SERVICE_NAME = "BEREIT_SERVICE_NAME"
ENV_EXTRA_PACKAGES = "BEREIT_EXTRA_PACKAGES"  # space-separated pip requirements
ENV_PACKAGE_CACHE_DIR = "BEREIT_PACKAGE_CACHE_DIR"
# `bereit-server fetch` sends this as the Authorization header of an https:// model download.
ENV_FETCH_AUTHORIZATION = "BEREIT_FETCH_AUTHORIZATION"
PACKAGE_CACHE_DIR = "/var/bereit/packages"
RUNTIME_UID = 10001
ENV_HOST = "BEREIT_HOST"  # address bereit-server listens on (default all)
# Where init() failures are written for the pod status (Kubernetes terminationMessagePath).
TERMINATION_LOG = "/dev/termination-log"
