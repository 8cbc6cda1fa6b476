"""The seeds' workflow on a whole cluster, shared by `make demo` (e2e/demo.py) and
e2e/test_workflow.py: cluster, images, chart, the digits example, scoring and a load client.

Importable as `workflow` with e2e/ on sys.path (pytest and e2e/demo.py put it there).
"""
