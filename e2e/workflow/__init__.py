"""The Azure Machine Learning workflow on a whole cluster, shared by `make demo` (e2e/demo.py) and
e2e/test_workflow.py: cluster, images, chart, the digits example, scoring and a load client.

Imported as `e2e.workflow` (pytest's pythonpath is the repository root; `make demo` runs `python -m e2e.demo`).
"""
