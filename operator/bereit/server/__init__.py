"""bereit-server: the inference server that runs in each replica and hosts the user's Azure
Machine Learning (v1) ``score.py`` unchanged.

Layers, each importing only those below it (``tests/unit/server/test_layers.py`` checks):
``main`` (command line, uvicorn) → ``connection`` (HTTP/1.1) → ``app``, ``scoring`` (the
endpoints; errors → HTTP) → ``dataplane`` (admission, the run threads, auth, init(),
collection, readiness, deadlines) → ``limits``, ``pool``, ``auth``, ``collect``, ``metrics`` …
→ ``entry`` (the user's script).
"""
