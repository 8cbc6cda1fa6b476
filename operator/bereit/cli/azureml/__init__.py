"""Azure Machine Learning's own files read as bereit resources: inference and deployment
configurations, conda environment files, the source directory."""
