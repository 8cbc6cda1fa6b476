"""kopf handlers for Model, ComputeTarget and InferenceService (registered by importing `main`)."""
