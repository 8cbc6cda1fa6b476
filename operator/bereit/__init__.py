"""bereit: deploy machine-learning models on Kubernetes as scoring web services."""

__version__ = "0.1.0"
