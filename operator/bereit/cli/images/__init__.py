"""Images: building them with Docker (the operator, the runtime, model folders, `bereit package`) and
making them available to a cluster's nodes."""
